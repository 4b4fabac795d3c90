"""The real app under uvicorn on a free loopback port, as clients and browsers meet it."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from bench.server import RunningServer, serve

LIVE_SECRET = "live-server-secret-key-that-is-long-enough-0123456789"


@asynccontextmanager
async def live_server(folder: Path, **overrides: str) -> AsyncIterator[RunningServer]:
    """Development settings on a SQLite file in ``folder``; ``overrides`` are env variables."""
    environment: Mapping[str, str] = {
        "ENVIRONMENT": "development",
        "SECRET_KEY": LIVE_SECRET,
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'live.db'}",
        "EMAIL_BACKEND": "memory",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }
    async with serve("gql_app.main:create_app", environment) as server:
        yield server
