"""Counting attempts in moving windows, on the `limits` library's async API.

Each :class:`Limit` is one or more windows ("10/15minutes;100/hour") under a scope name;
a key (a client IP, a hashed email) picks the counter within the scope. The moving-window
strategy keeps one timestamp per counted attempt, so a limit decays smoothly: an attempt
stops counting exactly one window after it was made, with no burst at a window boundary.

A :class:`Hit` can be given back when the attempt turns out not to be what the limit is
about (a correct password, for a limit on failed sign-ins): the check and the count stay one
atomic step, and the give-back comes after the outcome (:mod:`gql_app.security.give_back`).

Counters live in the process (``async+memory://``, one per application) or, with
``REDIS_URL``, in Redis, shared by every worker. A Redis that cannot be reached, or does not
answer within its timeouts, fails the operation closed with SERVICE_UNAVAILABLE: were it to
run unlimited, overloading Redis would switch throttling off.
"""

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from gql_app.availability import OUTAGE_RETRY_AFTER_SECONDS, Availability, Dependency
from gql_app.config import Settings
from gql_app.error_reasons import ErrorReason
from gql_app.errors import RateLimitedError, ServiceUnavailableError, Unavailable
from gql_app.redis_pool import redis_connection_pool
from gql_app.security.give_back import give_back_for

if TYPE_CHECKING:
    import coredis

UNKNOWN_CLIENT = "unknown"


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str
    windows: tuple[RateLimitItem, ...]
    # extensions.reason of the refusal.
    reason: ErrorReason = ErrorReason.RATE_LIMITED

    @classmethod
    def parse(
        cls, scope: str, spec: str, *, reason: ErrorReason = ErrorReason.RATE_LIMITED
    ) -> "Limit":
        return cls(scope=scope, windows=tuple(parse_many(spec)), reason=reason)


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit the services apply, read from the settings."""

    login_attempts_per_account: Limit
    login_attempts_per_ip: Limit
    registrations_per_ip: Limit
    password_resets_per_ip: Limit
    password_resets_per_email: Limit
    refreshes_per_ip: Limit
    email_verifications_per_ip: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        values = settings.rate_limits
        return cls(
            login_attempts_per_account=Limit.parse(
                "login-failures-account",
                values.login_attempts_per_account,
                reason=ErrorReason.LOGIN_LOCKED,
            ),
            login_attempts_per_ip=Limit.parse("login-ip", values.login_attempts_per_ip),
            registrations_per_ip=Limit.parse("register-ip", values.registrations_per_ip),
            password_resets_per_ip=Limit.parse("password-reset-ip", values.password_resets_per_ip),
            password_resets_per_email=Limit.parse(
                "password-reset-email", values.password_resets_per_email
            ),
            refreshes_per_ip=Limit.parse("refresh-ip", values.refreshes_per_ip),
            email_verifications_per_ip=Limit.parse(
                "verify-email-ip", values.email_verifications_per_ip
            ),
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """An attempt counted against a limit, as :meth:`RateLimiter.give_back` needs it."""

    limit: Limit
    key: str
    # Before the count: the entry it added is at or after this (same process, same clock).
    counted_since: float


# What the startup line names each limit: (operation, ((setting, what is counted), ...)).
_SUMMARY = (
    (
        "login",
        (("login_attempts_per_ip", "per IP"), ("login_attempts_per_account", "failed per account")),
    ),
    ("register", (("registrations_per_ip", "per IP"),)),
    (
        "password reset",
        (("password_resets_per_ip", "per IP"), ("password_resets_per_email", "per address")),
    ),
    ("refresh", (("refreshes_per_ip", "per IP"),)),
    ("email verification", (("email_verifications_per_ip", "per IP"),)),
)


def describe_limits(settings: Settings) -> str:
    """One line saying which limits are in force and where they come from, for the log."""
    if not settings.rate_limit_enabled:
        return "Rate limits off (RATE_LIMIT_ENABLED=false)"
    origin = (
        "production defaults" if settings.environment == "production" else "development defaults"
    )
    if settings.rate_limits_set:
        origin += "; set: " + ", ".join(name.upper() for name in settings.rate_limits_set)
    values = settings.rate_limits
    in_force = "; ".join(
        f"{operation} "
        + ", ".join(
            f"{getattr(values, name).replace(';', ' and ')} {counted}" for name, counted in limits
        )
        for operation, limits in _SUMMARY
    )
    counters = "in Redis" if settings.redis_url else "in this process"
    return f"Rate limits on ({origin}): {in_force}; counters {counters}"


def email_key(email: str) -> str:
    """A counter key for a normalised email that does not store the address itself."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


def ip_key(ip_address: str | None) -> str:
    return ip_address or UNKNOWN_CLIENT


class RateLimiter:
    """One application's counters. Disabled, every check passes and nothing is stored."""

    def __init__(
        self,
        *,
        limits: Limits,
        storage: Storage | None,
        key_prefix: str,
        availability: Availability,
        pool: "coredis.ConnectionPool | None" = None,
        timeout_seconds: float | None = None,
    ) -> None:
        self.limits = limits
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(storage) if storage is not None else None
        self._give_back = give_back_for(storage, pool) if storage is not None else None
        self._prefix = key_prefix
        self._availability = availability
        self._pool = pool
        self._timeout = timeout_seconds

    @classmethod
    def from_settings(
        cls, settings: Settings, *, availability: Availability | None = None
    ) -> "RateLimiter":
        limits = Limits.from_settings(settings)
        prefix = settings.rate_limit_key_prefix
        availability = availability or Availability()
        if not settings.rate_limit_enabled:
            return cls(limits=limits, storage=None, key_prefix=prefix, availability=availability)
        if settings.redis_url is None:
            return cls(
                limits=limits, storage=MemoryStorage(), key_prefix=prefix, availability=availability
            )
        pool = redis_connection_pool(settings)
        storage = RedisStorage(
            f"async+{settings.redis_url}",
            connection_pool=pool,  # type: ignore[arg-type]  # documented; typed too narrowly
            wrap_exceptions=True,
        )
        return cls(
            limits=limits,
            storage=storage,
            key_prefix=prefix,
            availability=availability,
            pool=pool,
            # Several commands make one check: the client's timeouts bound each, this the sum.
            timeout_seconds=settings.redis_connect_timeout_seconds
            + 2 * settings.redis_timeout_seconds,
        )

    @property
    def enabled(self) -> bool:
        return self._strategy is not None

    async def hit(self, limit: Limit, key: str) -> Hit:
        """Count an attempt, or raise RateLimitedError (not counting it) when over the limit.

        ServiceUnavailableError when the counters cannot be reached.
        """
        counted = Hit(limit=limit, key=key, counted_since=time.time())
        if self._strategy is None:
            return counted
        async with self._storage_call():
            await self._check(self._strategy, limit, key)
            refused = [
                window
                for window in limit.windows
                if not await self._strategy.hit(window, *self._identifiers(limit, key))
            ]
            if refused:  # a concurrent attempt took the last place
                raise RateLimitedError(await self._retry_after(limit, key, refused), limit.reason)
        return counted

    async def give_back(self, counted: Hit) -> None:
        """Uncount an attempt in every window of its limit, freeing the place it took.

        Storage failures are not raised: the give-back follows an outcome already reached (a
        session already created). The attempt then stays counted, the safe side, and the
        outage is reported like any other.
        """
        if self._give_back is None:
            return
        identifiers = self._identifiers(counted.limit, counted.key)
        try:
            async with asyncio.timeout(self._timeout):
                for window in counted.limit.windows:
                    await self._give_back.remove_entry(
                        window.key_for(*identifiers), counted_since=counted.counted_since
                    )
        except (StorageError, OSError) as error:  # OSError: asyncio's TimeoutError too
            self._availability.failed(Dependency.REDIS, error)
            return
        if self._pool is not None:
            self._availability.answered(Dependency.REDIS)

    async def check(self, limit: Limit, key: str) -> None:
        """Raise RateLimitedError when one more attempt would exceed the limit; count nothing."""
        if self._strategy is None:
            return
        async with self._storage_call():
            await self._check(self._strategy, limit, key)

    async def _check(self, strategy: MovingWindowRateLimiter, limit: Limit, key: str) -> None:
        refused = [
            window
            for window in limit.windows
            if not await strategy.test(window, *self._identifiers(limit, key))
        ]
        if refused:
            raise RateLimitedError(await self._retry_after(limit, key, refused), limit.reason)

    @asynccontextmanager
    async def _storage_call(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except (StorageError, OSError) as error:  # OSError: asyncio's TimeoutError too
            self._availability.failed(Dependency.REDIS, error)
            raise ServiceUnavailableError(
                Unavailable.RATE_LIMITER, retry_after=OUTAGE_RETRY_AFTER_SECONDS
            ) from error
        if self._pool is not None:
            self._availability.answered(Dependency.REDIS)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.disconnect()
            await asyncio.sleep(0)  # let the transports finish closing

    def _identifiers(self, limit: Limit, key: str) -> tuple[str, str, str]:
        return (self._prefix, limit.scope, key)

    async def _retry_after(self, limit: Limit, key: str, refused: list[RateLimitItem]) -> int:
        assert self._strategy is not None
        identifiers = self._identifiers(limit, key)
        resets = [
            (await self._strategy.get_window_stats(window, *identifiers)).reset_time
            for window in refused
        ]
        # An attempt still counts at the very instant its window ends: one second more.
        return math.floor(max(resets) - time.time()) + 1
