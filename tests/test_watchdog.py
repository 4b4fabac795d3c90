"""A worker whose event loop stops turning exits; one that keeps turning is left alone."""

import asyncio
import threading
import time

import pytest

from gql_app import watchdog
from gql_app.watchdog import STUCK_EXIT_STATUS, Watchdog
from tests.conftest import LogRecords


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Exit statuses the watchdog asked for (the test process carries on)."""
    statuses: list[int] = []
    asked = threading.Event()

    def record(status: int) -> None:
        statuses.append(status)
        asked.set()

    monkeypatch.setattr(watchdog, "exit_process", record)
    return statuses


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a stuck worker does: nothing else runs meanwhile


async def test_a_loop_stuck_past_the_limit_ends_the_process(
    exits: list[int], app_log: LogRecords
) -> None:
    dog = Watchdog(stall_seconds=0.3)
    dog.start()

    # Longer than the limit, shorter than faulthandler's backstop (which would end pytest).
    hold_the_loop(1.0)
    dog.stop()

    assert exits == [STUCK_EXIT_STATUS]
    (record,) = [r for r in app_log.records if r.levelname == "CRITICAL"]
    assert "Event loop stuck for" in record.getMessage()
    # Where it was stuck: the code that held the loop.
    assert "hold_the_loop" in record.getMessage()


async def test_a_loop_that_keeps_turning_is_left_alone(exits: list[int]) -> None:
    dog = Watchdog(stall_seconds=0.3)
    dog.start()

    for _ in range(20):
        await asyncio.sleep(0.05)
    dog.stop()

    assert exits == []


def test_the_exit_status_is_not_uvicorns_failed_to_start() -> None:
    from uvicorn.config import STARTUP_FAILURE  # noqa: PLC0415

    assert STUCK_EXIT_STATUS != STARTUP_FAILURE
