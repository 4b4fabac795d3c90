"""Fixtures for the gql-app command tests: settings from the test's own variables, and a
throwaway SQLite database the command is pointed at."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from gql_app.config import get_settings
from tests.factories import STRONG_PASSWORD

SECRET = "cli-test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings from this test's variables only, in an empty working directory."""
    for name in ("ENVIRONMENT", "FIRST_SUPERUSER_EMAIL", "SECRET_KEY_FILE", "GRAPHIQL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", STRONG_PASSWORD)
    # Keeps the project's own .env and secret file out of reach.
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def database(environment: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway SQLite file that the CLI is pointed at; created by the first command."""
    path = environment / "cli.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return path
