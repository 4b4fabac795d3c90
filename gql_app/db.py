import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import event, exc, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, NullPool
from starlette.requests import HTTPConnection

from gql_app.availability import Availability, Dependency
from gql_app.config import Settings

SessionFactory = async_sessionmaker[AsyncSession]

# SQLSTATE classes that mean the server could not serve the statement, not that it refused
# it: connection exceptions, insufficient resources, operator intervention (shutting down,
# starting up, statement timeout), and lock_not_available.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
_UNAVAILABLE_SQLSTATES = ("55P03",)
# SQLite's own ways of saying it cannot serve now (its OperationalError also covers mistakes
# such as unknown tables, which are bugs, not outages).
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk i/o error")


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    # hide_parameters: error messages (and so logged tracebacks) never carry the values,
    # which may be password or token hashes.
    engine = create_async_engine(database_url, pool_pre_ping=True, hide_parameters=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def _is_postgresql(settings: Settings) -> bool:
    return make_url(settings.database_url).get_backend_name() == "postgresql"


def engine_options(settings: Settings) -> dict[str, Any]:
    """Pool and session limits for a server database, chosen rather than left to defaults.

    Every wait is bounded: a connection from the pool, a new connection, each statement on
    the server and, for a server that stops answering altogether, each command on the client.
    """
    if not _is_postgresql(settings):
        return {}
    statement_timeout_ms = settings.database_statement_timeout_ms
    return {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_timeout": settings.database_pool_timeout_seconds,
        # Reconnect before a firewall or the server drops an idle connection under us.
        "pool_recycle": settings.database_pool_recycle_seconds,
        "connect_args": {
            "timeout": settings.database_connect_timeout_seconds,
            "command_timeout": settings.database_command_timeout_seconds,
            "server_settings": {
                "application_name": "gql-app",
                # A runaway query or a forgotten transaction must not hold locks forever.
                "statement_timeout": str(statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(statement_timeout_ms * 2),
                "timezone": "UTC",
            },
        },
    }


def create_engine_for(settings: Settings) -> AsyncEngine:
    return create_engine(settings.database_url, **engine_options(settings))


def create_migration_engine(settings: Settings) -> AsyncEngine:
    """An engine for schema changes: one connection, and no statement timeouts.

    Building an index on a large table takes longer than any request may; a migration
    waits for the advisory lock, then for its statements, as long as they take.
    """
    if not _is_postgresql(settings):
        return create_engine(settings.database_url)
    return create_engine(
        settings.database_url,
        poolclass=NullPool,
        connect_args={
            "timeout": settings.database_connect_timeout_seconds,
            "server_settings": {"application_name": "gql-app migrations", "timezone": "UTC"},
        },
    )


def watch_availability(engine: AsyncEngine, availability: Availability) -> None:
    """A connection handed out by the pool (pinged first) means the database answers."""

    def checked_out(*_: Any) -> None:
        availability.answered(Dependency.DATABASE)

    event.listen(engine.sync_engine, "checkout", checked_out)


def database_unreachable(error: BaseException) -> bool:
    """Whether the error says the database could not serve us, rather than refused a statement.

    Refused, reset and timed-out connections, a full pool, a server shutting down or starting
    up, out of connections, or cancelling a statement that ran past its timeout.
    """
    if isinstance(error, exc.TimeoutError):  # no connection free in the pool in time
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if _sqlite_unavailable(error):
            return True
        return _unavailable_sqlstate(error.orig)
    if isinstance(error, OSError):  # refused, unreachable, reset; asyncio's TimeoutError too
        return True
    return _unavailable_sqlstate(error)


def _unavailable_sqlstate(error: BaseException | None) -> bool:
    sqlstate = getattr(error, "sqlstate", None)
    if not isinstance(sqlstate, str):
        return False
    return sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES) or sqlstate in _UNAVAILABLE_SQLSTATES


def _sqlite_unavailable(error: exc.DBAPIError) -> bool:
    if not isinstance(error, exc.OperationalError):
        return False
    message = str(error.orig).lower()
    return any(sign in message for sign in _SQLITE_UNAVAILABLE)


def _enable_sqlite_foreign_keys(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    # SQLite ignores ON DELETE CASCADE unless asked per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


async def release_connection(session: AsyncSession) -> None:
    """End the session's read-only transaction, so its connection goes back to the pool.

    Called before slow work (hashing a password takes a hashing thread for a while, and may
    wait for one): a connection held meanwhile would sit idle in transaction, and a few such
    requests empty the pool for everyone. What was loaded stays usable; the next statement
    begins a new, short transaction.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a read-only transaction was expected: nothing may be pending")
    await session.commit()


async def database_answers(
    engine: AsyncEngine, *, availability: Availability, timeout_seconds: float
) -> bool:
    try:
        async with asyncio.timeout(timeout_seconds), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        availability.failed(Dependency.DATABASE, error)
        return False
    return True


async def get_session_factory(connection: HTTPConnection) -> SessionFactory:
    session_factory: SessionFactory = connection.app.state.session_factory
    return session_factory


@asynccontextmanager
async def open_session(session_factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session that ends quietly when its connection died under it.

    Closing rolls back what is left of the transaction; on a connection the server cut or
    that broke mid-statement, that rollback fails too. The connection is then discarded
    rather than returned to the pool, and the request, already answered, is not failed
    again for it.
    """
    session = session_factory()
    try:
        yield session
    finally:
        try:
            await session.close()
        except (exc.DBAPIError, OSError):
            with suppress(Exception):
                await session.invalidate()


async def discard_changes(session: AsyncSession) -> None:
    """Roll back; on a connection that is gone (its transaction went with it), discard it."""
    try:
        await session.rollback()
    except (exc.DBAPIError, OSError):
        with suppress(Exception):
            await session.invalidate()


async def get_session(
    session_factory: Annotated[SessionFactory, Depends(get_session_factory)],
) -> AsyncIterator[AsyncSession]:
    async with open_session(session_factory) as session:
        yield session
