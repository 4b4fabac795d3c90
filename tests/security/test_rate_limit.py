"""The limiter over real storages (in-process memory and Redis), with time frozen."""

import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from freezegun import freeze_time
from limits.aio.storage import RedisStorage
from pydantic import SecretStr

from gql_app.availability import Availability, Dependency
from gql_app.config import Settings
from gql_app.errors import RateLimitedError
from gql_app.main import create_app
from gql_app.security.give_back import give_back_for
from gql_app.security.rate_limit import (
    Hit,
    Limit,
    RateLimiter,
    describe_limits,
    email_key,
    ip_key,
)
from tests.conftest import TEST_SECRET

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def limit_settings(**values: object) -> Settings:
    defaults: dict[str, object] = {
        "environment": "test",
        "secret_key": SecretStr(TEST_SECRET),
        "database_url": "sqlite+aiosqlite:///:memory:",
        # Production refuses the suite's minimal hashing cost.
        "password_hashing_cost": "standard",
    }
    return Settings.model_validate({**defaults, **values})


LimiterFactory = Callable[..., RateLimiter]


@pytest_asyncio.fixture
async def make_limiter(
    rate_limit_storage: dict[str, str | None],
) -> AsyncIterator[LimiterFactory]:
    built: list[RateLimiter] = []

    def make(**values: object) -> RateLimiter:
        limiter = RateLimiter.from_settings(limit_settings(**rate_limit_storage, **values))
        built.append(limiter)
        return limiter

    yield make
    for limiter in built:
        await limiter.aclose()


async def retry_after_of(limiter: RateLimiter, limit: Limit, key: str) -> int:
    with pytest.raises(RateLimitedError) as refused:
        await limiter.hit(limit, key)
    return refused.value.retry_after


class TestHit:
    async def test_counts_up_to_the_limit_then_refuses_with_the_wait(
        self, make_limiter: LimiterFactory
    ) -> None:
        limiter = make_limiter(registrations_per_ip="3/minute")
        limit = limiter.limits.registrations_per_ip
        with freeze_time(NOW):
            for _ in range(3):
                await limiter.hit(limit, "203.0.113.7")
            assert await retry_after_of(limiter, limit, "203.0.113.7") == 61

    async def test_keys_are_counted_apart(self, make_limiter: LimiterFactory) -> None:
        limiter = make_limiter(registrations_per_ip="1/minute")
        limit = limiter.limits.registrations_per_ip
        with freeze_time(NOW):
            await limiter.hit(limit, "203.0.113.7")
            await limiter.hit(limit, "203.0.113.8")
            with pytest.raises(RateLimitedError):
                await limiter.hit(limit, "203.0.113.7")

    async def test_the_window_moves_one_attempt_at_a_time(
        self, make_limiter: LimiterFactory
    ) -> None:
        limiter = make_limiter(registrations_per_ip="2/minute")
        limit = limiter.limits.registrations_per_ip
        with freeze_time(at(0)):
            await limiter.hit(limit, "k")
        with freeze_time(at(30)):
            await limiter.hit(limit, "k")
            # The oldest attempt leaves the window just after 60 s.
            assert await retry_after_of(limiter, limit, "k") == 31
        with freeze_time(at(59.5)):
            assert await retry_after_of(limiter, limit, "k") == 1
        with freeze_time(at(61)):
            await limiter.hit(limit, "k")
            assert await retry_after_of(limiter, limit, "k") == 30
        with freeze_time(at(91)):
            await limiter.hit(limit, "k")

    async def test_refused_attempts_do_not_extend_the_wait(
        self, make_limiter: LimiterFactory
    ) -> None:
        limiter = make_limiter(registrations_per_ip="1/minute")
        limit = limiter.limits.registrations_per_ip
        with freeze_time(at(0)):
            await limiter.hit(limit, "k")
        for second in range(1, 60, 10):
            with freeze_time(at(second)):
                assert await retry_after_of(limiter, limit, "k") == 61 - second
        with freeze_time(at(61)):
            await limiter.hit(limit, "k")

    async def test_the_longest_refusing_window_sets_the_wait(
        self, make_limiter: LimiterFactory
    ) -> None:
        limiter = make_limiter(login_attempts_per_account="2/minute;3/hour")
        limit = limiter.limits.login_attempts_per_account
        for second in (0, 1, 120):
            with freeze_time(at(second)):
                await limiter.hit(limit, "k")
        with freeze_time(at(121)):
            # The minute window has room again; the hour one frees up at 3600 s.
            assert await retry_after_of(limiter, limit, "k") == 3600 - 121 + 1

    async def test_the_wait_is_at_least_one_second(self, make_limiter: LimiterFactory) -> None:
        limiter = make_limiter(registrations_per_ip="1/second")
        limit = limiter.limits.registrations_per_ip
        with freeze_time(at(0)):
            await limiter.hit(limit, "k")
        with freeze_time(at(0.9)):
            assert await retry_after_of(limiter, limit, "k") == 1


class TestCheckAndRecord:
    async def test_check_counts_nothing(self, make_limiter: LimiterFactory) -> None:
        limiter = make_limiter(login_attempts_per_account="2/minute")
        limit = limiter.limits.login_attempts_per_account
        with freeze_time(NOW):
            for _ in range(5):
                await limiter.check(limit, "k")
            await limiter.hit(limit, "k")
            await limiter.hit(limit, "k")


class TestGiveBack:
    async def test_frees_the_place_in_every_window(self, make_limiter: LimiterFactory) -> None:
        limiter = make_limiter(login_attempts_per_account="2/minute;3/hour")
        limit = limiter.limits.login_attempts_per_account
        with freeze_time(at(0)):
            await limiter.hit(limit, "k")
            await limiter.give_back(await limiter.hit(limit, "k"))
            await limiter.hit(limit, "k")
            assert await retry_after_of(limiter, limit, "k") == 61
        with freeze_time(at(61)):
            # Had the hour kept the given-back attempt, it would be full already.
            await limiter.hit(limit, "k")
            assert await retry_after_of(limiter, limit, "k") == 3600 - 61 + 1

    async def test_takes_back_one_attempt_not_the_window(
        self, make_limiter: LimiterFactory
    ) -> None:
        limiter = make_limiter(login_attempts_per_account="3/minute")
        limit = limiter.limits.login_attempts_per_account
        with freeze_time(NOW):
            await limiter.hit(limit, "k")
            await limiter.hit(limit, "k")
            await limiter.give_back(await limiter.hit(limit, "k"))
            await limiter.hit(limit, "k")
            with pytest.raises(RateLimitedError):
                await limiter.hit(limit, "k")

    async def test_removes_the_attempts_own_entry_not_an_older_or_a_newer_one(
        self, make_limiter: LimiterFactory
    ) -> None:
        limiter = make_limiter(login_attempts_per_account="3/minute")
        limit = limiter.limits.login_attempts_per_account
        with freeze_time(at(0)):
            await limiter.hit(limit, "k")
        with freeze_time(at(10)):
            own = await limiter.hit(limit, "k")
        with freeze_time(at(20)):
            await limiter.hit(limit, "k")
            await limiter.give_back(own)
            await limiter.hit(limit, "k")
        with freeze_time(at(61)):
            # Left: the two attempts made at 20 s. With the one at 10 s left instead (either
            # other entry removed), the window would be full now and free up at 71 s.
            await limiter.hit(limit, "k")
            assert await retry_after_of(limiter, limit, "k") == 20

    async def test_never_removes_an_attempt_counted_before_it_began(
        self, make_limiter: LimiterFactory
    ) -> None:
        limiter = make_limiter(login_attempts_per_account="2/minute")
        limit = limiter.limits.login_attempts_per_account
        with freeze_time(at(0)):
            await limiter.hit(limit, "k")
            await limiter.hit(limit, "k")
        with freeze_time(at(30)):
            await limiter.give_back(Hit(limit=limit, key="k", counted_since=at(1).timestamp()))
            assert await retry_after_of(limiter, limit, "k") == 31

    async def test_other_keys_keep_their_attempts(self, make_limiter: LimiterFactory) -> None:
        limiter = make_limiter(login_attempts_per_account="1/minute")
        limit = limiter.limits.login_attempts_per_account
        with freeze_time(NOW):
            await limiter.hit(limit, "other")
            await limiter.give_back(await limiter.hit(limit, "k"))
            with pytest.raises(RateLimitedError):
                await limiter.hit(limit, "other")

    async def test_a_redis_that_cannot_be_reached_leaves_the_attempt_counted_quietly(
        self,
    ) -> None:
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        availability = Availability()
        limiter = RateLimiter.from_settings(
            limit_settings(redis_url=f"redis://127.0.0.1:{port}/0"), availability=availability
        )
        limit = limiter.limits.login_attempts_per_account
        try:
            await limiter.give_back(Hit(limit=limit, key="k", counted_since=0.0))
        finally:
            await limiter.aclose()
        assert availability.is_down(Dependency.REDIS)

    def test_a_storage_it_cannot_reach_into_is_refused(self) -> None:
        storage = RedisStorage("async+redis://127.0.0.1:6379/0")
        with pytest.raises(TypeError, match="no way to give back"):
            give_back_for(storage, None)


class TestStorageNamespaces:
    async def test_limiters_with_other_prefixes_do_not_share_counters(
        self, rate_limit_storage: dict[str, str | None]
    ) -> None:
        first = RateLimiter.from_settings(
            limit_settings(**rate_limit_storage, registrations_per_ip="1/minute")
        )
        other = RateLimiter.from_settings(
            limit_settings(
                **{**rate_limit_storage, "rate_limit_key_prefix": "other-" + str(id(first))},
                registrations_per_ip="1/minute",
            )
        )
        try:
            with freeze_time(NOW):
                await first.hit(first.limits.registrations_per_ip, "k")
                await other.hit(other.limits.registrations_per_ip, "k")
        finally:
            await first.aclose()
            await other.aclose()


class TestDisabled:
    async def test_nothing_is_limited_or_stored(self) -> None:
        limiter = RateLimiter.from_settings(
            limit_settings(rate_limit_enabled=False, registrations_per_ip="1/minute")
        )
        assert not limiter.enabled
        limit = limiter.limits.registrations_per_ip
        for _ in range(3):
            await limiter.give_back(await limiter.hit(limit, "k"))
            await limiter.hit(limit, "k")
            await limiter.check(limit, "k")
        await limiter.aclose()


class TestKeys:
    def test_email_keys_do_not_contain_the_address(self) -> None:
        key = email_key("ada@example.com")
        assert "ada" not in key
        assert key == email_key("ada@example.com")
        assert key != email_key("bob@example.com")

    def test_an_unknown_client_shares_one_counter(self) -> None:
        assert ip_key(None) == "unknown"
        assert ip_key("203.0.113.7") == "203.0.113.7"


class TestSettings:
    def test_production_defaults_follow_asvs(self) -> None:
        limiter = RateLimiter.from_settings(
            limit_settings(environment="production", rate_limit_enabled=False)
        )
        windows = limiter.limits.login_attempts_per_account.windows
        # ASVS: no more than 100 failed attempts per hour on one account.
        assert any(w.get_expiry() == 3600 and w.amount <= 100 for w in windows)

    @pytest.mark.parametrize(
        "values",
        [
            {"login_attempts_per_ip": "lots"},
            {"login_attempts_per_account": "10/fortnight"},
            {"redis_url": "http://127.0.0.1:6379"},
            {"trusted_proxies": "10.0.0.1/8"},
            {"trusted_proxies": "proxy.internal"},
        ],
    )
    def test_unusable_values_are_refused(self, values: dict[str, str]) -> None:
        with pytest.raises(ValueError, match="validation error"):
            limit_settings(**values)

    def test_trusted_proxies_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1,2001:db8::/32")
        monkeypatch.setenv("LOGIN_ATTEMPTS_PER_IP", "5/minute")
        monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
        settings = limit_settings()
        assert [str(network) for network in settings.trusted_proxies] == [
            "10.0.0.0/8",
            "192.0.2.1/32",
            "2001:db8::/32",
        ]
        assert settings.login_attempts_per_ip == "5/minute"
        assert settings.rate_limit_enabled is False


class TestDescription:
    def test_off(self) -> None:
        assert (
            describe_limits(limit_settings(rate_limit_enabled=False))
            == "Rate limits off (RATE_LIMIT_ENABLED=false)"
        )

    def test_development_defaults_in_the_process(self) -> None:
        assert describe_limits(limit_settings()) == (
            "Rate limits on (development defaults): login 10000/hour per IP, 10000/hour failed"
            " per account; register 10000/hour per IP; password reset 10000/hour per IP,"
            " 10000/hour per address; refresh 10000/hour per IP; email verification 10000/hour"
            " per IP; counters in this process"
        )

    def test_production_defaults_with_values_set_in_redis(self) -> None:
        settings = limit_settings(
            environment="production",
            login_attempts_per_ip="5/minute",
            refreshes_per_ip="9/minute",
            redis_url="redis://127.0.0.1:6379/0",
        )
        assert describe_limits(settings) == (
            "Rate limits on (production defaults; set: LOGIN_ATTEMPTS_PER_IP, REFRESHES_PER_IP):"
            " login 5/minute per IP, 10/15minutes and 100/hour failed per account; register"
            " 10/hour and 50/day per IP; password reset 10/hour and 50/day per IP, 3/hour and"
            " 10/day per address; refresh 9/minute per IP; email verification 20/hour per IP;"
            " counters in Redis"
        )


class TestPerApplication:
    async def test_each_application_keeps_its_own_memory_counters(self) -> None:
        settings = limit_settings(registrations_per_ip="1/minute", migrate_on_start=False)
        apps = [create_app(settings), create_app(settings)]
        try:
            with freeze_time(NOW):
                for app in apps:
                    limiter: RateLimiter = app.state.rate_limiter
                    await limiter.hit(limiter.limits.registrations_per_ip, "203.0.113.7")
        finally:
            for app in apps:
                await app.state.engine.dispose()
                await app.state.rate_limiter.aclose()
