import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage

import freezegun
import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import StaticPool

from gql_app.config import PasswordHashingCost, Settings
from gql_app.db import SessionFactory, create_engine, create_session_factory
from gql_app.email.backends import MemoryBackend
from gql_app.main import create_app
from gql_app.models import User
from gql_app.security.passwords import configure_password_hashing
from gql_app.services import auth as auth_service
from gql_app.services.auth import Credentials
from gql_app.services.client_info import ClientInfo
from gql_app.services.key_ring import KeyRing
from gql_app.services.passkey_challenges import DatabaseChallengeStore
from tests.factories import ADMIN_PASSWORD, USER_PASSWORD, create_user
from tests.fixtures.database import create_sqlite_schema
from tests.fixtures.email import FailingEmailBackend
from tests.graphql import GraphQLClient
from tests.redis_server import redis_server_url

# pytester runs small suites of the plugin's (tests/testing/); gql_app.testing's fixtures are
# for tests/e2e/, whose conftest.py puts its server on PostgreSQL. Only tests/e2e/ may use
# the session's server: the first test to start it would decide its database for all.
pytest_plugins = ["pytester", "gql_app.testing"]

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"

# Coverage tracing makes document checks several times slower than in service, and parallel
# workers share two cores: the production budget (200 ms) would refuse ordinary documents
# now and then. The budget itself is tested with small values (test_check_budget.py,
# test_documents.py); every app the suite builds, or starts, gets this one.
os.environ.setdefault("GRAPHQL_CHECK_BUDGET_MS", "5000")
# pytest's event loops stop between tests, which a watchdog would take for a stuck worker
# and end the test run. It is tested in tests/test_watchdog.py and tests/faults/.
os.environ.setdefault("WORKER_WATCHDOG_SECONDS", "0")
# Argon2id at production cost takes a third of a second a hash, and the suite signs in
# thousands of times, in process and in the servers it starts: everything hashes at the
# least cost argon2 takes. The tests of hashing itself ask for the standard cost
# (standard_password_hashing); production refuses the minimal one (tests/security).
os.environ.setdefault("PASSWORD_HASHING_COST", "minimal")
SUITE_HASHING_COST = TypeAdapter(PasswordHashingCost).validate_python(
    os.environ["PASSWORD_HASHING_COST"]
)
configure_password_hashing(cost=SUITE_HASHING_COST)
# pytest times each test through _pytest.timing, whose clock freezegun would otherwise stop
# too: --durations would report decades for the tests that freeze time.
freezegun.configure(extend_ignore_list=["_pytest.timing"])


@pytest.fixture(autouse=True)
def suite_password_hashing() -> None:
    """Each test starts hashing at the suite's cost, whatever an app built before chose."""
    configure_password_hashing(cost=SUITE_HASHING_COST)


@pytest.fixture
def standard_password_hashing(settings: Settings) -> None:
    """Production's argon2id parameters, in this process and in the apps the test builds.

    Ask for it with ``usefixtures``, so it comes before the fixtures that hash.
    """
    settings.password_hashing_cost = "standard"
    configure_password_hashing(cost="standard")


# Read from the environment once, before any test changes it: building Settings takes tens
# of milliseconds under coverage, a copy a fraction of one.
SUITE_SETTINGS = Settings(
    environment="test",
    secret_key=SecretStr(TEST_SECRET),
    database_url="sqlite+aiosqlite:///:memory:",
    migrate_on_start=False,
    email_backend="memory",
    first_superuser_email=None,
    first_superuser_password=None,
    # The suite signs in many times from one client address; the rate-limit tests
    # (tests/api/test_rate_limits.py) turn the limits on with small values.
    rate_limit_enabled=False,
)


@pytest.fixture
def settings() -> Settings:
    return SUITE_SETTINGS.model_copy(deep=True)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis server for the rate-limit tests; skips (fails under CI) when there is none."""
    return redis_server_url()


@pytest.fixture(params=["memory", "redis"])
def rate_limit_storage(request: pytest.FixtureRequest) -> dict[str, str | None]:
    """Rate-limit settings for each storage, with counters no other test shares."""
    redis = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return {"redis_url": redis, "rate_limit_key_prefix": f"test-{uuid.uuid4().hex}"}


@pytest_asyncio.fixture
async def async_test_db() -> AsyncIterator[tuple[AsyncEngine, SessionFactory]]:
    """A fresh in-memory database for each test."""
    engine = create_engine(
        "sqlite+aiosqlite:///:memory:",
        connect_args={"check_same_thread": False},
        poolclass=StaticPool,
    )
    async with engine.begin() as connection:
        await create_sqlite_schema(connection)
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
    # Requests and the jobs they schedule both take their sessions from this factory.
    application.state.session_factory = session_factory
    yield application
    await application.state.engine.dispose()
    await application.state.rate_limiter.aclose()
    await application.state.passkey_challenges.aclose()


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest.fixture
def outbox(app: FastAPI) -> list[EmailMessage]:
    backend = app.state.email_service.backend
    assert isinstance(backend, MemoryBackend)
    return backend.outbox


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


async def signed_in(session: AsyncSession, settings: Settings, *, email: str, password: str) -> str:
    """An access token of a new session, from the service the login mutation calls (that
    mutation is tested in tests/api/test_login.py; here it would only add a request)."""
    issued = await auth_service.login(
        challenges=DatabaseChallengeStore(),
        session=session,
        settings=settings,
        keys=KeyRing(settings),
        credentials=Credentials(email=email, password=password),
        client=ClientInfo(),
    )
    return issued.access_token


@pytest_asyncio.fixture
async def user_token(db_session: AsyncSession, settings: Settings, test_user: User) -> str:
    return await signed_in(db_session, settings, email=test_user.email, password=USER_PASSWORD)


@pytest_asyncio.fixture
async def superuser_token(
    db_session: AsyncSession, settings: Settings, test_superuser: User
) -> str:
    return await signed_in(
        db_session, settings, email=test_superuser.email, password=ADMIN_PASSWORD
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Slow tests first, the rest in the order pytest-randomly chose: on -n auto's few
    # workers, a slow test handed out last would run on alone while the others sit idle.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # CI reads this line to prove the PostgreSQL suite ran rather than skipped.
    passed = terminalreporter.stats.get("passed", [])
    e2e_passed = sum(1 for report in passed if "e2e" in report.keywords)
    terminalreporter.write_line(f"e2e tests passed: {e2e_passed}")


@pytest.fixture
def failing_email(app: FastAPI) -> FailingEmailBackend:
    """Replace the application's email backend with one that cannot deliver."""
    backend = FailingEmailBackend()
    app.state.email_service.backend = backend
    return backend


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def app_log() -> Iterator[LogRecords]:
    """Records of the gql_app loggers (they do not propagate, so caplog cannot see them)."""
    handler = LogRecords()
    logger = logging.getLogger("gql_app")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
