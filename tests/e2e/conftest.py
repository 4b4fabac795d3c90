"""End-to-end fixtures: the real application on a real PostgreSQL database.

Each xdist worker gets a database of its own, recreated and migrated with Alembic
once per session; every test starts from empty tables (TRUNCATE is much faster
than recreating the schema). The application is built by ``create_app`` with no
dependency overrides: requests use its own engine and session factory.

These fixtures shadow the SQLite-based ``settings``, ``app`` and ``async_test_db``
of tests/conftest.py, so the shared ``client``, ``gql``, ``db_session``,
``test_user``, ``test_superuser``, ``user_token`` and ``superuser_token`` fixtures
work unchanged against PostgreSQL here.
"""

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_app.config import Settings
from gql_app.db import SessionFactory, create_engine
from gql_app.main import create_app
from gql_app.migrations import upgrade_to_head
from tests.e2e.postgres import (
    database_name,
    drop_database,
    postgres_server,
    recreate_database,
    run,
)

TABLES = ("users", "auth_sessions")
SECRET_KEY = "e2e-secret-key-that-is-long-enough-for-hs256-0123456789"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server URL; skips (fails under CI) when there is none."""
    with postgres_server() as url:
        yield url


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def e2e_database_url(postgres_server_url: str, worker_id: str) -> Iterator[str]:
    """This worker's database, recreated empty and migrated to head once per session."""
    name = database_name("gql_app_test", worker_id)
    url = recreate_database(postgres_server_url, name)
    run(lambda: _migrate(url))
    yield url
    drop_database(postgres_server_url, name)


@pytest.fixture(scope="session")
def e2e_settings(e2e_database_url: str) -> Settings:
    return Settings(
        environment="test",
        secret_key=SecretStr(SECRET_KEY),
        database_url=e2e_database_url,
        migrate_on_start=False,
        # Mail is kept in a list (the ``outbox`` fixture) rather than printed.
        email_backend="memory",
        first_superuser_email=None,
        first_superuser_password=None,
        # Journeys here sign in and register many times from one address.
        rate_limit_enabled=False,
    )


@pytest.fixture
def settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(deep=True)


@pytest_asyncio.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real application, its lifespan running, on empty tables."""
    application = create_app(settings)
    async with application.state.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(TABLES)} CASCADE"))
    # The lifespan disposes of the application's engine on the way out.
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def async_test_db(app: FastAPI) -> tuple[AsyncEngine, SessionFactory]:
    """The application's own engine and session factory (for direct database access)."""
    return app.state.engine, app.state.session_factory


@pytest.fixture(scope="session")
def gql_app_database_url(postgres_server_url: str, worker_id: str) -> Iterator[str]:
    """The plugin's server (gql_app.testing) on a PostgreSQL database of this worker's own.

    Not the one above: its tables are emptied between tests, while the server's accounts
    are each test's own and stay. The server migrates it when it starts.
    """
    name = database_name("gql_app_plugin", worker_id)
    url = recreate_database(postgres_server_url, name)
    yield url
    drop_database(postgres_server_url, name)
