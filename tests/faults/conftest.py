"""The real server (`gql-app serve`'s stack, production settings, two workers) on a PostgreSQL
and a Redis of the test's own, with clients that keep asking while faults are injected.

Each answer is recorded with its status, error codes and how long it took, so a test can say
what every client saw: data, or a typed error, and never a hang or INTERNAL_SERVER_ERROR.
"""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bench.server import RunningServer, production_environment, serve
from tests.faults.servers import PostgresCluster, RedisServer, postgres_cluster, redis_server

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "fault tolerant passphrase 2026"
LOGIN = "mutation Login($input: LoginInput!) { login(input: $input) { accessToken refreshToken } }"
ME = "query Me { me { email } }"
# Longer than any documented bound (pool, connect, command timeouts, the request deadline):
# an answer that takes this long is a hang.
CLIENT_TIMEOUT_SECONDS = 15


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    with redis_server(folder) as server:
        yield server


@dataclass(frozen=True)
class Answer:
    operation: str
    status: int | None
    codes: tuple[str, ...]
    reasons: tuple[str, ...]
    seconds: float
    transport_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.codes


@dataclass
class Served:
    server: RunningServer
    log: Path
    answers: list[Answer] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def client(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=CLIENT_TIMEOUT_SECONDS, **options)

    async def ask(
        self, http: httpx.AsyncClient, operation: str, body: dict[str, Any], **headers: str
    ) -> Answer:
        started = time.monotonic()
        try:
            response = await http.post("/graphql", json=body, headers=headers)
        except httpx.TransportError as error:
            answer = Answer(operation, None, (), (), time.monotonic() - started, repr(error))
        else:
            errors = response.json().get("errors") or []
            answer = Answer(
                operation,
                response.status_code,
                tuple(str(e.get("extensions", {}).get("code")) for e in errors),
                tuple(str(e.get("extensions", {}).get("reason")) for e in errors),
                time.monotonic() - started,
            )
        self.answers.append(answer)
        return answer

    async def login(self, http: httpx.AsyncClient) -> Answer:
        variables = {"input": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}}
        return await self.ask(http, "login", {"query": LOGIN, "variables": variables})

    async def token(self) -> str:
        async with self.client() as http:
            response = await http.post(
                "/graphql",
                json={
                    "query": LOGIN,
                    "variables": {"input": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}},
                },
            )
        token: str = response.json()["data"]["login"]["accessToken"]
        return token

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def outcomes(self) -> Counter[str]:
        """How answers ended: OK, the error codes, or the transport failure."""
        return Counter(
            "OK"
            if answer.ok
            else ",".join(answer.codes) or (answer.transport_error or f"HTTP {answer.status}")
            for answer in self.answers
        )


@asynccontextmanager
async def served(
    tmp_path: Path, *, database_url: str, workers: int = 2, **overrides: str
) -> AsyncIterator[Served]:
    log = tmp_path / f"server-{time.monotonic_ns()}.log"
    environment = production_environment(
        database_url,
        **{
            "FIRST_SUPERUSER_EMAIL": ADMIN_EMAIL,
            "FIRST_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
            # The load comes from one address; the Redis tests turn the limiter back on.
            "RATE_LIMIT_ENABLED": "false",
            **overrides,
        },
    )
    async with serve("gql_app.main:create_app", environment, workers=workers, output=log) as server:
        yield Served(server=server, log=log)


async def keep_asking(
    served: Served,
    ask: Callable[[httpx.AsyncClient], Awaitable[Answer]],
    *,
    clients: int,
    until: asyncio.Event,
) -> None:
    """``clients`` clients, each asking again as soon as answered; after a refusal a
    quarter of a second later (sooner than retryAfter says, to keep the pressure on)."""

    async def one_client() -> None:
        async with served.client() as http:
            while not until.is_set():
                answer = await ask(http)
                if not answer.ok:
                    await asyncio.sleep(0.25)

    await asyncio.gather(*(one_client() for _ in range(clients)))


def me_request(token: str) -> Callable[[Served], Callable[[httpx.AsyncClient], Awaitable[Answer]]]:
    def bound(served: Served) -> Callable[[httpx.AsyncClient], Awaitable[Answer]]:
        async def ask(http: httpx.AsyncClient) -> Answer:
            return await served.ask(http, "me", {"query": ME}, authorization=f"Bearer {token}")

        return ask

    return bound


def assert_typed(served: Served) -> None:
    """Every answer was data or a typed error other than INTERNAL_SERVER_ERROR, in time."""
    outcomes = served.outcomes()
    assert all(answer.status is not None for answer in served.answers), outcomes
    assert not any("INTERNAL_SERVER_ERROR" in answer.codes for answer in served.answers), outcomes
    assert all(answer.status in {200, 503} for answer in served.answers), outcomes
    assert "Traceback" not in served.log_text(), served.log_text()[-6000:]


@pytest_asyncio.fixture
async def app_on_postgres(tmp_path: Path, postgres: PostgresCluster) -> AsyncIterator[Served]:
    async with served(tmp_path, database_url=postgres.url) as running:
        yield running
