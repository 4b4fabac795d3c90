import sqlite3

import pytest
from sqlalchemy import exc, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gql_app.availability import SETTLE_SECONDS, Availability, Dependency
from gql_app.config import Settings
from gql_app.db import (
    SessionFactory,
    create_engine,
    create_migration_engine,
    database_unreachable,
    discard_changes,
    engine_options,
    open_session,
    release_connection,
    watch_availability,
)
from gql_app.models import User
from tests.conftest import LogRecords
from tests.factories import create_user, hashed


def test_sqlite_keeps_its_own_pool(settings: Settings) -> None:
    assert engine_options(settings) == {}


def test_postgresql_gets_the_configured_limits(settings: Settings) -> None:
    options = engine_options(
        settings.model_copy(
            update={
                "database_url": "postgresql+asyncpg://app@db.internal/app",
                "database_pool_size": 7,
                "database_max_overflow": 3,
                "database_pool_timeout_seconds": 4.5,
                "database_connect_timeout_seconds": 2.0,
                "database_statement_timeout_ms": 1500,
                "database_command_timeout_seconds": 2.5,
            }
        )
    )

    assert options["pool_size"] == 7
    assert options["max_overflow"] == 3
    assert options["pool_timeout"] == 4.5
    assert options["connect_args"]["timeout"] == 2.0
    assert options["connect_args"]["command_timeout"] == 2.5
    assert options["connect_args"]["server_settings"]["statement_timeout"] == "1500"
    assert options["connect_args"]["server_settings"]["idle_in_transaction_session_timeout"] == (
        "3000"
    )


def test_every_database_wait_has_a_bound_of_seconds_by_default(settings: Settings) -> None:
    assert (
        settings.database_pool_timeout_seconds,
        settings.database_connect_timeout_seconds,
        settings.database_statement_timeout_ms,
        settings.database_command_timeout_seconds,
    ) == (1.0, 2.0, 2000, 3.0)


def test_migrations_on_sqlite_use_a_plain_engine(settings: Settings) -> None:
    engine = create_migration_engine(settings)

    assert engine.dialect.name == "sqlite"


class PgError(Exception):
    """An error as asyncpg raises it, carrying its SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def wrapped(orig: BaseException, *, invalidated: bool = False) -> exc.DBAPIError:
    return exc.DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


class TestDatabaseUnreachable:
    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(exc.TimeoutError("QueuePool limit reached"), id="pool-timeout"),
            pytest.param(ConnectionRefusedError(111, "refused"), id="refused"),
            pytest.param(ConnectionResetError(104, "reset"), id="reset"),
            pytest.param(TimeoutError(), id="timed-out"),
            pytest.param(wrapped(Exception("closed"), invalidated=True), id="invalidated"),
            pytest.param(wrapped(PgError("57014")), id="statement-timeout"),
            pytest.param(wrapped(PgError("57P01")), id="admin-shutdown"),
            pytest.param(PgError("57P03"), id="starting-up"),
            pytest.param(PgError("53300"), id="too-many-connections"),
            pytest.param(wrapped(PgError("08006")), id="connection-failure"),
            pytest.param(wrapped(PgError("55P03")), id="lock-not-available"),
            pytest.param(
                exc.OperationalError("x", None, sqlite3.OperationalError("database is locked")),
                id="sqlite-locked",
            ),
        ],
    )
    def test_outages(self, error: BaseException) -> None:
        assert database_unreachable(error) is True

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(exc.IntegrityError("x", None, PgError("23505")), id="unique-violation"),
            pytest.param(wrapped(PgError("42P01")), id="undefined-table"),
            pytest.param(wrapped(Exception("no state")), id="no-sqlstate"),
            pytest.param(
                exc.OperationalError("x", None, sqlite3.OperationalError("no such table: users")),
                id="sqlite-mistake",
            ),
            pytest.param(ValueError("not the database"), id="unrelated"),
        ],
    )
    def test_mistakes_and_refusals_are_not_outages(self, error: BaseException) -> None:
        assert database_unreachable(error) is False


class TestWatchAvailability:
    async def test_a_connection_handed_out_ends_an_outage(self, app_log: LogRecords) -> None:
        engine = create_engine("sqlite+aiosqlite:///:memory:")
        now = [1000.0]
        availability = Availability(clock=lambda: now[0])
        watch_availability(engine, availability)
        availability.failed(Dependency.DATABASE, ConnectionRefusedError(111, "refused"))
        now[0] += SETTLE_SECONDS

        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        await engine.dispose()

        assert not availability.is_down(Dependency.DATABASE)
        assert [r.getMessage().split(" after ")[0] for r in app_log.records] == [
            "database unavailable (ConnectionRefusedError: [Errno 111] refused); requests that "
            "need it answer SERVICE_UNAVAILABLE",
            "database available again",
        ]


class TestReleaseConnection:
    async def test_what_was_read_stays_usable_and_the_transaction_ends(
        self, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> None:
        _, session_factory = async_test_db
        async with session_factory() as session:
            user = await create_user(session)
            found = await session.scalar(select(User).where(User.id == user.id))
            assert session.in_transaction()

            await release_connection(session)

            assert not session.in_transaction()
            assert found is not None
            assert found.email == user.email

    async def test_pending_writes_are_a_mistake_not_a_release(
        self, db_session: AsyncSession
    ) -> None:
        db_session.add(User(email="pending@example.com", password_hash="x"))

        with pytest.raises(RuntimeError, match="nothing may be pending"):
            await release_connection(db_session)


class TestSessionsOnDeadConnections:
    @staticmethod
    def failing(calls: list[str], name: str, error: BaseException) -> object:
        async def fail() -> None:
            calls.append(name)
            raise error

        return fail

    @staticmethod
    def recording(calls: list[str], name: str) -> object:
        async def record() -> None:
            calls.append(name)

        return record

    async def test_a_close_that_fails_on_a_dead_connection_discards_it_quietly(
        self, async_test_db: tuple[AsyncEngine, SessionFactory], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, session_factory = async_test_db
        calls: list[str] = []
        lost = exc.InternalError("ROLLBACK", None, Exception("another operation in progress"))

        async with open_session(session_factory) as session:
            monkeypatch.setattr(session, "close", self.failing(calls, "close", lost))
            monkeypatch.setattr(session, "invalidate", self.recording(calls, "invalidate"))

        assert calls == ["close", "invalidate"]

    async def test_a_close_that_fails_otherwise_is_not_hidden(
        self, async_test_db: tuple[AsyncEngine, SessionFactory], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, session_factory = async_test_db

        with pytest.raises(RuntimeError, match="a bug"):
            async with open_session(session_factory) as session:
                monkeypatch.setattr(
                    session, "close", self.failing([], "close", RuntimeError("a bug"))
                )

    async def test_a_rollback_on_a_dead_connection_discards_it(
        self, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[str] = []
        monkeypatch.setattr(
            db_session, "rollback", self.failing(calls, "rollback", ConnectionResetError())
        )
        monkeypatch.setattr(db_session, "invalidate", self.recording(calls, "invalidate"))

        await discard_changes(db_session)

        assert calls == ["rollback", "invalidate"]


class TestDatabaseErrors:
    async def test_do_not_carry_the_values_written(self, db_session: AsyncSession) -> None:
        await create_user(db_session, email="twice@example.com")
        secret_hash = hashed("another password entirely")
        db_session.add(User(email="twice@example.com", password_hash=secret_hash))

        with pytest.raises(exc.IntegrityError) as caught:
            await db_session.flush()

        assert secret_hash not in str(caught.value)
