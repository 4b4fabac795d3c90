"""The benchmark suite: the real app under load, next to a plain FastAPI baseline.

For each database (SQLite always; PostgreSQL when TEST_DATABASE_URL or DATABASE_URL names
one) it seeds users, starts one uvicorn worker with production settings, and drives it
with wrk from a separate process. GraphQL and baseline runs alternate within a scenario,
and ratios are medians of the rounds, so a noisy machine cannot decide the result alone.
Beside them, in this process, it times signing and verifying one access token with each
signing algorithm (bench/tokens.py), since every authenticated request verifies one.

Run: `.venv/bin/python -m bench` (see BENCHMARKS.md for the options and the last results).
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from bench.seed import (
    cursor_before_last,
    event_cursor_before_last,
    is_postgresql,
    postgresql_database,
    seed_security_events,
    seed_users,
)
from bench.server import RunningServer, production_environment, serve
from bench.tokens import measure_tokens
from bench.wrk import LoadResult, Request, run_wrk, wrk_executable
from gql_app.security.passwords import configure_password_hashing, hash_password, verify_password

APP_FACTORY = "bench.baseline:create_bench_app"
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-admin-passphrase-for-load"  # noqa: S105 - benchmark account only
LAST_PAGE_OFFSET = 60
SCENARIOS = frozenset({"me", "users", "pagination", "login", "tokens"})
# The scenarios that need a server, and so a seeded database each.
SERVED_SCENARIOS = SCENARIOS - {"tokens"}
DATABASES = frozenset({"sqlite", "postgresql"})

USER_FIELDS = "id email fullName isActive isSuperuser isVerified createdAt updatedAt"
ME = f"query Me {{ me {{ {USER_FIELDS} }} }}"
USERS = (
    "query Users($first: Int!, $after: String) { users(first: $first, after: $after) {"
    f" edges {{ cursor node {{ {USER_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
)
SECURITY_EVENTS = (
    "query Events($first: Int!, $after: String) { securityEvents(first: $first, after: $after) {"
    " edges { cursor node { id type occurredAt ipAddress details } }"
    " pageInfo { hasNextPage endCursor } } }"
)
LOGIN = (
    "mutation Login($input: LoginInput!) { login(input: $input) {"
    " accessToken refreshToken expiresIn user { id email } } }"
)

TARGETS: dict[str, tuple[str, float]] = {
    "me_ratio": (">=", 0.6),
    "users_ratio": (">=", 0.5),
    "login_vs_hash_bound": (">=", 0.8),
    "me_p99_ms_during_login_storm": ("<", 50.0),
    "last_page_vs_first_page": ("<=", 2.0),
    "events_last_page_vs_first_page": ("<=", 2.0),
    "peak_rss_mb": ("<", 200.0),
}


@dataclass(frozen=True)
class Options:
    seconds: float
    rounds: int
    connections: int
    login_seconds: float
    users_sqlite: int
    users_postgresql: int
    output: Path
    warmup_seconds: float = 1
    verify_samples: int = 15
    token_iterations: int = 3000
    scenarios: frozenset[str] = SCENARIOS
    databases: frozenset[str] = DATABASES
    # Production writes one INFO line a request; off, the server logs warnings only.
    request_log: bool = True


@dataclass
class DatabaseResults:
    database: str
    users: int
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    # Metrics measured while some answers were errors: fast failures are not throughput.
    invalid: set[str] = field(default_factory=set)

    def record(self, metric: str, value: float, *runs: LoadResult) -> None:
        self.metrics[metric] = value
        if any(run.failures for run in runs):
            self.invalid.add(metric)


@dataclass
class SuiteResults:
    databases: list[DatabaseResults] = field(default_factory=list)
    # Per algorithm; measured in this process, once for all databases.
    tokens: dict[str, dict[str, float | int]] = field(default_factory=dict)


def graphql(query: str, variables: Mapping[str, Any] | None = None) -> Request:
    return _graphql_request(query, variables, authorization="")


def _graphql_request(
    query: str, variables: Mapping[str, Any] | None, *, authorization: str
) -> Request:
    body = json.dumps({"query": query, "variables": dict(variables or {})})
    return Request(method="POST", path="/graphql", body=body, authorization=authorization)


async def _check(server: RunningServer, request: Request) -> None:
    """One request before the load: a scenario that fails is not measured."""
    headers = {"content-type": "application/json"}
    if request.authorization:
        headers["authorization"] = request.authorization
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        response = await http.request(
            request.method, request.path, content=request.body or None, headers=headers
        )
    payload = response.json()
    if response.status_code != 200 or "errors" in payload:
        raise RuntimeError(f"{request.path} answered {response.status_code}: {payload}")


async def _login(server: RunningServer) -> str:
    variables = {"input": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        response = await http.post("/graphql", json={"query": LOGIN, "variables": variables})
    token: str = response.json()["data"]["login"]["accessToken"]
    return f"Bearer {token}"


async def _alternate(
    server: RunningServer, first: Request, second: Request, options: Options
) -> tuple[list[LoadResult], list[LoadResult]]:
    """Rounds of ``first`` then ``second``, after a warm-up of each (unless it is 0 s)."""
    for request in (first, second):
        await _check(server, request)
        if options.warmup_seconds > 0:
            await run_wrk(
                server.base_url,
                request,
                seconds=options.warmup_seconds,
                connections=options.connections,
            )
    firsts: list[LoadResult] = []
    seconds: list[LoadResult] = []
    for _ in range(options.rounds):
        for request, results in ((first, firsts), (second, seconds)):
            results.append(
                await run_wrk(
                    server.base_url,
                    request,
                    seconds=options.seconds,
                    connections=options.connections,
                )
            )
    return firsts, seconds


def _median_ratio(
    numerators: list[LoadResult],
    denominators: list[LoadResult],
    value: Callable[[LoadResult], float],
) -> float:
    return statistics.median(
        value(n) / value(d) for n, d in zip(numerators, denominators, strict=True)
    )


def _summary(results: list[LoadResult]) -> dict[str, Any]:
    return {
        "requests_per_second": round(statistics.median(r.per_second for r in results), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in results), 3),
        "p99_ms": round(statistics.median(r.p99_ms for r in results), 3),
        "failures": sum(r.failures for r in results),
    }


async def _compare_with_baseline(
    server: RunningServer,
    *,
    name: str,
    graphql_request: Request,
    baseline_request: Request,
    options: Options,
    results: DatabaseResults,
) -> None:
    gql, base = await _alternate(server, graphql_request, baseline_request, options)
    results.record(f"{name}_ratio", _median_ratio(gql, base, lambda r: r.per_second), *gql, *base)
    results.details[name] = {"graphql": _summary(gql), "baseline": _summary(base)}


async def _verify_cpu_seconds(samples: int = 15) -> float:
    """The processor time of one password verify, all its threads together.

    Argon2 runs its lanes on threads of their own, so a verify's wall time undercounts its
    cost whenever lanes overlap; the bound on logins a second is cores / CPU time.
    """
    stored = await hash_password(ADMIN_PASSWORD)
    times = []
    for _ in range(samples):
        started = time.process_time()
        await verify_password(ADMIN_PASSWORD, stored)
        times.append(time.process_time() - started)
    return statistics.median(times)


async def _login_scenarios(
    server: RunningServer,
    me: Request,
    options: Options,
    results: DatabaseResults,
    *,
    verify: float,
) -> None:
    cores = os.cpu_count() or 1
    login = graphql(LOGIN, {"input": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}})
    await _check(server, login)
    storm_connections = 4 * cores
    hash_bound = cores / verify
    logins = await run_wrk(
        server.base_url, login, seconds=options.login_seconds, connections=storm_connections
    )
    results.record("login_vs_hash_bound", logins.per_second / hash_bound, logins)
    # The same storm again, with a few `me` clients beside it: their tail latency shows
    # whether hashing ever holds up the event loop.
    storm, me_during = await asyncio.gather(
        run_wrk(
            server.base_url, login, seconds=options.login_seconds, connections=storm_connections
        ),
        run_wrk(server.base_url, me, seconds=options.login_seconds, connections=4),
    )
    results.record("me_p99_ms_during_login_storm", me_during.p99_ms, storm, me_during)
    results.details["login"] = {
        "cores": cores,
        "verify_cpu_ms": round(verify * 1000, 1),
        "hash_bound_per_second": round(hash_bound, 2),
        "logins_per_second": round(logins.per_second, 2),
        "failures": logins.failures,
        "connections": storm_connections,
    }
    results.details["me_during_login_storm"] = {
        "logins_per_second": round(storm.per_second, 2),
        "me": _summary([me_during]),
    }


async def _run_database(
    database_url: str, users: int, options: Options, label: str, *, verify: float
) -> DatabaseResults:
    results = DatabaseResults(database=label, users=users)
    started = time.perf_counter()
    await seed_users(database_url, users)
    # As many security events as users: a million on PostgreSQL.
    await seed_security_events(database_url, users)
    results.details["seed_seconds"] = round(time.perf_counter() - started, 1)
    last_page_cursor = await cursor_before_last(database_url, LAST_PAGE_OFFSET)
    last_events_cursor = await event_cursor_before_last(database_url, LAST_PAGE_OFFSET)
    limits = "1000000/minute"
    environment = production_environment(
        database_url,
        FIRST_SUPERUSER_EMAIL=ADMIN_EMAIL,
        FIRST_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        ACCESS_TOKEN_EXPIRE_SECONDS="7200",  # noqa: S106 - a lifetime, not a secret
        # The limiter stays on and is consulted on every request; its thresholds are raised
        # because one load generator on one address is exactly what it exists to refuse.
        LOGIN_ATTEMPTS_PER_ACCOUNT=limits,
        LOGIN_ATTEMPTS_PER_IP=limits,
        LOG_LEVEL="INFO" if options.request_log else "WARNING",
    )
    with tempfile.TemporaryDirectory() as folder:
        # The lines are written as production writes them, to a file nobody reads.
        log = Path(folder) / "server.log"
        async with serve(APP_FACTORY, environment, output=log) as server:
            await _served_scenarios(
                server, options, results, (last_page_cursor, last_events_cursor), verify=verify
            )
        results.details["request_log_lines"] = _line_count(log)
    return results


def _line_count(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


async def _served_scenarios(
    server: RunningServer,
    options: Options,
    results: DatabaseResults,
    last_page_cursors: tuple[str, str],
    *,
    verify: float,
) -> None:
    bearer = await _login(server)
    me = _graphql_request(ME, None, authorization=bearer)
    if "me" in options.scenarios:
        await _compare_with_baseline(
            server,
            name="me",
            graphql_request=me,
            baseline_request=Request(method="GET", path="/baseline/me", authorization=bearer),
            options=options,
            results=results,
        )
    if "users" in options.scenarios:
        await _compare_with_baseline(
            server,
            name="users",
            graphql_request=_graphql_request(USERS, {"first": 100}, authorization=bearer),
            baseline_request=Request(
                method="GET", path="/baseline/users?first=100", authorization=bearer
            ),
            options=options,
            results=results,
        )
    if "pagination" in options.scenarios:
        await _pagination(server, bearer, last_page_cursors, options, results)
    if "login" in options.scenarios:
        await _login_scenarios(server, me, options, results, verify=verify)
    results.metrics["peak_rss_mb"] = server.peak_rss_bytes() / 2**20


async def _pagination(
    server: RunningServer,
    bearer: str,
    last_page_cursors: tuple[str, str],
    options: Options,
    results: DatabaseResults,
) -> None:
    """The first page and one near the end, of users and of security events."""
    listings = (
        ("", USERS, last_page_cursors[0], "pagination"),
        ("events_", SECURITY_EVENTS, last_page_cursors[1], "events_pagination"),
    )
    for prefix, query, last_page_cursor, detail in listings:
        first_page, last_page = await _alternate(
            server,
            _graphql_request(query, {"first": 50}, authorization=bearer),
            _graphql_request(query, {"first": 50, "after": last_page_cursor}, authorization=bearer),
            options,
        )
        results.record(
            f"{prefix}last_page_vs_first_page",
            _median_ratio(first_page, last_page, lambda r: r.per_second),
            *first_page,
            *last_page,
        )
        results.details[detail] = {
            "first_page": _summary(first_page),
            "last_page": _summary(last_page),
        }


def postgresql_server_url() -> str | None:
    for variable in ("TEST_DATABASE_URL", "DATABASE_URL"):
        url = os.environ.get(variable)
        if url and is_postgresql(url):
            return url
    return None


@asynccontextmanager
async def _sqlite_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"


def _meets(metric: str, value: float) -> bool:
    operator, target = TARGETS[metric]
    return {">=": value >= target, "<": value < target, "<=": value <= target}[operator]


def _token_table(tokens: Mapping[str, Mapping[str, float | int]]) -> str:
    columns = ["sign_us", "sign_p90_us", "verify_us", "verify_p90_us"]
    rows = [["token", "sign µs", "p90", "verify µs", "p90", "samples"]]
    for algorithm, timing in tokens.items():
        cells = [f"{timing[column]:.1f}" for column in columns]
        rows.append([algorithm, *cells, str(timing["samples"])])
    return _format(rows)


def _table(all_results: list[DatabaseResults]) -> str:
    header = ["scenario", "target", *(r.database for r in all_results)]
    rows = [header]
    for metric, (operator, target) in TARGETS.items():
        cells = [metric, f"{operator} {target:g}"]
        for results in all_results:
            value = results.metrics.get(metric)
            if value is None:
                cells.append("-")
            else:
                verdict = "ok" if _meets(metric, value) else "MISSED"
                if metric in results.invalid:
                    verdict = "INVALID: some answers failed"
                cells.append(f"{value:.2f} {verdict}")
        rows.append(cells)
    return _format(rows)


def _format(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def _environment_report() -> dict[str, Any]:
    packages = ["gql-app", "strawberry-graphql", "graphql-core", "fastapi", "uvicorn"]
    packages += ["sqlalchemy", "asyncpg", "aiosqlite", "pwdlib", "argon2-cffi"]
    packages += ["pyjwt", "cryptography"]
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "packages": {name: metadata.version(name) for name in packages},
    }


def _wants_tokens(scenarios: frozenset[str]) -> bool:
    # `me` pays one token verify a request: its figures come with the tokens' own.
    return bool(scenarios & {"tokens", "me"})


async def run(options: Options) -> SuiteResults:
    served = options.scenarios & SERVED_SCENARIOS
    if served:
        wrk_executable()
    results = SuiteResults()
    if _wants_tokens(options.scenarios):
        # First, before any server or seeding shares the cores with it.
        results.tokens = measure_tokens(options.token_iterations)
    if not served:
        return results
    # The servers hash at production's cost (production_environment), and so must the bound
    # their logins are compared with, whatever cost the process that runs the suite chose.
    configure_password_hashing(cost="standard")
    # One verify costs the same whatever the database: measured once for all of them.
    verify = (
        await _verify_cpu_seconds(options.verify_samples) if "login" in options.scenarios else 0.0
    )
    all_results = results.databases
    if "sqlite" in options.databases:
        async with _sqlite_database() as url:
            all_results.append(
                await _run_database(url, options.users_sqlite, options, "sqlite", verify=verify)
            )
    server_url = postgresql_server_url()
    if "postgresql" in options.databases and server_url is not None:
        async with postgresql_database(server_url) as url:
            all_results.append(
                await _run_database(
                    url, options.users_postgresql, options, "postgresql", verify=verify
                )
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per ratio")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=1,
        help="warm-up load before each measured request (0: none; each is still checked once)",
    )
    parser.add_argument(
        "--verify-samples",
        type=int,
        default=15,
        help="password verifies timed for the login bound (their median counts)",
    )
    parser.add_argument("--login-seconds", type=float, default=20, help="login storm length")
    parser.add_argument(
        "--token-iterations",
        type=int,
        default=3000,
        help="tokens signed and verified per algorithm (their medians count; at most 10 s each)",
    )
    parser.add_argument(
        "--request-log",
        choices=("on", "off"),
        default="on",
        help="the server's one INFO line a request, as production writes it (default on)",
    )
    parser.add_argument("--users-sqlite", type=int, default=100_000)
    parser.add_argument("--users-postgresql", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        help="run just this scenario (repeatable); peak RSS is always reported with a served"
        " one, and `me` also times tokens",
    )
    parser.add_argument(
        "--database",
        action="append",
        choices=sorted(DATABASES),
        help="run on just this database (repeatable); PostgreSQL needs TEST_DATABASE_URL"
        " or DATABASE_URL",
    )
    args = parser.parse_args(argv)
    if args.database and "postgresql" in args.database and postgresql_server_url() is None:
        parser.error("--database postgresql needs TEST_DATABASE_URL or DATABASE_URL")
    if args.token_iterations < 1:
        parser.error("--token-iterations must be at least 1")
    options = Options(
        seconds=args.seconds,
        rounds=args.rounds,
        connections=args.connections,
        login_seconds=args.login_seconds,
        users_sqlite=args.users_sqlite,
        users_postgresql=args.users_postgresql,
        output=args.json,
        warmup_seconds=args.warmup_seconds,
        verify_samples=args.verify_samples,
        token_iterations=args.token_iterations,
        request_log=args.request_log == "on",
        scenarios=frozenset(args.only) if args.only else SCENARIOS,
        databases=frozenset(args.database) if args.database else DATABASES,
    )
    suite_results = asyncio.run(run(options))
    all_results = suite_results.databases
    if all_results:
        print(_table(all_results))
    if suite_results.tokens:
        print(("\n" if all_results else "") + _token_table(suite_results.tokens))
    report = {
        "environment": _environment_report(),
        "options": {k: str(v) for k, v in vars(args).items()},
        "targets": {k: f"{op} {t:g}" for k, (op, t) in TARGETS.items()},
        "results": [
            {
                "database": r.database,
                "users": r.users,
                "metrics": {k: round(v, 3) for k, v in r.metrics.items()},
                "invalid": sorted(r.invalid),
                "details": r.details,
            }
            for r in all_results
        ],
        "tokens": suite_results.tokens,
    }
    options.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
