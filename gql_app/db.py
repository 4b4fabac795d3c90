from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from starlette.requests import HTTPConnection

from gql_app.config import Settings

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    # hide_parameters: error messages (and so logged tracebacks) never carry the values,
    # which may be password or token hashes.
    engine = create_async_engine(database_url, pool_pre_ping=True, hide_parameters=True, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def engine_options(settings: Settings) -> dict[str, Any]:
    """Pool and session limits for a server database, chosen rather than left to defaults."""
    if make_url(settings.database_url).get_backend_name() != "postgresql":
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


def _enable_sqlite_foreign_keys(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    # SQLite ignores ON DELETE CASCADE unless asked per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


async def database_answers(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def get_session_factory(connection: HTTPConnection) -> SessionFactory:
    session_factory: SessionFactory = connection.app.state.session_factory
    return session_factory


async def get_session(
    session_factory: Annotated[SessionFactory, Depends(get_session_factory)],
) -> AsyncIterator[AsyncSession]:
    async with session_factory() as session:
        yield session
