"""Redis stopped and frozen: rate-limited operations fail closed and typed, the rest go on."""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.faults.conftest import ME, Served, assert_typed, served
from tests.faults.servers import PostgresCluster, RedisServer

pytestmark = pytest.mark.faults

TYPENAME = "query Typename { __typename }"
PERSISTED = {
    "extensions": {
        "persistedQuery": {
            "version": 1,
            "sha256Hash": hashlib.sha256(TYPENAME.encode()).hexdigest(),
        }
    }
}


@pytest_asyncio.fixture
async def app_with_redis(
    tmp_path: Path, postgres: PostgresCluster, redis: RedisServer
) -> AsyncIterator[Served]:
    async with served(
        tmp_path,
        database_url=postgres.url,
        REDIS_URL=redis.url,
        RATE_LIMIT_ENABLED="true",
        LOGIN_ATTEMPTS_PER_IP="1000/minute",
        LOGIN_ATTEMPTS_PER_ACCOUNT="1000/minute",
    ) as running:
        yield running


async def while_redis_is(running: Served, token: str) -> dict[str, object]:
    """What a login, a `me`, a persisted query and readiness get now."""
    async with running.client() as http:
        login = await running.login(http)
        me = await running.ask(http, "me", {"query": ME}, authorization=f"Bearer {token}")
        persisted = await http.post("/graphql", json=PERSISTED)
        ready = await http.get("/readyz")
    return {
        "login": (login.codes, login.reasons),
        "me": me.ok,
        "persisted": [e["extensions"]["code"] for e in persisted.json()["errors"]],
        "ready": (ready.status_code, ready.json()["checks"]),
        "slowest": max(login.seconds, me.seconds),
    }


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_limited_operations_fail_closed_and_the_rest_go_on(
    app_with_redis: Served, redis: RedisServer, fault: str
) -> None:
    running = app_with_redis
    token = await running.token()
    inject, repair = (
        (redis.stop, redis.start) if fault == "stopped" else (redis.freeze, redis.resume)
    )

    await asyncio.to_thread(inject)
    try:
        down = await while_redis_is(running, token)
    finally:
        await asyncio.to_thread(repair)
    async with running.client() as http:
        after = await running.login(http)

    assert down["login"] == (("SERVICE_UNAVAILABLE",), ("RATE_LIMITER_UNAVAILABLE",))
    assert down["me"] is True
    # The persisted query store is a cache: without it, clients send documents in full.
    assert down["persisted"] == ["PERSISTED_QUERY_NOT_FOUND"]
    assert down["ready"] == (503, {"database": "ok", "redis": "unavailable"})
    # Connect 1 s and a few commands of 1 s each: well before a client would give up.
    assert down["slowest"] < 8
    assert after.ok
    assert_typed(running)
    assert running.log_text().count("redis unavailable") <= 2
