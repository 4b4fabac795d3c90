"""Does the answer's timing tell whether an account exists?

Serves the real app with uvicorn (a SQLite file database, production settings, rate
limiting off so the limits do not answer first, REGISTRATION_CONCEALS_EXISTING on),
alternates requests for an existing and an unknown account over HTTP, and reports the
median latency of each and how far apart they are. Over real HTTP, as clients see it: the
reset mail is sent after the response.
Run: `.venv/bin/python -m bench.enumeration [--samples N] [--json out.json]`.
"""

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from httpx import AsyncClient

from bench.server import production_environment, serve
from gql_app.config import Settings
from gql_app.db import create_engine_for, create_session_factory
from gql_app.migrations import upgrade_to_head
from gql_app.models import User
from gql_app.security.passwords import hash_password

PASSWORD = "correct horse battery staple"  # noqa: S105 - the benchmark account's
LOGIN = "mutation ($i: LoginInput!) { login(input: $i) { accessToken } }"
RESET = "mutation ($e: String!) { requestPasswordReset(email: $e) }"
REGISTER = "mutation ($i: RegisterInput!) { register(input: $i) { id email isVerified } }"


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def _compare(
    samples: int, existing: Callable[[], Awaitable[Any]], unknown: Callable[[], Awaitable[Any]]
) -> dict[str, float]:
    await existing()
    await unknown()  # warm-up: first-use costs (the dummy hash, caches) are not the answer
    existing_times: list[float] = []
    unknown_times: list[float] = []
    for _ in range(samples):
        existing_times.append(await _timed(existing))
        unknown_times.append(await _timed(unknown))
    existing_median = statistics.median(existing_times)
    unknown_median = statistics.median(unknown_times)
    return {
        "existing_median_ms": round(existing_median * 1000, 3),
        "unknown_median_ms": round(unknown_median * 1000, 3),
        "relative_difference": round(
            abs(existing_median - unknown_median) / max(existing_median, unknown_median), 4
        ),
    }


async def _seed(settings: Settings) -> None:
    engine = create_engine_for(settings)
    try:
        await upgrade_to_head(engine)
        async with create_session_factory(engine)() as session:
            session.add(
                User(email="member@example.com", password_hash=await hash_password(PASSWORD))
            )
            await session.commit()
    finally:
        await engine.dispose()


async def run(samples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        environment = production_environment(
            f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}",
            RATE_LIMIT_ENABLED="false",
            REGISTRATION_CONCEALS_EXISTING="true",
        )
        await _seed(Settings.model_validate({k.lower(): v for k, v in environment.items()}))
        async with (
            serve("gql_app.main:create_app", environment) as server,
            AsyncClient(base_url=server.base_url, timeout=30) as http,
        ):

            def post(query: str, variables: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
                body = {"query": query, "variables": variables}
                return lambda: http.post("/graphql", json=body)

            wrong = "wrong password!!"
            login = await _compare(
                samples,
                existing=post(LOGIN, {"i": {"email": "member@example.com", "password": wrong}}),
                unknown=post(LOGIN, {"i": {"email": "nobody@example.com", "password": wrong}}),
            )
            reset = await _compare(
                samples,
                existing=post(RESET, {"e": "member@example.com"}),
                unknown=post(RESET, {"e": "nobody@example.com"}),
            )
            newcomers = (f"new-{n}@example.com" for n in itertools.count())

            async def register_new() -> Any:
                account = {"email": next(newcomers), "password": PASSWORD}
                return await http.post(
                    "/graphql", json={"query": REGISTER, "variables": {"i": account}}
                )

            register = await _compare(
                samples,
                existing=post(
                    REGISTER, {"i": {"email": "member@example.com", "password": PASSWORD}}
                ),
                unknown=register_new,
            )
    return {
        "samples": samples,
        "login_wrong_password_vs_unknown_email": login,
        "password_reset_existing_vs_unknown_email": reset,
        "register_concealed_existing_vs_new_email": register,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=60, help="requests of each kind")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.samples))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
