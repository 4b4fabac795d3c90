"""Two server processes on one PostgreSQL and one Redis behave as one service.

Each worker is a real uvicorn process on its own port, so the test chooses which one
answers (with `uvicorn --workers N` the kernel chooses). The rate-limit counters live in
Redis and the sessions in PostgreSQL, so what one worker learns the other enforces.
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession

from bench.server import RunningServer, serve
from gql_app.config import Settings
from tests.factories import USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient
from tests.redis_server import redis_server_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ME = "{ me { email } }"
LOGOUT = "mutation ($t: String!) { logout(refreshToken: $t) }"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(e2e_settings: Settings) -> AsyncIterator[list[RunningServer]]:
    """Two workers sharing the e2e database and Redis, started once for the module's tests."""
    settings = e2e_settings
    environment = {
        "ENVIRONMENT": "production",
        "PASSWORD_HASHING_COST": "standard",
        "SECRET_KEY": settings.signing_key,
        "DATABASE_URL": settings.database_url,
        "MIGRATE_ON_START": "false",
        "EMAIL_BACKEND": "memory",
        "REDIS_URL": redis_server_url(),
        "RATE_LIMIT_KEY_PREFIX": f"workers-{uuid.uuid4().hex}",
        "LOGIN_ATTEMPTS_PER_ACCOUNT": "3/15minutes",
        "LOG_LEVEL": "WARNING",
    }
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(serve("gql_app.main:create_app", environment))
            for _ in range(2)
        ]


@pytest_asyncio.fixture
async def workers(servers: list[RunningServer], app: object) -> AsyncIterator[list[GraphQLClient]]:
    """A client of each worker, on tables ``app`` emptied for this test."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=s.base_url, timeout=30))
            for s in servers
        ]
        yield [GraphQLClient(client) for client in clients]


async def test_a_login_lockout_reached_through_one_worker_holds_on_the_other(
    workers: list[GraphQLClient], db_session: AsyncSession
) -> None:
    first, second = workers
    user = await create_user(db_session, email="target@example.com")
    wrong = {"input": {"email": user.email, "password": "not the password!"}}

    for _ in range(3):
        (await first(LOGIN, wrong)).single_error("UNAUTHENTICATED")
    locked_out = await second(LOGIN, {"input": {"email": user.email, "password": USER_PASSWORD}})

    error = locked_out.single_error("RATE_LIMITED")
    assert error["extensions"]["retryAfter"] >= 1


async def test_a_session_ended_through_one_worker_is_refused_by_the_other(
    workers: list[GraphQLClient], db_session: AsyncSession
) -> None:
    first, second = workers
    user = await create_user(db_session, email="roaming@example.com")
    signed_in = await first(LOGIN, {"input": {"email": user.email, "password": USER_PASSWORD}})
    tokens = signed_in.data["login"]
    assert (await second(ME, token=tokens["accessToken"])).errors == []

    assert (await first(LOGOUT, {"t": tokens["refreshToken"]})).errors == []

    refused = await second(ME, token=tokens["accessToken"])
    assert refused.single_error("UNAUTHENTICATED")["message"] == "Session has ended"
