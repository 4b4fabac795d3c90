"""A login storm beside ordinary traffic: does `me` keep its latency, and does anything fail?

Serves the real app (production settings, one worker, the default pool) on PostgreSQL when
TEST_DATABASE_URL or DATABASE_URL names one, else on SQLite. Measures `me` with wrk alone,
then again while a crowd of clients signs in as fast as it is answered; tallies every login
answer by its code and samples `pg_stat_activity` for connections idle in a transaction
(what a login waiting for its hash with a connection checked out used to leave).

Run: `.venv/bin/python -m bench.storm [--logins 150] [--me 100] [--seconds 20] [--json F]`.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench.seed import is_postgresql, postgresql_database, seed_users
from bench.server import RunningServer, production_environment, serve
from bench.suite import postgresql_server_url
from bench.wrk import LoadResult, Request, run_wrk
from gql_app.db import create_engine

EMAIL = "storm@example.com"
PASSWORD = "storm passphrase for the benchmark"  # noqa: S105 - the benchmark account's
LOGIN = "mutation ($i: LoginInput!) { login(input: $i) { accessToken } }"
ME = "query Me { me { id email fullName isActive isSuperuser isVerified createdAt updatedAt } }"


async def _token(server: RunningServer) -> str:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        response = await http.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"i": {"email": EMAIL, "password": PASSWORD}}},
        )
    token: str = response.json()["data"]["login"]["accessToken"]
    return token


async def _login_storm(server: RunningServer, clients: int, until: float) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    body = {"query": LOGIN, "variables": {"i": {"email": EMAIL, "password": PASSWORD}}}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() < until:
            try:
                response = await http.post("/graphql", json=body)
            except httpx.TransportError as error:
                outcomes[type(error).__name__] += 1
                continue
            errors = response.json().get("errors") or []
            key = ",".join(
                f"{e['extensions'].get('code')}/{e['extensions'].get('reason', '-')}"
                for e in errors
            )
            outcomes[key or "OK"] += 1

    async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return outcomes


async def _idle_in_transaction(database_url: str, until: float) -> int:
    """The most connections of the app seen idle in a transaction at once."""
    if not is_postgresql(database_url):
        return -1
    engine = create_engine(database_url)
    most = 0
    try:
        async with engine.connect() as connection:
            while time.monotonic() < until:
                seen = await connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        "'gql-app' AND state = 'idle in transaction'"
                    )
                )
                await connection.commit()
                most = max(most, int(seen or 0))
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    return most


def _latency(result: LoadResult) -> dict[str, float]:
    return {
        "requests_per_second": round(result.per_second, 1),
        "p50_ms": round(result.p50_ms, 2),
        "p99_ms": round(result.p99_ms, 2),
        "failures": result.failures,
    }


async def _run_on(database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    await seed_users(database_url, 1000)
    environment = production_environment(
        database_url,
        FIRST_SUPERUSER_EMAIL=EMAIL,
        FIRST_SUPERUSER_PASSWORD=PASSWORD,
        ACCESS_TOKEN_EXPIRE_SECONDS="7200",  # noqa: S106 - a lifetime, not a secret
        # One address storms on purpose; the limiter would refuse it before the hashing.
        RATE_LIMIT_ENABLED="false",
    )
    async with serve("gql_app.main:create_app", environment) as server:
        me = Request(
            method="POST",
            path="/graphql",
            body=json.dumps({"query": ME}),
            authorization=f"Bearer {await _token(server)}",
        )
        await run_wrk(server.base_url, me, seconds=2, connections=args.me)
        alone = await run_wrk(server.base_url, me, seconds=args.seconds, connections=args.me)
        until = time.monotonic() + args.seconds
        during, logins, idle = await asyncio.gather(
            run_wrk(server.base_url, me, seconds=args.seconds, connections=args.me),
            _login_storm(server, args.logins, until),
            _idle_in_transaction(database_url, until),
        )
    return {
        "database": "postgresql" if is_postgresql(database_url) else "sqlite",
        "me_alone": _latency(alone),
        "me_during_storm": _latency(during),
        "login_answers": dict(logins.most_common()),
        "most_connections_idle_in_transaction": idle,
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    server_url = postgresql_server_url()
    if server_url is not None:
        async with postgresql_database(server_url) as url:
            return await _run_on(url, args)
    with tempfile.TemporaryDirectory() as folder:
        return await _run_on(f"sqlite+aiosqlite:///{Path(folder) / 'storm.db'}", args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logins", type=int, default=150, help="clients signing in")
    parser.add_argument("--me", type=int, default=100, help="wrk connections asking `me`")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = asyncio.run(_run(args))
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
