"""Synchronous work in the main thread stops at its budget, and nowhere else."""

import signal
import threading
import time

import pytest

from gql_app.api.check_budget import CheckBudgetExceededError, time_budget


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_work_past_its_budget_is_interrupted() -> None:
    started = time.monotonic()
    with pytest.raises(CheckBudgetExceededError), time_budget(0.05):
        spin(30)

    assert time.monotonic() - started < 30


def test_work_within_its_budget_runs_to_its_end() -> None:
    with time_budget(5):
        spin(0.01)


def test_an_alarm_after_the_work_ended_is_ignored() -> None:
    with time_budget(5):
        pass

    signal.raise_signal(signal.SIGALRM)


def test_work_in_another_thread_is_not_interrupted() -> None:
    outcome: list[str] = []

    def work() -> None:
        with time_budget(0.001):
            spin(0.05)
        outcome.append("finished")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()

    assert outcome == ["finished"]
