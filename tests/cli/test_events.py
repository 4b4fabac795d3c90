"""`gql-app events purge`: the security events older than SECURITY_EVENT_RETENTION_DAYS go,
a batch per transaction; the newer ones stay."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from gql_app.cli import main
from gql_app.config import get_settings
from gql_app.crud import security_events as events_crud
from gql_app.db import create_engine
from gql_app.models import SecurityEvent
from gql_app.models.base import utc_now
from gql_app.services.security_events import PURGE_BATCH_SIZE
from tests.cli.output import one_line_error
from tests.cli.sqlite_file import query

OLD = "SIGNED_IN"
NEW = "PASSWORD_CHANGED"


@pytest.fixture
def migrated(database: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["migrate", "upgrade"]) == 0
    capsys.readouterr()
    return database


def insert_events(path: Path, *batches: tuple[str, timedelta, int]) -> None:
    """(type, age, how many) rows, in one statement each: thousands of rows in a moment."""

    async def run() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        now = utc_now()
        try:
            async with engine.begin() as connection:
                for type, age, number in batches:
                    rows = [{"type": type, "occurred_at": now - age, "details": {}}] * number
                    await connection.execute(insert(SecurityEvent), rows)
        finally:
            await engine.dispose()

    asyncio.run(run())


def stored(path: Path) -> dict[str, int]:
    rows = query(path, "SELECT type, count(*) FROM security_events GROUP BY type")
    return dict(rows)


def set_retention(monkeypatch: pytest.MonkeyPatch, days: str) -> None:
    monkeypatch.setenv("SECURITY_EVENT_RETENTION_DAYS", days)
    get_settings.cache_clear()


def batches_deleted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each batch of the purge deleted, in order."""
    deleted: list[int] = []
    purge_before: Callable[..., Awaitable[int]] = events_crud.purge_before

    async def counted(*, session: object, cutoff: datetime, batch_size: int) -> int:
        assert batch_size == PURGE_BATCH_SIZE
        removed = await purge_before(session=session, cutoff=cutoff, batch_size=batch_size)
        deleted.append(removed)
        return removed

    monkeypatch.setattr(events_crud, "purge_before", counted)
    return deleted


class TestPurge:
    def test_deletes_what_is_past_the_retention_in_batches_and_keeps_the_rest(
        self,
        migrated: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        set_retention(monkeypatch, "30")
        old = 2 * PURGE_BATCH_SIZE + 50
        insert_events(
            migrated, (OLD, timedelta(days=30, hours=1), old), (NEW, timedelta(days=29), 3)
        )
        deleted = batches_deleted(monkeypatch)

        assert main(["events", "purge"]) == 0

        assert capsys.readouterr() == (f"deleted {old} security events older than 30 days\n", "")
        assert deleted == [PURGE_BATCH_SIZE, PURGE_BATCH_SIZE, 50]
        assert stored(migrated) == {NEW: 3}

    def test_running_again_deletes_nothing_more(
        self,
        migrated: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        set_retention(monkeypatch, "30")
        insert_events(migrated, (OLD, timedelta(days=31), 2), (NEW, timedelta(days=1), 1))
        assert main(["events", "purge"]) == 0
        capsys.readouterr()

        assert main(["events", "purge"]) == 0

        assert capsys.readouterr().out == "deleted 0 security events older than 30 days\n"
        assert stored(migrated) == {NEW: 1}

    def test_the_retention_is_ninety_days_by_default(
        self,
        migrated: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.delenv("SECURITY_EVENT_RETENTION_DAYS", raising=False)
        get_settings.cache_clear()
        insert_events(migrated, (OLD, timedelta(days=91), 1), (NEW, timedelta(days=89), 1))

        assert main(["events", "purge"]) == 0

        assert capsys.readouterr().out == "deleted 1 security events older than 90 days\n"
        assert stored(migrated) == {NEW: 1}


def test_a_retention_below_one_day_is_a_configuration_error(
    database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_retention(monkeypatch, "0")

    assert main(["events", "purge"]) == 2

    assert one_line_error(capsys).startswith(
        "invalid configuration: SECURITY_EVENT_RETENTION_DAYS: "
    )


def test_an_unmigrated_database_is_one_line(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["events", "purge"]) == 1

    assert "no such table: security_events" in one_line_error(capsys)
