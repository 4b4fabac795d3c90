"""Whether the database and Redis answer, logged once when one stops and once when it is back.

During an outage every request fails the same way; a traceback for each would bury the log
(and the one line that matters) under thousands of copies. The first failure is logged with
what went wrong, the rest are counted, and the first success after them ends the outage.
"""

import logging
import time
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)

# What SERVICE_UNAVAILABLE answers tell clients to wait during an outage: long enough that
# failures which come back fast do not turn into more requests.
OUTAGE_RETRY_AFTER_SECONDS = 5


class Dependency(StrEnum):
    DATABASE = "database"
    REDIS = "redis"


@dataclass
class _Outage:
    started: float
    failures: int = 1


def describe(error: BaseException) -> str:
    """The error's type and the first line of its message (drivers add statements below)."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


class Availability:
    """One process's view of its dependencies, fed by what its requests meet."""

    def __init__(self) -> None:
        self._outages: dict[Dependency, _Outage] = {}

    def is_down(self, dependency: Dependency) -> bool:
        return dependency in self._outages

    def failed(self, dependency: Dependency, error: BaseException) -> None:
        outage = self._outages.get(dependency)
        if outage is not None:
            outage.failures += 1
            return
        self._outages[dependency] = _Outage(started=time.monotonic())
        logger.error(
            "%s unavailable (%s); requests that need it answer SERVICE_UNAVAILABLE",
            dependency,
            describe(error),
            extra={"dependency": str(dependency), "availability": "down"},
        )

    def answered(self, dependency: Dependency) -> None:
        outage = self._outages.pop(dependency, None)
        if outage is None:
            return
        seconds = time.monotonic() - outage.started
        logger.warning(
            "%s available again after %.1f s (%d failed attempts)",
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
