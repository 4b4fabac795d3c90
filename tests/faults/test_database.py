"""PostgreSQL stopped, restarted, frozen, cut off and saturated under load.

Throughout, every answer is data or a typed error; afterwards the same server, never
restarted, serves again; the log has a line per outage and worker, not a traceback a request.
"""

import asyncio
from collections.abc import Awaitable
from pathlib import Path

import pytest
from sqlalchemy import text

from gql_app.db import create_engine
from tests.faults.conftest import (
    ME,
    Served,
    assert_typed,
    keep_asking,
    me_request,
    served,
)
from tests.faults.servers import PostgresCluster

pytestmark = pytest.mark.faults

CLIENTS = 16


async def under_load(running: Served, token: str, fault: Awaitable[None]) -> None:
    """Load for a moment, then the fault (which injects and repairs itself) under load, then
    load until the server answers as before."""
    stop = asyncio.Event()
    load = asyncio.ensure_future(
        keep_asking(running, me_request(token)(running), clients=CLIENTS, until=stop)
    )
    await asyncio.sleep(0.5)
    await fault
    await recovered(running, token)
    stop.set()
    await load


async def recovered(running: Served, token: str, *, within: float = 20) -> None:
    async with asyncio.timeout(within), running.client() as http:
        while True:
            answer = await running.ask(http, "me", {"query": ME}, authorization=f"Bearer {token}")
            if answer.ok:
                return
            await asyncio.sleep(0.2)


def unavailable(running: Served) -> list[str]:
    return [
        reason
        for answer in running.answers
        for code, reason in zip(answer.codes, answer.reasons, strict=True)
        if code == "SERVICE_UNAVAILABLE"
    ]


async def test_stopped_then_restarted(app_on_postgres: Served, postgres: PostgresCluster) -> None:
    running = app_on_postgres
    token = await running.token()

    async def stop_and_restart() -> None:
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(3)
        await asyncio.to_thread(postgres.start)

    await under_load(running, token, stop_and_restart())
    # Answering, and no failure for a while (availability.SETTLE_SECONDS): the worker
    # answering logs that the outage is over. Asked until it does, as failures may go on a
    # moment after the restart on a busy machine.
    for _ in range(40):
        await recovered(running, token)
        if "database available again" in running.log_text():
            break
        await asyncio.sleep(0.5)

    assert_typed(running)
    assert "DATABASE_UNAVAILABLE" in unavailable(running)
    log = running.log_text()
    # One line as each worker meets the outage, one as it ends; never one a request.
    assert 1 <= log.count("database unavailable") <= 2
    assert 1 <= log.count("database available again") <= 2


async def test_frozen_answers_within_the_bounds_and_readiness_says_so(
    app_on_postgres: Served, postgres: PostgresCluster
) -> None:
    running = app_on_postgres
    token = await running.token()
    readiness: list[tuple[int, float]] = []

    async def freeze_and_thaw() -> None:
        await asyncio.to_thread(postgres.freeze)
        try:
            async with running.client() as http:
                for _ in range(2):
                    started = asyncio.get_running_loop().time()
                    response = await http.get("/readyz")
                    readiness.append(
                        (response.status_code, asyncio.get_running_loop().time() - started)
                    )
            await asyncio.sleep(4)
        finally:
            await asyncio.to_thread(postgres.resume)

    await under_load(running, token, freeze_and_thaw())

    assert_typed(running)
    assert "DATABASE_UNAVAILABLE" in unavailable(running)
    assert [status for status, _ in readiness] == [503, 503]
    # Readiness has its own bound, well below a probe's usual two seconds.
    assert all(seconds < 2 for _, seconds in readiness), readiness


async def test_connections_cut_off_by_the_server(
    app_on_postgres: Served, postgres: PostgresCluster
) -> None:
    running = app_on_postgres
    token = await running.token()
    admin = create_engine(postgres.url)

    async def terminate_the_apps_connections() -> None:
        for _ in range(3):
            async with admin.connect() as connection:
                await connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'gql-app'"
                    )
                )
            await asyncio.sleep(0.3)

    try:
        await under_load(running, token, terminate_the_apps_connections())
    finally:
        await admin.dispose()

    assert_typed(running)


async def test_a_saturated_pool_is_answered_at_once(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    admin = create_engine(postgres.url)
    async with served(
        tmp_path,
        database_url=postgres.url,
        workers=1,
        DATABASE_POOL_SIZE="1",
        DATABASE_MAX_OVERFLOW="0",
    ) as running:
        token = await running.token()
        # Every statement on users waits behind this lock: the pool's one connection is
        # taken, and every other request waits for it, at most the pool timeout.
        async with admin.connect() as holder:
            await holder.execute(text("BEGIN"))
            await holder.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
            async with running.client() as http:
                await asyncio.gather(
                    *(
                        running.ask(http, "me", {"query": ME}, authorization=f"Bearer {token}")
                        for _ in range(10)
                    )
                )
            await holder.execute(text("ROLLBACK"))
        await recovered(running, token)
    await admin.dispose()

    assert_typed(running)
    assert "DATABASE_UNAVAILABLE" in unavailable(running)


async def test_a_stopped_database_is_typed_and_liveness_stays(
    app_on_postgres: Served, postgres: PostgresCluster
) -> None:
    running = app_on_postgres
    await asyncio.to_thread(postgres.stop)
    try:
        async with running.client() as http:
            login = await running.login(http)
            ready = await http.get("/readyz")
            alive = await http.get("/healthz")
    finally:
        await asyncio.to_thread(postgres.start)

    assert login.codes == ("SERVICE_UNAVAILABLE",)
    assert login.reasons == ("DATABASE_UNAVAILABLE",)
    assert ready.json() == {"status": "unavailable", "checks": {"database": "unavailable"}}
    # Liveness does not depend on the database: a restart would not help.
    assert alive.status_code == 200
