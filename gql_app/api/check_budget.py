"""A wall-clock bound on synchronous work in the main thread: checking a document.

Validation is synchronous, and while it runs the event loop serves nobody. The document
limits keep its cost small; this bound holds whatever rule turns out to be slow. A timer
signal interrupts the work once it runs past its budget, and the caller answers with a
typed refusal.

Signals reach only the main thread, where the server's event loop runs; work done in any
other thread runs unbounded (the document limits still bound it). The handler is installed
once and takes SIGALRM for the process: nothing else in the application uses that timer.

Python runs a signal handler in whatever Python code the main thread is executing, which may
be a garbage collector's or a weak reference's callback, where an exception is printed and
dropped. So the handler only raises inside the checking code itself; anywhere else it tries
again a moment later.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# Modules whose code runs only inside a check, where raising unwinds the check.
CHECKING_MODULES = ("graphql.", "strawberry.", "gql_app.api.document")
_RETRY_SECONDS = 0.001


class CheckBudgetExceededError(BaseException):
    """The work ran past its budget and was stopped where it stood.

    A BaseException, as KeyboardInterrupt is: code under the budget (graphql-core's literal
    coercion, for one) catches Exception and would turn it into a wrong answer.
    """


class _Alarm:
    armed = False
    interruptible: tuple[str, ...] = ()


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    # A signal that arrives after the work ended (already pending, or from elsewhere) is
    # ignored. An armed one stays armed until the block ends, and fires again soon: should
    # anything swallow the interruption, the next one stops the work all the same.
    if not _Alarm.armed:
        return
    signal.setitimer(signal.ITIMER_REAL, _RETRY_SECONDS)
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    if module.startswith(_Alarm.interruptible):
        raise CheckBudgetExceededError


@contextmanager
def time_budget(
    seconds: float, *, interruptible: tuple[str, ...] = CHECKING_MODULES
) -> Iterator[None]:
    """Raise CheckBudgetExceededError inside the block once ``seconds`` have passed.

    It is raised in code of the ``interruptible`` modules (names or prefixes) only.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGALRM) is not _on_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
    _Alarm.interruptible = interruptible
    _Alarm.armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _Alarm.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
