"""The engine the application builds for PostgreSQL carries the configured limits."""

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gql_app.config import Settings
from gql_app.db import create_engine_for, create_migration_engine, database_unreachable

pytestmark = pytest.mark.e2e


class TestApplicationEngine:
    async def test_sessions_are_named_and_time_limited(self, app: FastAPI) -> None:
        async with app.state.engine.connect() as connection:
            settings = {
                name: (await connection.execute(text(f"SHOW {name}"))).scalar_one()
                for name in (
                    "application_name",
                    "statement_timeout",
                    "idle_in_transaction_session_timeout",
                    "timezone",
                )
            }

        assert settings == {
            "application_name": "gql-app",
            "statement_timeout": "2s",
            "idle_in_transaction_session_timeout": "4s",
            "timezone": "UTC",
        }

    async def test_pool_is_sized_from_settings(self, settings: Settings) -> None:
        engine = create_engine_for(
            settings.model_copy(update={"database_pool_size": 3, "database_max_overflow": 1})
        )
        try:
            assert engine.pool.size() == 3  # type: ignore[attr-defined]
        finally:
            await engine.dispose()

    async def test_a_statement_over_the_timeout_is_cancelled(self, settings: Settings) -> None:
        engine = create_engine_for(
            settings.model_copy(update={"database_statement_timeout_ms": 50})
        )
        try:
            async with engine.connect() as connection:
                with pytest.raises(DBAPIError, match="statement timeout"):
                    await connection.execute(text("SELECT pg_sleep(2)"))
        finally:
            await engine.dispose()

    async def test_a_statement_the_server_never_answers_is_abandoned_by_the_client(
        self, settings: Settings
    ) -> None:
        # The server's own timeout off: only the client's command timeout can end the wait.
        engine = create_engine_for(
            settings.model_copy(
                update={
                    "database_statement_timeout_ms": 0,
                    "database_command_timeout_seconds": 0.2,
                }
            )
        )
        try:
            async with engine.connect() as connection:
                with pytest.raises(TimeoutError) as caught:
                    await connection.execute(text("SELECT pg_sleep(5)"))
        finally:
            await engine.dispose()

        assert database_unreachable(caught.value)


class TestMigrationEngine:
    async def test_schema_changes_run_without_statement_timeouts(self, settings: Settings) -> None:
        engine = create_migration_engine(settings)
        try:
            async with engine.connect() as connection:
                names = ("application_name", "statement_timeout")
                shown = {
                    name: (await connection.execute(text(f"SHOW {name}"))).scalar_one()
                    for name in names
                }
        finally:
            await engine.dispose()

        assert shown == {"application_name": "gql-app migrations", "statement_timeout": "0"}
