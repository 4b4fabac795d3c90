"""Test data builders. Hashes are computed once per password, cost and process."""

import itertools
from functools import cache

from pwdlib import PasswordHash
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import User
from gql_app.security.passwords import password_hasher

USER_PASSWORD = "TestPassword123!"
ADMIN_PASSWORD = "AdminPassword123!"
STRONG_PASSWORD = "correct horse battery staple"

_sequence = itertools.count(1)


def hashed(password: str) -> str:
    """A hash at the cost this process hashes at now (the suite's, or the standard one)."""
    return _hashed(password, password_hasher())


@cache
def _hashed(password: str, hasher: PasswordHash) -> str:
    return hasher.hash(password)


@cache
def bcrypt_hashed(password: str) -> str:
    """A legacy hash, at bcrypt's least cost: its cost is in the hash, and every check of it
    would otherwise spend a quarter of a second."""
    return BcryptHasher(rounds=4).hash(password)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_sequence)}@example.com"


async def create_user(
    session: AsyncSession,
    *,
    email: str | None = None,
    password: str = USER_PASSWORD,
    password_hash_value: str | None = None,
    full_name: str | None = None,
    is_active: bool = True,
    is_superuser: bool = False,
    is_verified: bool = False,
) -> User:
    user = User(
        email=(email or unique_email()).lower(),
        password_hash=password_hash_value or hashed(password),
        full_name=full_name,
        is_active=is_active,
        is_superuser=is_superuser,
        is_verified=is_verified,
    )
    session.add(user)
    await session.commit()
    await session.refresh(user)
    # The refresh began a transaction; a test that then waits must not leave it idle (the
    # database ends sessions idle in a transaction after a few seconds).
    await session.commit()
    return user
