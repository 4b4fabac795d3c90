"""What clients see while a dependency is down or saturated: typed answers, never a 500.

The database and Redis here are real addresses nothing listens on (every connection is
refused at once), or a server of the test's own that accepts connections and never
answers. Stopping, freezing and restarting real servers under load is in tests/faults/.
"""

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gql_app.api.context import Context
from gql_app.api.media_types import GRAPHQL_RESPONSE_JSON
from gql_app.availability import Availability, Dependency
from gql_app.config import Settings
from gql_app.db import SessionFactory, create_engine, create_session_factory
from gql_app.email.backends import MemoryBackend
from gql_app.email.service import EmailService
from gql_app.errors import PermissionDeniedError, ServiceUnavailableError, Unavailable
from gql_app.main import create_app
from gql_app.models import User
from gql_app.security import passwords
from gql_app.security.rate_limit import RateLimiter
from gql_app.services.key_ring import KeyRing
from gql_app.services.passkey_challenges import DatabaseChallengeStore
from tests.conftest import LogRecords
from tests.factories import USER_PASSWORD
from tests.graphql import LOGIN, GraphQLClient, login
from tests.operations import ME

# Nothing listens on port 1: connections are refused at once.
REFUSING_DATABASE = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
REFUSING_REDIS = "redis://127.0.0.1:1/0"
LOGIN_BODY = {
    "query": LOGIN,
    "variables": {"input": {"email": "testuser@example.com", "password": USER_PASSWORD}},
}


def extensions(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [error["extensions"] for error in body["errors"]]


@pytest_asyncio.fixture
async def database_down(settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app(settings)
    engine = create_engine(REFUSING_DATABASE)
    app.state.session_factory = create_session_factory(engine)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
        yield http
    await engine.dispose()
    await app.state.engine.dispose()


def app_with(
    settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory], **changes: object
) -> FastAPI:
    _, session_factory = async_test_db
    app = create_app(settings.model_copy(update=changes))
    app.state.session_factory = session_factory
    return app


class TestDatabaseDown:
    async def test_a_query_is_answered_service_unavailable_with_a_reason(
        self, database_down: AsyncClient
    ) -> None:
        response = await database_down.post("/graphql", json=LOGIN_BODY)

        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        assert extensions(body) == [
            {"code": "SERVICE_UNAVAILABLE", "reason": "DATABASE_UNAVAILABLE", "retryAfter": 5}
        ]
        assert "database" in body["errors"][0]["message"]

    async def test_graphql_over_http_clients_get_503_and_retry_after(
        self, database_down: AsyncClient
    ) -> None:
        response = await database_down.post(
            "/graphql",
            json=LOGIN_BODY,
            headers={"accept": GRAPHQL_RESPONSE_JSON},
        )

        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)

    async def test_the_outage_is_logged_once_without_a_traceback(
        self, database_down: AsyncClient, app_log: LogRecords
    ) -> None:
        for _ in range(5):
            await database_down.post("/graphql", json=LOGIN_BODY)

        problems = [r for r in app_log.records if r.levelname in {"ERROR", "CRITICAL"}]
        assert [r.name for r in problems] == ["gql_app.availability"]
        assert problems[0].exc_info is None

    async def test_operations_that_need_no_database_still_run(
        self, database_down: AsyncClient
    ) -> None:
        response = await database_down.post("/graphql", json={"query": "{ __typename }"})

        assert response.json() == {"data": {"__typename": "Query"}}

    async def test_readiness_names_the_database(self, database_down: AsyncClient) -> None:
        # The app's own engine answers; the overridden factory is what requests use.
        response = await database_down.get("/readyz")

        assert response.json()["checks"] == {"database": "ok"}


class TestMixedErrors:
    async def test_a_response_with_other_errors_too_keeps_its_usual_status(
        self, database_down: AsyncClient
    ) -> None:
        document = 'mutation { a: login(input: {email: "x", password: "y"}) { expiresIn } }'

        response = await database_down.post(
            "/graphql", json={"query": document}, headers={"accept": GRAPHQL_RESPONSE_JSON}
        )

        assert response.status_code == 200
        assert [e["code"] for e in extensions(response.json())] == ["BAD_USER_INPUT"]
        assert "retry-after" not in response.headers


class TestRedisDown:
    @pytest_asyncio.fixture
    async def redis_down(
        self, settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> AsyncIterator[FastAPI]:
        app = app_with(settings, async_test_db, rate_limit_enabled=True, redis_url=REFUSING_REDIS)
        yield app
        await app.state.rate_limiter.aclose()
        await app.state.persisted_queries.storage.aclose()
        await app.state.engine.dispose()

    async def test_rate_limited_operations_fail_closed_and_typed(
        self, redis_down: FastAPI, test_user: User
    ) -> None:
        async with AsyncClient(
            transport=ASGITransport(app=redis_down), base_url="http://t"
        ) as http:
            response = await http.post("/graphql", json=LOGIN_BODY)

        assert extensions(response.json()) == [
            {"code": "SERVICE_UNAVAILABLE", "reason": "RATE_LIMITER_UNAVAILABLE", "retryAfter": 5}
        ]

    async def test_operations_that_need_no_limiter_keep_working(
        self, redis_down: FastAPI, gql: GraphQLClient, test_user: User
    ) -> None:
        # Signed in where Redis answers (the suite's app, limits off), then asked here.
        token = await login(gql, email=test_user.email, password=USER_PASSWORD)
        async with AsyncClient(
            transport=ASGITransport(app=redis_down), base_url="http://t"
        ) as http:
            me = await GraphQLClient(http)(ME, token=token)

        assert me.errors == []
        assert me.data["me"]["email"] == test_user.email

    async def test_readiness_is_503_and_names_redis(self, redis_down: FastAPI) -> None:
        async with AsyncClient(
            transport=ASGITransport(app=redis_down), base_url="http://t"
        ) as http:
            response = await http.get("/readyz")

        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "checks": {"database": "ok", "redis": "unavailable"},
        }

    async def test_readiness_is_ok_when_redis_answers(
        self,
        settings: Settings,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        redis_url: str,
    ) -> None:
        app = app_with(settings, async_test_db, redis_url=redis_url)
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            response = await http.get("/readyz")
        await app.state.persisted_queries.storage.aclose()
        await app.state.engine.dispose()

        assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word: a frozen Redis, to a client."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


class TestRedisThatNeverAnswers:
    async def test_a_limiter_check_gives_up_within_its_timeouts(
        self, settings: Settings, silent_server: int
    ) -> None:
        limiter = RateLimiter.from_settings(
            settings.model_copy(
                update={
                    "rate_limit_enabled": True,
                    "redis_url": f"redis://127.0.0.1:{silent_server}/0",
                    "redis_connect_timeout_seconds": 0.2,
                    "redis_timeout_seconds": 0.2,
                }
            ),
            availability=Availability(),
        )
        try:
            # Without the bounds this would wait forever; ten seconds turns that into a failure.
            async with asyncio.timeout(10):
                with pytest.raises(ServiceUnavailableError):
                    await limiter.hit(limiter.limits.login_attempts_per_ip, "192.0.2.1")
        finally:
            await limiter.aclose()


class HeldHashing:
    """Every hashing thread busy with a job that waits until the test lets it go."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def work(self) -> None:
        self.started.release()
        self.release.wait(timeout=30)


@pytest_asyncio.fixture
async def hashing_busy(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HeldHashing]:
    # After the app is built: building it sizes the queue from the settings.
    monkeypatch.setattr(passwords.hashing, "queue_size", 0)
    held = HeldHashing()
    jobs = [
        asyncio.ensure_future(passwords.hashing.run(held.work))
        for _ in range(passwords.HASHING_THREADS)
    ]
    for _ in jobs:
        await asyncio.to_thread(held.started.acquire, True, 30)
    yield held
    held.release.set()
    await asyncio.gather(*jobs)


class TestHashingSaturated:
    async def test_a_login_beyond_the_queue_is_answered_at_once(
        self, hashing_busy: HeldHashing, client: AsyncClient, test_user: User
    ) -> None:
        response = await client.post(
            "/graphql",
            json=LOGIN_BODY,
            headers={"accept": GRAPHQL_RESPONSE_JSON},
        )

        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert extensions(response.json()) == [
            {"code": "SERVICE_UNAVAILABLE", "reason": "PASSWORD_HASHING_BUSY", "retryAfter": 1}
        ]

    async def test_an_unknown_email_is_answered_the_same(
        self, hashing_busy: HeldHashing, client: AsyncClient
    ) -> None:
        unknown = {"input": {"email": "nobody@example.com", "password": USER_PASSWORD}}

        response = await client.post("/graphql", json={"query": LOGIN, "variables": unknown})

        assert [e["reason"] for e in extensions(response.json())] == ["PASSWORD_HASHING_BUSY"]


class TestRequestDeadline:
    async def test_a_request_past_its_deadline_is_answered_typed(
        self,
        settings: Settings,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        test_user: User,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        release = threading.Event()
        check = passwords._verify_and_update

        def slow_check(password: str, hashed: str) -> passwords.VerifyResult:
            release.wait(timeout=30)
            return check(password, hashed)

        monkeypatch.setattr(passwords, "_verify_and_update", slow_check)
        app = app_with(settings, async_test_db, request_timeout_seconds=0.3)
        try:
            async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
                classic = await http.post("/graphql", json=LOGIN_BODY)
                over_http = await http.post(
                    "/graphql",
                    json=LOGIN_BODY,
                    headers={"accept": GRAPHQL_RESPONSE_JSON},
                )
        finally:
            release.set()
            await app.state.engine.dispose()

        assert classic.status_code == 200
        assert classic.json()["data"] is None
        assert extensions(classic.json()) == [
            {"code": "SERVICE_UNAVAILABLE", "reason": "DEADLINE_EXCEEDED", "retryAfter": 5}
        ]
        assert (over_http.status_code, over_http.headers["retry-after"]) == (503, "5")
        assert "data" not in over_http.json()


class TestTheSessionEdge:
    """Context.db() is where a field's database failure is typed."""

    @pytest.fixture
    def context(self, db_session: AsyncSession, settings: Settings) -> Context:
        return Context(
            session=db_session,
            session_factory=lambda: db_session,  # type: ignore[arg-type,return-value]
            settings=settings,
            keys=KeyRing(settings),
            email=EmailService(backend=MemoryBackend(), settings=settings),
            rate_limiter=RateLimiter.from_settings(settings),
            availability=Availability(),
            passkey_challenges=DatabaseChallengeStore(),
        )

    async def test_an_outage_inside_a_field_is_service_unavailable(self, context: Context) -> None:
        with pytest.raises(ServiceUnavailableError) as caught:
            async with context.db():
                raise ConnectionRefusedError(111, "Connect call failed")

        assert caught.value.missing is Unavailable.DATABASE
        assert context.availability.is_down(Dependency.DATABASE)

    async def test_other_failures_pass_through_unchanged(self, context: Context) -> None:
        with pytest.raises(KeyError):
            async with context.db():
                raise KeyError("a bug, not an outage")

        assert not context.availability.is_down(Dependency.DATABASE)

    async def test_a_rollback_on_a_lost_connection_keeps_the_fields_own_error(
        self, context: Context, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def lost() -> None:
            raise exc.DBAPIError("ROLLBACK", None, Exception("closed"), connection_invalidated=True)

        monkeypatch.setattr(db_session, "rollback", lost)

        with pytest.raises(PermissionDeniedError):
            async with context.db():
                raise PermissionDeniedError

    async def test_a_rollback_that_fails_otherwise_is_not_hidden(
        self, context: Context, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken() -> None:
            raise RuntimeError("rollback failed")

        monkeypatch.setattr(db_session, "rollback", broken)

        with pytest.raises(RuntimeError, match="rollback failed"):
            async with context.db():
                raise PermissionDeniedError


class TestReadinessBound:
    async def test_a_database_that_never_answers_is_unavailable_within_the_bound(
        self, settings: Settings, silent_server: int
    ) -> None:
        app = create_app(settings)
        await app.state.engine.dispose()
        app.state.engine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{silent_server}/x")
        try:
            async with (
                asyncio.timeout(10),
                AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
            ):
                response = await http.get("/readyz")
        finally:
            await app.state.engine.dispose()

        assert response.status_code == 503
        assert response.json()["checks"] == {"database": "unavailable"}
