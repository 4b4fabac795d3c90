"""Hostile and broken requests against the production server: refused with the right status,
and the workers go on serving everyone else."""

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from bench.server import production_environment, serve
from tests.faults.conftest import Served, served

pytestmark = pytest.mark.faults

FAN_OUT = (
    "query{...A} "
    + " ".join(
        "fragment %s on Query{%s}" % (a, " ...%s" % b * 30)  # noqa: UP031 - the reported text
        for a, b in zip("ABCDEFGH", "BCDEFGHI", strict=True)
    )
    + " fragment I on Query{__typename}"
)


@pytest_asyncio.fixture
async def app_on_sqlite(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}") as app:
        yield app


def port_of(running: Served) -> int:
    return int(running.base_url.rsplit(":", 1)[1])


async def raw_exchange(port: int, *chunks: bytes, pause: float = 0.0, wait: float = 15) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.setblocking(False)
        for chunk in chunks:
            try:
                await loop.sock_sendall(connection, chunk)
            except OSError:
                break
            await asyncio.sleep(pause)
        received = b""
        try:
            async with asyncio.timeout(wait):
                while data := await loop.sock_recv(connection, 65536):
                    received += data
        except (TimeoutError, ConnectionResetError):
            pass
        return received


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


async def test_the_reported_fragment_fan_out_costs_nothing_twice_over(
    app_on_sqlite: Served,
) -> None:
    async with app_on_sqlite.client() as http:
        answers = await asyncio.gather(
            *(http.post("/graphql", json={"query": FAN_OUT}) for _ in range(2)),
            http.get("/healthz"),
        )

    for answer in answers[:2]:
        (error,) = answer.json()["errors"]
        assert error["extensions"] == {
            "code": "GRAPHQL_VALIDATION_FAILED",
            "reason": "TOO_MANY_FIELDS",
        }
    assert answers[2].json() == {"status": "ok"}


async def test_ten_megabytes_of_headers_are_refused_without_being_read(
    app_on_sqlite: Served,
) -> None:
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "

    answer = await raw_exchange(port_of(app_on_sqlite), start, *([b"a" * 65536] * 160))

    assert status_of(answer) == 431
    assert b"REQUEST_HEADER_FIELDS_TOO_LARGE" in answer


async def test_more_than_a_hundred_headers_are_refused(app_on_sqlite: Served) -> None:
    headers = b"".join(b"X-%d: y\r\n" % i for i in range(101))

    answer = await raw_exchange(
        port_of(app_on_sqlite), b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    )

    assert status_of(answer) == 431


async def test_slow_and_idle_connections_are_closed_and_others_served_meanwhile(
    app_on_sqlite: Served,
) -> None:
    port = port_of(app_on_sqlite)
    slowloris = [
        raw_exchange(port, *[b"GET / HTTP/1.1\r\n", *[b"X-a: b\r\n"] * 20], pause=1.0)
        for _ in range(20)
    ]
    idle = [raw_exchange(port) for _ in range(50)]
    started = time.monotonic()

    async with app_on_sqlite.client() as http:
        served_meanwhile = await http.get("/healthz")
    answers = await asyncio.gather(*slowloris, *idle)

    assert served_meanwhile.status_code == 200
    assert {status_of(answer) for answer in answers} == {408}
    # The default header timeout is five seconds; the clients would have gone on for twenty.
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"query":"{__typename}","variables":{"x":"\xff"}}', id="invalid-utf-8"),
        pytest.param(
            b'{"query":"{__typename}","variables":{"x":' + b"9" * 5000 + b"}}", id="huge-integer"
        ),
        pytest.param(
            json.dumps(
                {"extensions": {"persistedQuery": {"version": True, "sha256Hash": "0" * 64}}}
            ).encode(),
            id="boolean-version",
        ),
    ],
)
async def test_malformed_bodies_are_typed_400s(app_on_sqlite: Served, body: bytes) -> None:
    async with app_on_sqlite.client() as http:
        response = await http.post(
            "/graphql",
            content=body,
            headers={
                "content-type": "application/json",
                "accept": "application/graphql-response+json",
            },
        )

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] in {
        "BAD_REQUEST",
        "PERSISTED_QUERY_INVALID",
    }
    assert "Traceback" not in app_on_sqlite.log_text()


@pytest.mark.parametrize(
    ("path", "says"),
    [
        pytest.param("/stall", "Event loop stuck for", id="in-python"),
        # The watching thread cannot run; faulthandler's timer dumps the stacks and exits.
        pytest.param("/stall-in-c", "Timeout (0:00:05)!", id="holding-the-interpreter"),
    ],
)
async def test_a_worker_stuck_past_the_watchdog_is_replaced(
    tmp_path: Path, path: str, says: str
) -> None:
    environment = production_environment(
        f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", WORKER_WATCHDOG_SECONDS="2"
    )
    log = tmp_path / "server.log"
    async with serve("tests.faults.stalling_app:create_app", environment, output=log) as server:
        (stuck,) = server.worker_pids()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=1) as http:
            with pytest.raises(httpx.TimeoutException):
                await http.get(path)
            replaced_within = time.monotonic() + 30
            while time.monotonic() < replaced_within:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
            alive = await http.get("/healthz")
        replacement = server.worker_pids()

    assert alive.status_code == 200
    assert replacement
    assert stuck not in replacement
    assert says in log.read_text()
