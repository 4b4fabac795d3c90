"""Synchronous work in the main thread stops at its budget, and nowhere else."""

import signal
import threading
import time
import types

import pytest

from gql_app.api.check_budget import CHECKING_MODULES, CheckBudgetExceededError, time_budget

HERE = (__name__,)


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


# The same loop as code of another module, as a collector's or a weak reference's callback is.
spin_elsewhere = types.FunctionType(spin.__code__, {"__name__": "elsewhere", "time": time})


def test_the_checking_code_is_graphql_and_the_document_checks() -> None:
    assert CHECKING_MODULES == ("graphql.", "strawberry.", "gql_app.api.document")


def test_work_past_its_budget_is_interrupted() -> None:
    started = time.monotonic()
    with pytest.raises(CheckBudgetExceededError), time_budget(0.05, interruptible=HERE):
        spin(30)

    assert time.monotonic() - started < 30


def test_code_outside_the_checking_modules_is_never_interrupted() -> None:
    finished: list[str] = []

    def work() -> None:
        spin_elsewhere(0.1)
        finished.append("elsewhere")
        spin(30)

    with pytest.raises(CheckBudgetExceededError), time_budget(0.01, interruptible=HERE):
        work()

    assert finished == ["elsewhere"]


def test_work_within_its_budget_runs_to_its_end() -> None:
    with time_budget(5, interruptible=HERE):
        spin(0.01)


def test_an_alarm_after_the_work_ended_is_ignored() -> None:
    with time_budget(5, interruptible=HERE):
        pass

    signal.raise_signal(signal.SIGALRM)


def test_work_in_another_thread_is_not_interrupted() -> None:
    outcome: list[str] = []

    def work() -> None:
        with time_budget(0.001, interruptible=HERE):
            spin(0.05)
        outcome.append("finished")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()

    assert outcome == ["finished"]


def test_an_interruption_swallowed_by_the_work_comes_again() -> None:
    swallowed: list[str] = []

    def careless_work() -> None:
        try:
            spin(30)
        except BaseException:  # what no checking code should do, but might
            swallowed.append("once")
        spin(30)

    with pytest.raises(CheckBudgetExceededError), time_budget(0.05, interruptible=HERE):
        careless_work()

    assert swallowed == ["once"]


def test_code_that_catches_exception_cannot_swallow_it() -> None:
    def catches_everything_it_should() -> None:
        try:
            spin(30)
        except Exception:  # graphql-core's literal coercion does this
            pytest.fail("the interruption was taken for an ordinary error")

    with pytest.raises(CheckBudgetExceededError), time_budget(0.05, interruptible=HERE):
        catches_everything_it_should()
