"""Liveness and readiness, for load balancers and orchestrators.

``/healthz`` says the process answers, and touches nothing else: a database outage must not
get healthy workers restarted. ``/readyz`` says whether requests can be served, checking
each dependency within a bound, so that a frozen one answers 503 rather than nothing.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from gql_app.api.persisted_queries import QueryStorage
from gql_app.availability import Availability, Dependency
from gql_app.db import database_answers

# Below the two seconds an orchestrator's probe is commonly given.
READINESS_TIMEOUT_SECONDS = 1.5


async def _bounded(check: Coroutine[Any, Any, bool]) -> bool:
    """The check's answer, or False once the bound has passed.

    Not awaited past the bound: cancelling a database check can itself wait on the frozen
    server (the driver asks it to cancel the statement), so the check ends on its own.
    """
    task = asyncio.ensure_future(check)
    done, _ = await asyncio.wait({task}, timeout=READINESS_TIMEOUT_SECONDS)
    if task in done:
        return not task.cancelled() and task.exception() is None and task.result()
    task.add_done_callback(_discard_outcome)
    task.cancel()
    return False


def _discard_outcome(task: "asyncio.Future[bool]") -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as never retrieved


def add_health_routes(app: FastAPI, *, redis: QueryStorage | None) -> None:
    """``redis``: a Redis-backed store to ping, when REDIS_URL is set."""

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        availability: Availability = app.state.availability
        checks = {
            Dependency.DATABASE: database_answers(
                app.state.engine,
                availability=availability,
                timeout_seconds=READINESS_TIMEOUT_SECONDS,
            )
        }
        if redis is not None:
            checks[Dependency.REDIS] = redis.ping(availability=availability)
        answers = await asyncio.gather(*(_bounded(check) for check in checks.values()))
        results = {
            str(name): "ok" if answered else "unavailable"
            for name, answered in zip(checks, answers, strict=True)
        }
        ready = all(answers)
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": results},
            status_code=200 if ready else 503,
        )
