"""A worker whose event loop stops turning exits, so its supervisor starts a fresh one.

Everything the application does is bounded (documents, statements, commands, requests), but
a bug or a library can still hold the event loop: then the worker answers nobody, not even
SIGTERM, while its supervisor sees a live process. The loop beats several times within the
limit; a thread watches the beats, and when none came for ``stall_seconds`` it logs where the
loop is stuck and ends the process. uvicorn's supervisor (``gql-app serve`` always runs one)
replaces it.

A thread of Python cannot run while the loop holds the interpreter in one long C call; for
that, faulthandler's own timer (which needs no interpreter) dumps every thread's stack and ends
the process a little later, unless a beat has re-armed it first.
"""

import asyncio
import faulthandler
import logging
import os
import sys
import threading
import time
import traceback

logger = logging.getLogger(__name__)

# Beats come four times within the limit, at most twice a second.
MAX_BEAT_SECONDS = 0.5
# EX_SOFTWARE: not uvicorn's "failed to start" status, which would stop the supervisor.
STUCK_EXIT_STATUS = 70


class Watchdog:
    def __init__(self, *, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self._beat_seconds = min(MAX_BEAT_SECONDS, stall_seconds / 4)
        self._last_beat = time.monotonic()
        self._stopped = threading.Event()
        self._beat_handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start beating on the running loop, and watching from a thread of its own."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._beat()
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._beat_handle is not None:
            self._beat_handle.cancel()
            faulthandler.cancel_dump_traceback_later()
        if self._thread is not None:
            self._thread.join()

    @property
    def backstop_seconds(self) -> float:
        """When faulthandler ends a process the watching thread could not (twice the limit)."""
        return 2 * self.stall_seconds + 1

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        faulthandler.dump_traceback_later(self.backstop_seconds, exit=True)
        self._beat_handle = self._loop.call_later(self._beat_seconds, self._beat)

    def _watch(self) -> None:
        while not self._stopped.wait(self._beat_seconds):
            stalled = time.monotonic() - self._last_beat
            if stalled > self.stall_seconds:
                self._stuck(stalled)
                return

    def _stuck(self, stalled: float) -> None:
        frame = sys._current_frames().get(self._loop_thread)
        where = "".join(traceback.format_stack(frame)) if frame is not None else "unknown"
        # Code lines only, never variables: nothing a request carried is written out.
        logger.critical(
            "Event loop stuck for %.1f s; exiting so that a new worker takes over. Stuck at:\n%s",
            stalled,
            where,
        )
        for handler in logging.getLogger("gql_app").handlers:
            handler.flush()
        exit_process(STUCK_EXIT_STATUS)


def exit_process(status: int) -> None:
    # At once: the stuck loop would never run an orderly shutdown.
    os._exit(status)
