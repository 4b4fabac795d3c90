from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import StaticPool

from gql_app.config import Settings
from gql_app.db import SessionFactory, create_engine, create_session_factory, get_session
from gql_app.main import create_app
from gql_app.models import Base, User
from tests.factories import ADMIN_PASSWORD, USER_PASSWORD, create_user
from tests.graphql import GraphQLClient, login

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        secret_key=SecretStr(TEST_SECRET),
        database_url="sqlite+aiosqlite:///:memory:",
        migrate_on_start=False,
        first_superuser_email=None,
        first_superuser_password=None,
    )


@pytest_asyncio.fixture
async def async_test_db() -> AsyncIterator[tuple[AsyncEngine, SessionFactory]]:
    """A fresh in-memory database for each test."""
    engine = create_engine(
        "sqlite+aiosqlite:///:memory:",
        connect_args={"check_same_thread": False},
        poolclass=StaticPool,
    )
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield engine, create_session_factory(engine)
    await engine.dispose()


@pytest_asyncio.fixture
async def db_session(
    async_test_db: tuple[AsyncEngine, SessionFactory],
) -> AsyncIterator[AsyncSession]:
    _, session_factory = async_test_db
    async with session_factory() as session:
        yield session


@pytest_asyncio.fixture
async def app(
    settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]
) -> AsyncIterator[FastAPI]:
    _, session_factory = async_test_db
    application = create_app(settings)

    async def override_get_session() -> AsyncIterator[AsyncSession]:
        async with session_factory() as session:
            yield session

    application.dependency_overrides[get_session] = override_get_session
    yield application
    application.dependency_overrides.clear()
    await application.state.engine.dispose()


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest.fixture
def gql(client: AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


@pytest_asyncio.fixture
async def test_user(db_session: AsyncSession) -> User:
    return await create_user(db_session, email="testuser@example.com", password=USER_PASSWORD)


@pytest_asyncio.fixture
async def test_superuser(db_session: AsyncSession) -> User:
    return await create_user(
        db_session,
        email="superuser@example.com",
        password=ADMIN_PASSWORD,
        is_superuser=True,
        full_name="Super User",
    )


@pytest_asyncio.fixture
async def user_token(gql: GraphQLClient, test_user: User) -> str:
    return await login(gql, email=test_user.email, password=USER_PASSWORD)


@pytest_asyncio.fixture
async def superuser_token(gql: GraphQLClient, test_superuser: User) -> str:
    return await login(gql, email=test_superuser.email, password=ADMIN_PASSWORD)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # CI reads this line to prove the PostgreSQL suite ran rather than skipped.
    passed = terminalreporter.stats.get("passed", [])
    e2e_passed = sum(1 for report in passed if "e2e" in report.keywords)
    terminalreporter.write_line(f"e2e tests passed: {e2e_passed}")
