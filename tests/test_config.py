from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from limits import parse_many
from pydantic import SecretStr, ValidationError

from gql_app.config import (
    DEVELOPMENT_RATE_LIMITS,
    MIN_SECRET_KEY_BYTES,
    PRODUCTION_RATE_LIMITS,
    RATE_LIMIT_SETTINGS,
    RateLimitValues,
    Settings,
    get_settings,
    origin_of,
)

SETTINGS_ENV = [
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "ENVIRONMENT",
    "DATABASE_URL",
    "GRAPHIQL",
    "FIRST_SUPERUSER_EMAIL",
    "FIRST_SUPERUSER_PASSWORD",
    "ACCESS_TOKEN_EXPIRE_SECONDS",
    "REFRESH_TOKEN_EXPIRE_SECONDS",
    "CORS_ORIGINS",
    "FRONTEND_BASE_URL",
    "EMAIL_BACKEND",
    *(name.upper() for name in RATE_LIMIT_SETTINGS),
    "PASSWORD_HASHING_COST",
]
LONG_SECRET = "s" * MIN_SECRET_KEY_BYTES


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    # Nothing relative to the working directory (.env, a secret file) may leak in or out.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / ".gql_app_secret"


@pytest.fixture
def make_settings(secret_file: Path) -> Any:
    secret_file.parent.mkdir()

    def make(**values: Any) -> Settings:
        values.setdefault("secret_key_file", secret_file)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


class TestProductionSecretKey:
    def test_missing_secret_key_is_refused(self, make_settings: Any) -> None:
        with pytest.raises(
            ValidationError, match="SECRET_KEY must be set when ENVIRONMENT=production"
        ):
            make_settings(environment="production")

    @pytest.mark.parametrize(
        "secret",
        [
            pytest.param("", id="empty"),
            pytest.param("s" * (MIN_SECRET_KEY_BYTES - 1), id="one-byte-short"),
            pytest.param("é" * 15 + "s", id="16-characters-but-31-bytes"),
        ],
    )
    def test_short_secret_key_is_refused(self, make_settings: Any, secret: str) -> None:
        with pytest.raises(ValidationError, match="at least 32 bytes"):
            make_settings(environment="production", secret_key=SecretStr(secret))

    @pytest.mark.parametrize(
        "secret",
        [
            pytest.param(LONG_SECRET, id="32-ascii"),
            pytest.param("é" * 16, id="16-characters-32-bytes"),
        ],
    )
    def test_secret_key_of_32_bytes_is_used(self, make_settings: Any, secret: str) -> None:
        settings = make_settings(environment="production", secret_key=SecretStr(secret))

        assert settings.secret_key_value == secret

    def test_secret_key_is_read_from_the_environment(
        self, make_settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")
        monkeypatch.setenv("SECRET_KEY", LONG_SECRET)

        settings = make_settings()

        assert settings.environment == "production"
        assert settings.secret_key_value == LONG_SECRET

    def test_production_never_writes_a_secret_file(
        self, make_settings: Any, secret_file: Path
    ) -> None:
        make_settings(environment="production", secret_key=SecretStr(LONG_SECRET))

        assert not secret_file.exists()

    def test_secret_key_is_hidden_from_repr(self, make_settings: Any) -> None:
        settings = make_settings(environment="production", secret_key=SecretStr(LONG_SECRET))

        assert LONG_SECRET not in repr(settings)


class TestDevelopmentSecretKey:
    @pytest.mark.parametrize("environment", ["development", "test"])
    def test_generates_a_private_secret_file_when_none_is_given(
        self, make_settings: Any, secret_file: Path, environment: str
    ) -> None:
        settings = make_settings(environment=environment)

        assert secret_file.read_text() == settings.secret_key_value
        assert len(settings.secret_key_value.encode()) >= MIN_SECRET_KEY_BYTES
        assert secret_file.stat().st_mode & 0o077 == 0

    def test_reuses_the_secret_file_so_tokens_survive_restarts(
        self, make_settings: Any, secret_file: Path
    ) -> None:
        first = make_settings()
        written = secret_file.read_text()

        second = make_settings()

        assert second.secret_key_value == first.secret_key_value
        assert secret_file.read_text() == written

    def test_reads_a_secret_file_written_by_someone_else(
        self, make_settings: Any, secret_file: Path
    ) -> None:
        secret_file.write_text(f"{LONG_SECRET}\n")

        assert make_settings().secret_key_value == LONG_SECRET

    def test_replaces_a_secret_file_that_is_too_short(
        self, make_settings: Any, secret_file: Path
    ) -> None:
        secret_file.write_text("short")

        settings = make_settings()

        assert settings.secret_key_value != "short"
        assert len(settings.secret_key_value.encode()) >= MIN_SECRET_KEY_BYTES
        assert secret_file.read_text() == settings.secret_key_value

    def test_explicit_secret_key_wins_and_no_file_is_written(
        self, make_settings: Any, secret_file: Path
    ) -> None:
        settings = make_settings(secret_key=SecretStr(LONG_SECRET))

        assert settings.secret_key_value == LONG_SECRET
        assert not secret_file.exists()

    def test_default_environment_is_development(self, make_settings: Any) -> None:
        assert make_settings().environment == "development"


class TestGraphiQL:
    @pytest.mark.parametrize(
        ("environment", "enabled"),
        [("development", True), ("test", True), ("production", False)],
    )
    def test_defaults_by_environment(
        self, make_settings: Any, environment: str, enabled: bool
    ) -> None:
        settings = make_settings(environment=environment, secret_key=SecretStr(LONG_SECRET))

        assert settings.graphiql_enabled is enabled

    @pytest.mark.parametrize(
        ("environment", "override"),
        [("development", False), ("production", True)],
    )
    def test_explicit_setting_overrides_the_default(
        self, make_settings: Any, environment: str, override: bool
    ) -> None:
        settings = make_settings(
            environment=environment, secret_key=SecretStr(LONG_SECRET), graphiql=override
        )

        assert settings.graphiql_enabled is override

    def test_can_be_switched_off_from_the_environment(
        self, make_settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("GRAPHIQL", "false")

        assert make_settings(secret_key=SecretStr(LONG_SECRET)).graphiql_enabled is False


class TestCorsOrigins:
    @pytest.mark.parametrize(
        ("environment", "origins"),
        [("development", ["http://localhost:3000"]), ("test", []), ("production", [])],
    )
    def test_defaults_by_environment(
        self, make_settings: Any, environment: str, origins: list[str]
    ) -> None:
        settings = make_settings(environment=environment, secret_key=SecretStr(LONG_SECRET))

        assert settings.allowed_cors_origins == origins

    def test_development_follows_the_frontend_base_url(
        self, make_settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FRONTEND_BASE_URL", "https://App.Example:8443/welcome/")

        settings = make_settings(secret_key=SecretStr(LONG_SECRET))

        assert settings.allowed_cors_origins == ["https://app.example:8443"]

    def test_development_without_a_usable_frontend_url_allows_none(
        self, make_settings: Any
    ) -> None:
        settings = make_settings(secret_key=SecretStr(LONG_SECRET), frontend_base_url="localhost")

        assert settings.allowed_cors_origins == []

    @pytest.mark.parametrize("environment", ["development", "production"])
    @pytest.mark.parametrize(
        ("raw", "origins"),
        [
            ("[]", []),
            (
                '["https://a.example", "https://b.example"]',
                ["https://a.example", "https://b.example"],
            ),
        ],
    )
    def test_an_explicit_list_is_used_as_it_is(
        self,
        make_settings: Any,
        monkeypatch: pytest.MonkeyPatch,
        environment: str,
        raw: str,
        origins: list[str],
    ) -> None:
        monkeypatch.setenv("CORS_ORIGINS", raw)

        settings = make_settings(environment=environment, secret_key=SecretStr(LONG_SECRET))

        assert settings.allowed_cors_origins == origins

    @pytest.mark.parametrize(
        ("url", "origin"),
        [
            ("http://localhost:3000", "http://localhost:3000"),
            ("http://localhost:3000/", "http://localhost:3000"),
            (" HTTP://LocalHost:3000/app?x=1 ", "http://localhost:3000"),
            ("https://app.example:443/", "https://app.example"),
            ("http://app.example:80", "http://app.example"),
            ("http://app.example:443", "http://app.example:443"),
            ("http://[::1]:3000/", "http://[::1]:3000"),
            ("http://user:secret@app.example/", "http://app.example"),
            ("ftp://files.example", None),
            ("localhost:3000", None),
            ("http://", None),
            ("http://app.example:99999/", None),
        ],
    )
    def test_origin_of_is_what_a_browser_sends(self, url: str, origin: str | None) -> None:
        assert origin_of(url) == origin


class TestDevelopmentPages:
    @pytest.mark.parametrize(
        ("environment", "backend", "enabled"),
        [
            ("development", "console", True),
            ("development", "smtp", False),
            ("development", "memory", False),
            ("test", "console", False),
            ("production", "console", False),
        ],
    )
    def test_dev_mail_needs_development_and_the_console(
        self, make_settings: Any, environment: str, backend: str, enabled: bool
    ) -> None:
        settings = make_settings(
            environment=environment, email_backend=backend, secret_key=SecretStr(LONG_SECRET)
        )

        assert settings.dev_mail_enabled is enabled

    @pytest.mark.parametrize(
        ("environment", "graphiql", "redirects"),
        [
            ("development", None, True),
            ("development", False, False),
            ("test", None, False),
            ("production", True, False),
        ],
    )
    def test_root_redirects_to_graphiql_in_development_only(
        self, make_settings: Any, environment: str, graphiql: bool | None, redirects: bool
    ) -> None:
        settings = make_settings(
            environment=environment, graphiql=graphiql, secret_key=SecretStr(LONG_SECRET)
        )

        assert settings.root_redirects_to_graphiql is redirects


def least_allowed(spec: str) -> int:
    """Attempts every window of a limit lets through at once, from a standing start."""
    return min(window.amount for window in parse_many(spec))


class TestRateLimitDefaults:
    def test_production_keeps_its_limits(self, make_settings: Any) -> None:
        settings = make_settings(environment="production", secret_key=SecretStr(LONG_SECRET))

        assert settings.rate_limits == RateLimitValues(
            login_attempts_per_account="10/15minutes;100/hour",
            login_attempts_per_ip="60/minute;600/hour",
            registrations_per_ip="10/hour;50/day",
            password_resets_per_ip="10/hour;50/day",
            password_resets_per_email="3/hour;10/day",
            refreshes_per_ip="120/minute",
            email_verifications_per_ip="20/hour",
        )

    @pytest.mark.parametrize("environment", ["development", "test"])
    def test_outside_production_the_defaults_make_room_for_a_test_suite(
        self, make_settings: Any, environment: str
    ) -> None:
        limits = make_settings(environment=environment).rate_limits

        assert limits == DEVELOPMENT_RATE_LIMITS
        # What one client address must be able to do within the hour, however fast.
        assert least_allowed(limits.registrations_per_ip) >= 1000
        assert least_allowed(limits.login_attempts_per_ip) >= 2000
        assert least_allowed(limits.login_attempts_per_account) >= 2000
        assert least_allowed(limits.password_resets_per_ip) >= 500
        assert least_allowed(limits.password_resets_per_email) >= 500
        for name in RATE_LIMIT_SETTINGS:
            # Never tighter than production's, in any window.
            development = least_allowed(getattr(limits, name))
            assert development >= least_allowed(getattr(PRODUCTION_RATE_LIMITS, name))

    @pytest.mark.parametrize("environment", ["development", "test", "production"])
    def test_an_explicit_value_wins_in_every_environment(
        self, make_settings: Any, environment: str
    ) -> None:
        settings = make_settings(
            environment=environment,
            secret_key=SecretStr(LONG_SECRET),
            registrations_per_ip="3/minute",
        )
        defaults = (
            PRODUCTION_RATE_LIMITS if environment == "production" else DEVELOPMENT_RATE_LIMITS
        )

        assert settings.rate_limits.registrations_per_ip == "3/minute"
        assert settings.rate_limits.login_attempts_per_ip == defaults.login_attempts_per_ip
        assert settings.rate_limits_set == ("registrations_per_ip",)

    def test_an_explicit_value_from_the_environment_wins(
        self, make_settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOGIN_ATTEMPTS_PER_ACCOUNT", "5/15minutes")

        settings = make_settings()

        assert settings.rate_limits.login_attempts_per_account == "5/15minutes"
        assert (
            settings.rate_limits.registrations_per_ip
            == DEVELOPMENT_RATE_LIMITS.registrations_per_ip
        )

    def test_nothing_set_explicitly(self, make_settings: Any) -> None:
        assert make_settings().rate_limits_set == ()

    @pytest.mark.parametrize("value", ["lots", "10/fortnight", ""])
    def test_an_unusable_explicit_value_is_refused(self, make_settings: Any, value: str) -> None:
        with pytest.raises(ValidationError, match="refreshes_per_ip"):
            make_settings(refreshes_per_ip=value)

    def test_a_copy_for_production_takes_production_defaults(self, make_settings: Any) -> None:
        development = make_settings(secret_key=SecretStr(LONG_SECRET))

        production = development.model_copy(update={"environment": "production"})

        assert production.rate_limits == PRODUCTION_RATE_LIMITS


class TestOtherSettings:
    @pytest.mark.parametrize(
        "field", ["access_token_expire_seconds", "refresh_token_expire_seconds"]
    )
    @pytest.mark.parametrize("value", [0, -1])
    def test_token_lifetimes_must_be_positive(
        self, make_settings: Any, field: str, value: int
    ) -> None:
        with pytest.raises(ValidationError, match=field):
            make_settings(secret_key=SecretStr(LONG_SECRET), **{field: value})

    def test_unknown_environment_is_refused(self, make_settings: Any) -> None:
        with pytest.raises(ValidationError, match="environment"):
            make_settings(environment="staging", secret_key=SecretStr(LONG_SECRET))

    def test_database_url_comes_from_the_environment(
        self, make_settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///elsewhere.db")

        settings = make_settings(secret_key=SecretStr(LONG_SECRET))

        assert settings.database_url == "sqlite+aiosqlite:///elsewhere.db"


class TestPasskeySettings:
    def test_by_default_passkeys_belong_to_the_frontends_host(self, make_settings: Any) -> None:
        settings = make_settings(
            secret_key=SecretStr(LONG_SECRET), frontend_base_url="https://app.example/welcome"
        )

        assert settings.passkey_rp_id == "app.example"
        assert settings.accepts_passkey_origin("https://app.example")
        assert not settings.accepts_passkey_origin("https://evil.example")
        assert not settings.accepts_passkey_origin("http://localhost:5173")

    @pytest.mark.parametrize(
        ("environment", "accepted"), [("development", True), ("test", False), ("production", False)]
    )
    def test_any_localhost_port_only_in_development(
        self, make_settings: Any, environment: str, accepted: bool
    ) -> None:
        settings = make_settings(environment=environment, secret_key=SecretStr(LONG_SECRET))

        assert settings.passkey_rp_id == "localhost"
        assert settings.accepts_passkey_origin("http://localhost:5173") is accepted
        assert settings.accepts_passkey_origin("http://localhost:3000")
        assert not settings.accepts_passkey_origin("http://localhost.evil.example:3000")

    def test_listed_origins_are_the_only_ones(
        self, make_settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("WEBAUTHN_ORIGINS", '["https://app.example", "https://m.app.example"]')
        monkeypatch.setenv("WEBAUTHN_RP_ID", "app.example")

        settings = make_settings(secret_key=SecretStr(LONG_SECRET))

        assert settings.passkey_rp_id == "app.example"
        assert settings.accepts_passkey_origin("https://m.app.example")
        assert not settings.accepts_passkey_origin("http://localhost:3000")

    @pytest.mark.parametrize(
        "origin", ["https://app.example/", "https://app.example/login", "app.example", "ftp://x"]
    )
    def test_an_origin_that_is_not_one_is_refused_at_start(
        self, make_settings: Any, origin: str
    ) -> None:
        with pytest.raises(ValidationError, match="WEBAUTHN_ORIGINS"):
            make_settings(secret_key=SecretStr(LONG_SECRET), webauthn_origins=[origin])


class TestSigningKeySettings:
    def test_defaults(self, make_settings: Any) -> None:
        settings = make_settings(secret_key=SecretStr(LONG_SECRET))

        assert settings.jwt_algorithm == "ES256"
        assert settings.signing_key_publish_seconds == 3600
        assert settings.signing_key_rotation_days is None
        assert settings.signing_key_cache_seconds == 30
        # Verifiers' caches refresh well within the delay before a published key signs.
        assert settings.jwks_max_age_seconds == 600

    @pytest.mark.parametrize(("publish", "max_age"), [(3600, 600), (600, 150), (0, 0)])
    def test_the_key_set_is_cached_for_a_quarter_of_the_publish_delay_at_most(
        self, make_settings: Any, publish: int, max_age: int
    ) -> None:
        settings = make_settings(
            secret_key=SecretStr(LONG_SECRET), signing_key_publish_seconds=publish
        )

        assert settings.jwks_max_age_seconds == max_age

    def test_an_unknown_algorithm_is_refused(self, make_settings: Any) -> None:
        with pytest.raises(ValidationError, match="jwt_algorithm"):
            make_settings(secret_key=SecretStr(LONG_SECRET), jwt_algorithm="HS512")

    def test_a_short_key_encryption_key_is_refused(self, make_settings: Any) -> None:
        with pytest.raises(ValidationError, match="KEY_ENCRYPTION_KEY must be at least 32 bytes"):
            make_settings(secret_key=SecretStr(LONG_SECRET), key_encryption_key=SecretStr("k"))

    def test_each_use_of_the_secret_gets_its_own_key(self, make_settings: Any) -> None:
        settings = make_settings(secret_key=SecretStr(LONG_SECRET))
        separate = make_settings(
            secret_key=SecretStr(LONG_SECRET), key_encryption_key=SecretStr("k" * 32)
        )

        keys = {
            settings.key_encryption_secret,
            settings.refresh_successor_key,
            LONG_SECRET.encode(),
        }
        assert len(keys) == 3
        assert separate.key_encryption_secret != settings.key_encryption_secret
        assert separate.refresh_successor_key == settings.refresh_successor_key


class TestGetSettings:
    @pytest.fixture(autouse=True)
    def fresh_cache(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        monkeypatch.setenv("SECRET_KEY", LONG_SECRET)
        get_settings.cache_clear()
        yield
        get_settings.cache_clear()

    def test_is_built_once_and_shared(self) -> None:
        assert get_settings() is get_settings()

    def test_reads_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")

        settings = get_settings()

        assert settings.environment == "production"
        assert settings.secret_key_value == LONG_SECRET
