"""The HTTP server's own limits, on real sockets: uvicorn in this process, with the
protocol `gql-app serve` uses and small limits, in front of an application that counts
what reaches it."""

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
import uvicorn

from gql_app.server import PROTOCOL, protocol
from tests.conftest import LogRecords

MAX_HEADER_BYTES = 2048
MAX_HEADERS = 20
HEADER_TIMEOUT = 0.3
MAX_CONNECTIONS = 4
KEEP_ALIVE = 1


@dataclass
class Counting:
    """An ASGI application that answers 200 and counts the requests that reached it."""

    requests: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@dataclass
class Served:
    port: int
    app: Counting

    async def exchange(self, *chunks: bytes, pause: float = 0.0, wait: float = 5.0) -> bytes:
        """Send ``chunks`` (``pause`` apart), then read until the server closes or ``wait``."""
        loop = asyncio.get_running_loop()
        with socket.create_connection(("127.0.0.1", self.port)) as connection:
            connection.setblocking(False)
            for chunk in chunks:
                try:
                    await loop.sock_sendall(connection, chunk)
                except OSError:
                    break  # the server answered and closed: read what it said
                await asyncio.sleep(pause)
            return await read_until_closed(loop, connection, wait)


async def read_until_closed(
    loop: asyncio.AbstractEventLoop, connection: socket.socket, wait: float
) -> bytes:
    received = b""
    try:
        async with asyncio.timeout(wait):
            while chunk := await loop.sock_recv(connection, 65536):
                received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    return body


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest_asyncio.fixture
async def served(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    monkeypatch.setattr(
        protocol,
        "_limits",
        lambda: (MAX_HEADER_BYTES, MAX_HEADERS, HEADER_TIMEOUT, MAX_CONNECTIONS),
    )
    app = Counting()
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=PROTOCOL,
        lifespan="off",
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE,
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    yield Served(port=port, app=app)
    server.should_exit = True
    await task


def request(*headers: bytes, path: bytes = b"/") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: test\r\n" + b"".join(headers) + b"\r\n"


class TestWithinLimits:
    async def test_a_request_within_every_limit_is_served(self, served: Served) -> None:
        answer = await served.exchange(request(b"X-Fine: yes\r\n"), wait=KEEP_ALIVE + 2)

        assert status_of(answer) == 200
        assert served.app.requests == ["/"]

    async def test_a_kept_alive_connection_serves_several_requests(self, served: Served) -> None:
        answer = await served.exchange(request(), request(), pause=0.05, wait=KEEP_ALIVE + 2)

        assert answer.count(b"HTTP/1.1 200 OK") == 2

    async def test_an_idle_kept_alive_connection_is_closed(self, served: Served) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()

        answer = await served.exchange(request(), wait=30)

        assert status_of(answer) == 200
        assert loop.time() - started < 30


class TestPipelining:
    async def test_a_request_after_a_large_body_is_not_counted_as_headers(
        self, served: Served
    ) -> None:
        body = b"x" * (4 * MAX_HEADER_BYTES)
        post = (
            b"POST /first HTTP/1.1\r\nHost: test\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

        answer = await served.exchange(post + request(path=b"/second"), wait=KEEP_ALIVE + 2)

        assert answer.count(b"HTTP/1.1 200 OK") == 2
        assert served.app.requests == ["/first", "/second"]

    async def test_a_stray_line_after_an_answer_does_not_keep_the_connection_open(
        self, served: Served
    ) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()

        answer = await served.exchange(request(), b"\r\n", pause=0.05, wait=30)

        assert status_of(answer) == 200
        assert loop.time() - started < HEADER_TIMEOUT + KEEP_ALIVE + 2


class TestHeaderLimits:
    async def test_headers_over_the_byte_limit_are_431_and_never_reach_the_app(
        self, served: Served
    ) -> None:
        answer = await served.exchange(request(b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n"))

        assert status_of(answer) == 431
        assert body_of(answer)["errors"][0]["extensions"] == {
            "code": "REQUEST_HEADER_FIELDS_TOO_LARGE",
            "reason": "REQUEST_HEADER_FIELDS_TOO_LARGE",
        }
        assert b"connection: close" in answer
        assert served.app.requests == []

    async def test_a_long_url_counts_toward_the_limit(self, served: Served) -> None:
        answer = await served.exchange(request(path=b"/" + b"a" * MAX_HEADER_BYTES))

        assert status_of(answer) == 431

    async def test_more_headers_than_allowed_are_431(self, served: Served) -> None:
        headers = [b"X-%d: y\r\n" % i for i in range(MAX_HEADERS + 1)]

        answer = await served.exchange(request(*headers))

        assert status_of(answer) == 431
        assert b"request headers" in answer
        assert served.app.requests == []

    async def test_a_header_that_never_ends_is_refused_before_it_is_all_read(
        self, served: Served
    ) -> None:
        start = b"GET / HTTP/1.1\r\nHost: test\r\nX-Endless: "
        chunks = [start, *([b"a" * 1024] * 64)]

        answer = await served.exchange(*chunks, pause=0.001)

        assert status_of(answer) == 431
        assert served.app.requests == []


class TestSlowClients:
    async def test_headers_that_arrive_too_slowly_are_408(self, served: Served) -> None:
        chunks = [b"GET / HTTP/1.1\r\n", b"Host: test\r\n", b"X-Slow: 1\r\n", b"X-Slow: 2\r\n"]

        answer = await served.exchange(*chunks, pause=HEADER_TIMEOUT / 2)

        assert status_of(answer) == 408
        assert body_of(answer)["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
        assert served.app.requests == []

    async def test_a_connection_that_sends_nothing_is_closed(self, served: Served) -> None:
        answer = await served.exchange(wait=HEADER_TIMEOUT * 10)

        assert status_of(answer) == 408

    async def test_invalid_http_is_400(self, served: Served) -> None:
        answer = await served.exchange(b"NOT HTTP AT ALL\r\n\r\n")

        assert status_of(answer) == 400


class TestConnectionCap:
    async def test_connections_beyond_the_cap_are_answered_503_at_once(
        self, served: Served
    ) -> None:
        held = [
            await asyncio.open_connection("127.0.0.1", served.port) for _ in range(MAX_CONNECTIONS)
        ]
        try:
            await asyncio.sleep(0.05)
            answer = await served.exchange(request(), wait=HEADER_TIMEOUT / 2)
        finally:
            for _, writer in held:
                writer.close()

        assert status_of(answer) == 503
        assert b"retry-after: 1" in answer
        assert body_of(answer)["errors"][0]["extensions"] == {
            "code": "SERVICE_UNAVAILABLE",
            "reason": "TOO_MANY_CONNECTIONS",
            "retryAfter": 1,
        }
        assert served.app.requests == []


class TestRefusalLog:
    def test_a_burst_of_refusals_is_one_line_then_a_count(
        self, monkeypatch: pytest.MonkeyPatch, app_log: LogRecords
    ) -> None:
        clock = [1000.0]
        monkeypatch.setattr(protocol.time, "monotonic", lambda: clock[0])
        log = protocol.RefusalLog()

        for _ in range(5):
            log.note(431, "Request headers exceed 32768 bytes")
        clock[0] += log.INTERVAL_SECONDS
        log.note(408, "Request headers not received within 5 s")

        assert [record.getMessage() for record in app_log.records] == [
            "Refused a request (431): Request headers exceed 32768 bytes",
            "Refused 5 more requests in 60 s (1 x 408, 4 x 431)",
        ]
