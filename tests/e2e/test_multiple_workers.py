"""Two server processes on one PostgreSQL and one Redis behave as one service.

Each worker is a real uvicorn process on its own port, so the test chooses which one
answers (with `uvicorn --workers N` the kernel chooses). The rate-limit counters live in
Redis and the sessions and signing keys in PostgreSQL, so what one worker learns the other
enforces: signing keys within SIGNING_KEY_CACHE_SECONDS, for which each worker keeps what it
read (1 s here).

``app`` empties the users and sessions between tests, not the signing keys: a worker's
cached keys stay true across tests.
"""

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession

from bench.server import RunningServer, serve
from gql_app.config import Settings
from gql_app.models import User
from tests.factories import USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient
from tests.redis_server import redis_server_url

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ME = "{ me { email } }"
LOGOUT = "mutation ($t: String!) { logout(refreshToken: $t) }"

SIGNING_KEY_CACHE_SECONDS = 1.0
# A key change is honoured within SIGNING_KEY_CACHE_SECONDS; polled for a few times that
# (and a loaded machine's slowness) before the test calls it broken.
KEY_CHANGE_DEADLINE_SECONDS = 5 * SIGNING_KEY_CACHE_SECONDS + 2
CLI_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def environment(e2e_settings: Settings) -> dict[str, str]:
    """The workers' settings, which the `gql-app keys` commands of the tests share."""
    return {
        "ENVIRONMENT": "production",
        "PASSWORD_HASHING_COST": "standard",
        "SECRET_KEY": e2e_settings.secret_key_value,
        "DATABASE_URL": e2e_settings.database_url,
        "MIGRATE_ON_START": "false",
        "EMAIL_BACKEND": "memory",
        "REDIS_URL": redis_server_url(),
        "RATE_LIMIT_KEY_PREFIX": f"workers-{uuid.uuid4().hex}",
        "LOGIN_ATTEMPTS_PER_ACCOUNT": "3/15minutes",
        "SIGNING_KEY_CACHE_SECONDS": str(SIGNING_KEY_CACHE_SECONDS),
        "LOG_LEVEL": "WARNING",
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(environment: dict[str, str]) -> AsyncIterator[list[RunningServer]]:
    """Two workers sharing the e2e database and Redis, started once for the module's tests."""
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


async def keys_command(environment: Mapping[str, str], folder: Path, *arguments: str) -> Any:
    """``gql-app keys ... --json`` as an operator runs it beside the workers: its JSON."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gql_app.cli",
        "keys",
        *arguments,
        "--json",
        cwd=folder,  # no .env of the checkout's
        # What the workers have (bench.server.serve adds their settings to this environment).
        env={**os.environ, **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KEY_CHANGE_DEADLINE_SECONDS
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {KEY_CHANGE_DEADLINE_SECONDS:g} s: {what}")
        await asyncio.sleep(0.1)


async def signed_in(worker: GraphQLClient, user: User) -> str:
    answer = await worker(LOGIN, {"input": {"email": user.email, "password": USER_PASSWORD}})
    assert answer.errors == [], answer.body
    token: str = answer.data["login"]["accessToken"]
    return token


async def signed_in_with(worker: GraphQLClient, user: User, kid: str) -> str:
    """A sign-in's access token through ``worker``, once it signs them with ``kid``."""
    tokens: list[str] = []

    async def signed_with_kid() -> bool:
        tokens.append(await signed_in(worker, user))
        return kid_of(tokens[-1]) == kid

    await eventually(signed_with_kid, f"{worker.http.base_url} signing with {kid}")
    return tokens[-1]


def kid_of(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def test_keys_activated_and_retired_through_the_cli_are_honoured_by_both_workers(
    workers: list[GraphQLClient],
    db_session: AsyncSession,
    environment: dict[str, str],
    tmp_path: Path,
) -> None:
    user = await create_user(db_session, email="rotated@example.com")
    old_token = await signed_in(workers[0], user)
    old_kid = kid_of(old_token)
    for worker in workers:
        assert (await worker(ME, token=old_token)).errors == []

    new_kid: str = (await keys_command(environment, tmp_path, "rotate"))["kid"]
    activated = await keys_command(environment, tmp_path, "activate", new_kid)
    assert (activated["kid"], activated["state"]) == (new_kid, "current")

    new_tokens = [await signed_in_with(worker, user, new_kid) for worker in workers]
    # Each worker verifies what the other signed, and the superseded key still verifies.
    for worker in workers:
        for token in (*new_tokens, old_token):
            assert (await worker(ME, token=token)).errors == []

    retired = await keys_command(environment, tmp_path, "retire", old_kid, "--force")
    assert (retired["kid"], retired["state"]) == (old_kid, "retired")

    for worker in workers:

        async def refuses_the_old_token(worker: GraphQLClient = worker) -> bool:
            return (await worker(ME, token=old_token)).errors != []

        await eventually(refuses_the_old_token, f"{worker.http.base_url} refusing {old_kid}")
        error = (await worker(ME, token=old_token)).single_error("UNAUTHENTICATED")
        # Genuine, but its key is withdrawn: refresh, rather than sign in again.
        assert error["extensions"]["reason"] == "TOKEN_EXPIRED"
        for token in new_tokens:
            assert (await worker(ME, token=token)).errors == []
