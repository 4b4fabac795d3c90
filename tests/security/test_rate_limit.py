"""The limiter over real storages (in-process memory and Redis), with time frozen."""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from freezegun import freeze_time
from pydantic import SecretStr

from gql_app.config import Settings
from gql_app.errors import RateLimitedError
from gql_app.main import create_app
from gql_app.security.rate_limit import Limit, RateLimiter, email_key, ip_key
from tests.conftest import TEST_SECRET

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def limit_settings(**values: object) -> Settings:
    return Settings(
        environment="test",
        secret_key=SecretStr(TEST_SECRET),
        database_url="sqlite+aiosqlite:///:memory:",
        **values,  # type: ignore[arg-type]
    )


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
    def test_defaults_follow_asvs(self) -> None:
        limiter = RateLimiter.from_settings(limit_settings(rate_limit_enabled=False))
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
