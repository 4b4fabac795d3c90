"""Password hashing: argon2id for new hashes, bcrypt still verified, all off the event loop."""

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

# The first hasher hashes; the others only verify, and a match on them asks for a re-hash.
password_hash = PasswordHash((Argon2Hasher(), BcryptHasher()))

# Hashing costs 100-400 ms of CPU: more threads than cores only queue behind each other.
_hashing_pool = ThreadPoolExecutor(
    max_workers=os.cpu_count() or 1, thread_name_prefix="password-hashing"
)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    valid: bool
    updated_hash: str | None = None


def _verify_and_update(password: str, hashed: str) -> VerifyResult:
    try:
        valid, updated_hash = password_hash.verify_and_update(password, hashed)
    except UnknownHashError:
        return VerifyResult(valid=False)
    except ValueError:
        # bcrypt 5 refuses passwords over 72 bytes instead of truncating them, so such a
        # password cannot be the one behind a bcrypt hash.
        return VerifyResult(valid=False)
    return VerifyResult(valid=valid, updated_hash=updated_hash)


@cache
def _dummy_hash() -> str:
    return password_hash.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_hashing_pool, password_hash.hash, password)


async def verify_password(password: str, hashed: str) -> VerifyResult:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_hashing_pool, _verify_and_update, password, hashed)


async def verify_against_dummy(password: str) -> None:
    """Spend the same work as a real verification when there is no account to check."""
    loop = asyncio.get_running_loop()
    dummy = await loop.run_in_executor(_hashing_pool, _dummy_hash)
    await verify_password(password, dummy)
