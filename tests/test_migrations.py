"""Alembic migrations on SQLite and PostgreSQL: up, down, up again, and in step with the models.

The alembic commands run from synchronous tests, the way the ``alembic`` command line
runs them: env.py then opens its own engine with asyncio.run. The PostgreSQL cases use
a database of their own per xdist worker, recreated for every test.
"""

import asyncio
import logging.config
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from alembic import command
from gql_app.db import create_engine
from gql_app.migrations import alembic_config, upgrade_to_head
from tests.e2e.postgres import (
    database_name,
    drop_database,
    postgres_server,
    recreate_database,
    run,
)

APP_TABLES = {
    "users",
    "auth_sessions",
    "refresh_tokens",
    "action_tokens",
    "signing_keys",
    "totp_factors",
    "recovery_codes",
    "mfa_challenges",
    "passkeys",
    "passkey_challenges",
    "security_events",
}


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The same provider as the e2e tests (a started container is shared)."""
    with postgres_server() as url:
        yield url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Any, worker_id: str) -> Iterator[str]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    server_url: str = request.getfixturevalue("postgres_server_url")
    name = database_name("gql_app_test_migrations", worker_id)
    url = recreate_database(server_url, name)
    yield url
    drop_database(server_url, name)


@pytest.fixture(autouse=True)
def _keep_logging_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a shared connection env.py applies alembic.ini's logging setup, which
    # would replace the root logger's handlers for the rest of the test session.
    monkeypatch.setattr(logging.config, "fileConfig", lambda *_, **__: None)


@pytest.fixture
def config(database_url: str) -> Config:
    return alembic_config(database_url)


@pytest.fixture
def head(config: Config) -> str:
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"the migrations have several heads: {heads}"
    return heads[0]


@dataclass(frozen=True)
class SchemaState:
    tables: set[str]
    versions: list[str]
    check_constraints: set[str | None]
    unique_constraints: set[str | None]
    indexes: set[str | None]
    foreign_keys: list[Any]


def _read_state(connection: Connection) -> SchemaState:
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    versions: list[str] = []
    if "alembic_version" in tables:
        versions = list(
            connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        )
    if "users" not in tables:
        return SchemaState(tables, versions, set(), set(), set(), [])
    app_tables = sorted(APP_TABLES & tables)
    return SchemaState(
        tables=tables,
        versions=versions,
        check_constraints={c["name"] for c in inspector.get_check_constraints("users")},
        unique_constraints={
            c["name"] for table in app_tables for c in inspector.get_unique_constraints(table)
        },
        indexes={i["name"] for table in app_tables for i in inspector.get_indexes(table)},
        foreign_keys=[fk for table in app_tables for fk in inspector.get_foreign_keys(table)],
    )


def schema_state(url: str) -> SchemaState:
    async def read() -> SchemaState:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_read_state)
        finally:
            await engine.dispose()

    return run(read)


def test_upgrade_from_empty_to_head(database_url: str, config: Config, head: str) -> None:
    assert schema_state(database_url).tables == set()

    command.upgrade(config, "head")

    state = schema_state(database_url)
    assert state.tables == APP_TABLES | {"alembic_version"}
    assert state.versions == [head]
    assert state.check_constraints == {"ck_users_email_lowercase"}
    assert {
        "uq_users_email",
        "uq_refresh_tokens_token_hash",
        "uq_action_tokens_token_hash",
        "uq_passkeys_credential_id",
    } <= state.unique_constraints
    assert {
        "ix_users_created_at_id",
        "ix_auth_sessions_user_id",
        "ix_refresh_tokens_session_id",
        "ix_action_tokens_user_id",
    } <= state.indexes
    assert sorted(
        (fk["name"], fk["referred_table"], fk["options"]) for fk in state.foreign_keys
    ) == [
        ("fk_action_tokens_user_id_users", "users", {"ondelete": "CASCADE"}),
        ("fk_auth_sessions_user_id_users", "users", {"ondelete": "CASCADE"}),
        ("fk_mfa_challenges_user_id_users", "users", {"ondelete": "CASCADE"}),
        ("fk_passkey_challenges_user_id_users", "users", {"ondelete": "CASCADE"}),
        ("fk_passkeys_user_id_users", "users", {"ondelete": "CASCADE"}),
        ("fk_recovery_codes_user_id_users", "users", {"ondelete": "CASCADE"}),
        ("fk_refresh_tokens_session_id_auth_sessions", "auth_sessions", {"ondelete": "CASCADE"}),
        ("fk_security_events_user_id_users", "users", {"ondelete": "SET NULL"}),
        ("fk_totp_factors_user_id_users", "users", {"ondelete": "CASCADE"}),
    ]


def test_downgrade_to_base_then_upgrade_again(database_url: str, config: Config, head: str) -> None:
    command.upgrade(config, "head")

    command.downgrade(config, "base")

    emptied = schema_state(database_url)
    assert emptied.tables == {"alembic_version"}
    assert emptied.versions == []

    command.upgrade(config, "head")

    again = schema_state(database_url)
    assert again.tables == APP_TABLES | {"alembic_version"}
    assert again.versions == [head]


def test_models_and_migrations_agree(config: Config) -> None:
    command.upgrade(config, "head")

    # Raises AutogenerateDiffsDetected, listing the differences, when they disagree.
    command.check(config)


async def test_the_applications_upgrade_is_idempotent(database_url: str, head: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            state = await connection.run_sync(_read_state)
    finally:
        await engine.dispose()

    assert state.tables == APP_TABLES | {"alembic_version"}
    assert state.versions == [head]


def test_offline_sql_creates_the_tables(
    database_url: str, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    command.upgrade(config, "head", sql=True)

    sql = capsys.readouterr().out
    assert "CREATE TABLE users" in sql
    assert "CREATE TABLE auth_sessions" in sql
    assert "CREATE TABLE refresh_tokens" in sql
    assert "CREATE TABLE action_tokens" in sql
    assert schema_state(database_url).tables == set(), "offline mode must not touch the database"


@pytest.fixture
def empty_postgres_url(postgres_server_url: str, worker_id: str) -> Iterator[str]:
    name = database_name("gql_app_test_parallel_migrations", worker_id)
    yield recreate_database(postgres_server_url, name)
    drop_database(postgres_server_url, name)


@pytest.mark.e2e
async def test_workers_starting_together_on_postgresql_migrate_once_without_failing(
    empty_postgres_url: str,
) -> None:
    engines = [create_engine(empty_postgres_url) for _ in range(3)]
    try:
        # Without the lock the racing CREATE TABLEs wait on each other: fail, do not hang.
        await asyncio.wait_for(
            asyncio.gather(*(upgrade_to_head(engine) for engine in engines)), timeout=60
        )
        async with engines[0].connect() as connection:
            version = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one()
    finally:
        for engine in engines:
            await engine.dispose()

    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_workers_starting_together_on_one_sqlite_file_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    engines = [create_engine(url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade_to_head(engine) for engine in engines))
        async with engines[0].connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        for engine in engines:
            await engine.dispose()

    assert {"users", "auth_sessions", "alembic_version"} <= set(tables)
