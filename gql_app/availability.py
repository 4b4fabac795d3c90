"""Whether the database and Redis answer, logged once when one stops and once when it is back.

During an outage every request fails the same way; a traceback for each would bury the log
(and the one line that matters) under thousands of copies. The first failure is logged with
what went wrong, the rest are counted, and the outage ends with the first success once
failures have stopped for a few seconds: a dependency that flaps (a saturated pool that times
out one request and serves the next) makes one outage, not a line pair per flap.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)

# What SERVICE_UNAVAILABLE answers tell clients to wait during an outage: long enough that
# failures which come back fast do not turn into more requests.
OUTAGE_RETRY_AFTER_SECONDS = 5


class Dependency(StrEnum):
    DATABASE = "database"
    REDIS = "redis"


# Quiet this long after its last failure, a dependency that answers is back.
SETTLE_SECONDS = 5.0


@dataclass
class _Outage:
    started: float
    last_failure: float
    failures: int = 1


def describe(error: BaseException) -> str:
    """The error's type and the first line of its message (drivers add statements below)."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


class Availability:
    """One process's view of its dependencies, fed by what its requests meet."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._outages: dict[Dependency, _Outage] = {}
        self._clock = clock

    def is_down(self, dependency: Dependency) -> bool:
        return dependency in self._outages

    def failed(self, dependency: Dependency, error: BaseException) -> None:
        now = self._clock()
        outage = self._outages.get(dependency)
        if outage is not None:
            outage.failures += 1
            outage.last_failure = now
            return
        self._outages[dependency] = _Outage(started=now, last_failure=now)
        logger.error(
            "%s unavailable (%s); requests that need it answer SERVICE_UNAVAILABLE",
            dependency,
            describe(error),
            extra={"dependency": str(dependency), "availability": "down"},
        )

    def answered(self, dependency: Dependency) -> None:
        outage = self._outages.get(dependency)
        now = self._clock()
        if outage is None or now - outage.last_failure < SETTLE_SECONDS:
            return
        del self._outages[dependency]
        seconds = outage.last_failure - outage.started
        logger.warning(
            "%s available again after %.1f s of failures (%d failed attempts)",
            dependency,
            seconds,
            outage.failures,
            extra={
                "dependency": str(dependency),
                "availability": "up",
                "outage_seconds": round(seconds, 1),
                "failures": outage.failures,
            },
        )
