"""Password hashing: argon2id for new hashes, bcrypt still verified, all off the event loop.

Hashing runs on a few threads of its own, behind a bounded queue: when more checks wait than
the queue holds, a new one is refused at once (SERVICE_UNAVAILABLE) instead of waiting for
seconds behind the others. Callers hold no database connection while they wait.

New hashes are made at production's cost unless PASSWORD_HASHING_COST chooses the minimal one
(test suites; refused in production).
"""

import asyncio
import logging
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TypeVar, get_args

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from gql_app.config import PasswordHashingCost, Settings
from gql_app.errors import ServiceUnavailableError, Unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Argon2id at RFC 9106's second recommended cost (64 MiB, 3 passes). Two lanes rather than
# the RFC's four: one hash then keeps two cores busy with no lane waiting for a core, which
# measured 0.89 of the machine's hashing capacity against 0.71 with four lanes on two cores.
# Lanes do not lower the cost of a guess; memory and passes set it. Hashes made with other
# parameters still verify and are replaced at the next sign-in.
ARGON2_TIME_COST = 3
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_LANES = 2


def _argon2id(cost: PasswordHashingCost) -> Argon2Hasher:
    if cost == "minimal":
        # The least argon2 accepts (one pass over 8 KiB): test suites only, never production.
        return Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1)
    return Argon2Hasher(
        time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_LANES
    )


# The first hasher hashes; the others only verify, and a match on them asks for a re-hash.
# Argon2id hashes verify whatever their parameters, so a hash made at one cost verifies at
# the other and is replaced at the next sign-in.
_PASSWORD_HASHES: dict[PasswordHashingCost, PasswordHash] = {
    cost: PasswordHash((_argon2id(cost), BcryptHasher())) for cost in get_args(PasswordHashingCost)
}
_configured_cost: PasswordHashingCost = "standard"


def configure_password_hashing(*, cost: PasswordHashingCost) -> None:
    """Set the cost of new hashes (PASSWORD_HASHING_COST), for the whole process."""
    global _configured_cost  # noqa: PLW0603 - one cost per process, like the hashing threads
    _configured_cost = cost


def password_hasher() -> PasswordHash:
    """This process's hasher, at the configured cost."""
    return _PASSWORD_HASHES[_configured_cost]


def _usable_cores() -> int:
    # The cores this process may run on (a container's cpuset), not all the host's.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# One hash already runs its lanes on threads of its own, so one hash per ARGON2_LANES
# cores keeps every core busy; more would only wait for the same cores while holding
# another 64 MiB each.
HASHING_THREADS = max(1, _usable_cores() // ARGON2_LANES)
# Hashing yields to everything else in the process: a login storm uses the cores the
# event loop leaves idle, instead of delaying the requests that do not hash.
HASHING_NICENESS = 10


def _lower_priority() -> None:
    thread_id = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread_id)
        # Only ever lower the priority: raising it back is refused without privileges.
        os.setpriority(os.PRIO_PROCESS, thread_id, max(current, HASHING_NICENESS))
    except (AttributeError, OSError) as error:
        # Hashing at normal priority is slower for everyone else, not broken: an
        # initializer that raised would leave the pool unusable and every sign-in failing.
        logger.warning("Password hashing runs at normal priority: %s", error)


# A refused check may be retried as soon as one hash has run through.
BUSY_RETRY_AFTER_SECONDS = 1


class HashingQueue:
    """The hashing threads, and how many checks may wait for them.

    Counted from submission until the thread is done with it, so a request that gave up
    waiting (its deadline passed) still counts while its hash occupies a thread.
    """

    def __init__(self, *, threads: int, queue_size: int) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="password-hashing",
            initializer=_lower_priority,
        )
        self._threads = threads
        self.queue_size = queue_size
        self._pending = 0
        self._lock = threading.Lock()

    async def run(self, work: Callable[..., T], /, *args: object) -> T:
        with self._lock:
            if self._pending >= self._threads + self.queue_size:
                raise ServiceUnavailableError(
                    Unavailable.PASSWORD_HASHING, retry_after=BUSY_RETRY_AFTER_SECONDS
                )
            self._pending += 1
        try:
            future = self._pool.submit(work, *args)
        except BaseException:
            self._done()
            raise
        future.add_done_callback(self._done)
        return await asyncio.wrap_future(future)

    def _done(self, _: object = None) -> None:
        with self._lock:
            self._pending -= 1


# One queue per process: the threads are the process's, and so is the bound on waiting.
hashing = HashingQueue(
    threads=HASHING_THREADS,
    queue_size=Settings.model_fields["password_hashing_queue_size"].default,
)


def configure_hashing_queue(*, queue_size: int) -> None:
    """Set how many checks may wait (PASSWORD_HASHING_QUEUE_SIZE), for the whole process."""
    hashing.queue_size = queue_size


@dataclass(frozen=True, slots=True)
class VerifyResult:
    valid: bool
    updated_hash: str | None = None


def _verify_and_update(password: str, hashed: str) -> VerifyResult:
    try:
        valid, updated_hash = password_hasher().verify_and_update(password, hashed)
    except UnknownHashError:
        return VerifyResult(valid=False)
    except ValueError:
        # bcrypt 5 refuses passwords over 72 bytes instead of truncating them, so such a
        # password cannot be the one behind a bcrypt hash.
        return VerifyResult(valid=False)
    return VerifyResult(valid=valid, updated_hash=updated_hash)


def _dummy_hash() -> str:
    # Made at the configured cost, so checking it costs what checking a real account's does.
    return _dummy_hash_at(_configured_cost)


@cache
def _dummy_hash_at(cost: PasswordHashingCost) -> str:
    return _PASSWORD_HASHES[cost].hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    return await hashing.run(password_hasher().hash, password)


async def verify_password(password: str, hashed: str) -> VerifyResult:
    return await hashing.run(_verify_and_update, password, hashed)


async def verify_against_dummy(password: str) -> None:
    """Spend the same work as a real verification when there is no account to check."""
    await hashing.run(_verify_against_dummy, password)


def _verify_against_dummy(password: str) -> None:
    # In the hashing thread: the first call also makes the dummy hash, off the event loop.
    _verify_and_update(password, _dummy_hash())
