"""DATABASE_URL for the commands that use the database: refused early when unusable, shown
without secrets, and work run on an engine so that every failure is one line."""

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from alembic.util import CommandError
from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_app.cli.errors import USAGE, CliError, one_line
from gql_app.config import Settings
from gql_app.db import create_migration_engine

T = TypeVar("T")


def redacted(url: URL) -> str:
    # A driver may also take the password as a query parameter.
    secret_keys = [key for key in url.query if "password" in key.lower()]
    return url.difference_update_query(secret_keys).render_as_string(hide_password=True)


def checked_database_url(settings: Settings) -> URL:
    """The parsed DATABASE_URL, refused early when the application could never use it."""
    try:
        url = make_url(settings.database_url)
    except (ArgumentError, ValueError):
        # Not echoed: an unparseable URL cannot be shown with its password hidden.
        raise CliError(
            "DATABASE_URL is not a valid database URL "
            "(e.g. sqlite+aiosqlite:///./gql_app.db or postgresql+asyncpg://user@host:5432/name)",
            exit_code=USAGE,
        ) from None
    try:
        dialect = url.get_dialect()
    except ArgumentError:
        raise CliError(
            f"DATABASE_URL {redacted(url)}: unknown database driver {url.drivername!r}",
            exit_code=USAGE,
        ) from None
    if not dialect.is_async:
        raise CliError(
            f"DATABASE_URL {redacted(url)}: driver {url.drivername!r} is not asynchronous; "
            "use sqlite+aiosqlite or postgresql+asyncpg",
            exit_code=USAGE,
        )
    try:
        dialect.import_dbapi()
    except ImportError as error:
        raise CliError(
            f"DATABASE_URL {redacted(url)}: driver {url.drivername!r} is not installed "
            f"({one_line(error)})",
            exit_code=USAGE,
        ) from None
    return url


def _join_sqlite_workers(existing: set[threading.Thread]) -> None:
    # After a failed connect, aiosqlite's worker thread hands a result to the event loop
    # that asyncio.run may have closed by then, and dies with a traceback on stderr
    # (omnilib/aiosqlite#389). Waiting here, with the loop still open, avoids the race.
    workers = [
        thread
        for thread in threading.enumerate()
        if thread not in existing and thread.name.endswith("(_connection_worker_thread)")
    ]
    for thread in workers:
        thread.join(timeout=5)


async def _disposing(engine: AsyncEngine, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    existing = set(threading.enumerate())
    try:
        return await work(engine)
    finally:
        await engine.dispose()
        _join_sqlite_workers(existing)


def run_on_database(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    url = checked_database_url(settings)
    try:
        return asyncio.run(_disposing(create_migration_engine(settings), work))
    except OSError as error:  # refused, unknown host, timed out
        raise CliError(f"cannot reach the database at {redacted(url)}: {one_line(error)}") from None
    except DBAPIError as error:
        # The driver's own message: SQLAlchemy's wrapper adds the statement and a link.
        raise CliError(
            f"database error at {redacted(url)}: {one_line(error.orig or error)}"
        ) from None
    except CommandError as error:
        raise CliError(f"migration failed: {one_line(error)}") from None
