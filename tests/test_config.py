from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from gql_app.config import MIN_SECRET_KEY_BYTES, Settings, get_settings

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

        assert settings.signing_key == secret

    def test_secret_key_is_read_from_the_environment(
        self, make_settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")
        monkeypatch.setenv("SECRET_KEY", LONG_SECRET)

        settings = make_settings()

        assert settings.environment == "production"
        assert settings.signing_key == LONG_SECRET

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

        assert secret_file.read_text() == settings.signing_key
        assert len(settings.signing_key.encode()) >= MIN_SECRET_KEY_BYTES
        assert secret_file.stat().st_mode & 0o077 == 0

    def test_reuses_the_secret_file_so_tokens_survive_restarts(
        self, make_settings: Any, secret_file: Path
    ) -> None:
        first = make_settings()
        written = secret_file.read_text()

        second = make_settings()

        assert second.signing_key == first.signing_key
        assert secret_file.read_text() == written

    def test_reads_a_secret_file_written_by_someone_else(
        self, make_settings: Any, secret_file: Path
    ) -> None:
        secret_file.write_text(f"{LONG_SECRET}\n")

        assert make_settings().signing_key == LONG_SECRET

    def test_replaces_a_secret_file_that_is_too_short(
        self, make_settings: Any, secret_file: Path
    ) -> None:
        secret_file.write_text("short")

        settings = make_settings()

        assert settings.signing_key != "short"
        assert len(settings.signing_key.encode()) >= MIN_SECRET_KEY_BYTES
        assert secret_file.read_text() == settings.signing_key

    def test_explicit_secret_key_wins_and_no_file_is_written(
        self, make_settings: Any, secret_file: Path
    ) -> None:
        settings = make_settings(secret_key=SecretStr(LONG_SECRET))

        assert settings.signing_key == LONG_SECRET
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
        assert settings.signing_key == LONG_SECRET
