"""Where the PostgreSQL tests get their server, and throwaway databases on it.

The server comes from, in order: ``TEST_DATABASE_URL``; a ``postgres:17-alpine`` container
started by testcontainers when a Docker engine answers; otherwise the tests are skipped
(or fail, when ``CI`` is set: CI must never silently skip them).
"""

import asyncio
import gc
import os
import re
import threading
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

T = TypeVar("T")

DATABASE_URL_ENV = "TEST_DATABASE_URL"
POSTGRES_IMAGE = "postgres:17-alpine"
NO_SERVER = (
    "no PostgreSQL server for the e2e tests: set "
    f"{DATABASE_URL_ENV}=postgresql+asyncpg://user@host:port/db (or start a Docker engine)"
)

_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_FORCE_DROP_VERSION = (13,)

# Test runs of other checkouts may share the server: each process's databases are its own.
_PROCESS_TAG = uuid.uuid4().hex[:8]

_lock = threading.Lock()
_users = 0
_container: Any = None
_container_url: str | None = None


def run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, on a private loop and thread.

    A thread of its own keeps asyncio.run away from whatever event loop state
    pytest-asyncio keeps on the main thread.
    """
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=target, name="test-db-admin")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _docker_answers() -> bool:
    answered = False
    with warnings.catch_warnings():
        # A failed probe leaves docker-py's half-built client and its socket behind;
        # collect them here rather than have their ResourceWarning fail a later test.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            answered = _ping_docker()
        except Exception:
            answered = False
        gc.collect()
    return answered


def _ping_docker() -> bool:
    import docker  # type: ignore[import-untyped]  # noqa: PLC0415 - only without TEST_DATABASE_URL

    client = docker.from_env(timeout=3)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _start_container() -> tuple[Any, str]:
    from testcontainers.postgres import PostgresContainer  # noqa: PLC0415

    container = PostgresContainer(POSTGRES_IMAGE, driver="asyncpg")
    container.start()
    return container, container.get_connection_url()


def _no_server() -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but there is {NO_SERVER}", pytrace=False)
    pytest.skip(NO_SERVER)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server (asyncpg driver) for as long as the block runs.

    Shared within the process: a container, when one is needed, is started once
    and stopped when the last user leaves.
    """
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        yield _with_asyncpg(url)
        return
    global _users, _container, _container_url  # noqa: PLW0603 - one container per process
    with _lock:
        if _container_url is None:
            if not _docker_answers():
                _no_server()
            _container, _container_url = _start_container()
        _users += 1
        url = _container_url
    try:
        yield url
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _container is not None:
                _container.stop()
                _container, _container_url = None, None


def _with_asyncpg(url: str) -> str:
    """Accept a plain postgresql:// URL too; the application's engine is async."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def database_url(server_url: str, name: str) -> str:
    """The server's URL with another database name."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def database_name(prefix: str, worker_id: str) -> str:
    name = f"{prefix}_{worker_id}_{_PROCESS_TAG}".lower()
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unusable database name {name!r}")
    return name


async def _drop(connection: Any, name: str) -> None:
    await connection.execute(
        text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"
        ),
        {"name": name},
    )
    force = connection.dialect.server_version_info >= _FORCE_DROP_VERSION
    await connection.execute(
        text(f'DROP DATABASE IF EXISTS "{name}"' + (" WITH (FORCE)" if force else ""))
    )


def _admin_engine(server_url: str) -> Any:
    # The server URL's own database serves as the maintenance database: it exists
    # and the given user may connect to it.
    return create_async_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def recreate_database(server_url: str, name: str) -> str:
    """Drop ``name`` if it exists (leftovers of an aborted run), create it empty; its URL."""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unusable database name {name!r}")

    async def recreate() -> None:
        engine = _admin_engine(server_url)
        try:
            async with engine.connect() as connection:
                await _drop(connection, name)
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()

    run(recreate)
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unusable database name {name!r}")

    async def drop() -> None:
        engine = _admin_engine(server_url)
        try:
            async with engine.connect() as connection:
                await _drop(connection, name)
        finally:
            await engine.dispose()

    run(drop)
