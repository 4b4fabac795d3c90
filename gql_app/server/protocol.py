"""uvicorn's HTTP/1.1 protocol (httptools) with the limits it lacks, for `gql-app serve`.

uvicorn reads headers of any size and count, waits for them as long as a client cares to
drip them, and keeps a connection that never sends a request open forever. Here, per worker:

- the request line and headers together are limited in bytes and the headers in number:
  beyond, 431, before any of it reaches the application, and without buffering much more;
- a request's headers must be complete within a few seconds of its first byte (of the
  connection, for the first request): otherwise 408, and the connection closes;
- idle keep-alive connections close after uvicorn's keep-alive timeout, as before;
- connections beyond the cap are answered 503 at once and closed.

The limits come from the settings (SERVER_* in the README), read once per process.
"""

import asyncio
import logging
import time
from collections import Counter
from functools import cache
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gql_app.api.error_codes import ErrorReason
from gql_app.api.request_errors import request_error_bytes
from gql_app.config import get_settings

logger = logging.getLogger(__name__)

# What the request line and each header add besides their text: ": " and CRLFs.
_HEADER_OVERHEAD = 4


class RefusalLog:
    """Refusals, logged as they begin and then as a count a minute, not a line each: a flood
    of slow or oversized requests must not become a flood of log lines."""

    INTERVAL_SECONDS = 60.0

    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()
        self._since: float | None = None

    def note(self, status: int, message: str) -> None:
        now = time.monotonic()
        if self._since is None:
            self._since = now
            logger.warning("Refused a request (%d): %s", status, message, extra={"status": status})
            return
        self._counts[status] += 1
        if now - self._since >= self.INTERVAL_SECONDS:
            summary = ", ".join(f"{count} x {code}" for code, count in sorted(self._counts.items()))
            logger.warning(
                "Refused %d more requests in %.0f s (%s)",
                self._counts.total(),
                now - self._since,
                summary,
            )
            self._counts.clear()
            self._since = now


refusals = RefusalLog()


class _HeadersRefusedError(Exception):
    """Raised from a parser callback to stop parsing a request that is refused."""


@cache
def _limits() -> tuple[int, int, float, int]:
    settings = get_settings()
    return (
        settings.server_max_header_bytes,
        settings.server_max_headers,
        settings.server_header_timeout_seconds,
        settings.server_max_connections,
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        (
            self.max_header_bytes,
            self.max_headers,
            self.header_timeout,
            self.max_connections,
        ) = _limits()
        self._header_timer: asyncio.TimerHandle | None = None
        self._reading_headers = False
        self._header_bytes = 0
        self._header_count = 0
        self._received_in_headers = 0
        self._refusal: tuple[int, str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(
                503,
                "Too many connections; try again shortly",
                retry_after=1,
                reason=ErrorReason.TOO_MANY_CONNECTIONS,
            )
            return
        # A connection that never sends a request is closed as one that stops sending.
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        # Bytes of a chunk that began inside a request's headers are headers (or what follows
        # them); a chunk that begins a request may still end the one before.
        within_headers = self._reading_headers
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
            return
        if self._reading_headers and within_headers:
            # Headers still incomplete: the parser holds what came so far, so bound it
            # here too, or one endless header would be buffered whole.
            self._received_in_headers += len(data)
            if self._received_in_headers > self.max_header_bytes:
                self._refuse(431, f"Request headers exceed {self.max_header_bytes} bytes")
        elif self._idle() and self._header_timer is None and self.timeout_keep_alive_task is None:
            # Bytes that began no request (a stray CRLF) stopped the keep-alive clock; the
            # connection must not stay open for them.
            self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._header_bytes = self._header_count = self._received_in_headers = 0
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refusal = (431, f"More than {self.max_headers} request headers")
            raise _HeadersRefusedError
        self._count_header_bytes(len(name) + len(value) + _HEADER_OVERHEAD)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._disarm_header_timer()
        super().on_headers_complete()

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._refusal = (431, f"Request headers exceed {self.max_header_bytes} bytes")
            raise _HeadersRefusedError

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _idle(self) -> bool:
        """No request is being read or answered on this connection."""
        return not self._reading_headers and (self.cycle is None or self.cycle.response_complete)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._reading_headers or self.cycle is None:
            self._refuse(408, f"Request headers not received within {self.header_timeout:g} s")
        elif self._idle():
            self.transport.close()  # kept alive, then sent nothing that makes a request

    def _refuse(
        self,
        status: int,
        message: str,
        *,
        retry_after: int | None = None,
        reason: ErrorReason | None = None,
    ) -> None:
        """Answer with the status and a typed body, then close: nothing reaches the app."""
        self._disarm_header_timer()
        if self.transport.is_closing():
            return
        refusals.note(status, message)
        if self.cycle is not None and not self.cycle.response_complete:
            # A request before this one (pipelined) is still being answered: no answer may
            # cut into it. Read no more, and close once it is sent.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        body = request_error_bytes(status, message, reason=reason, retry_after=retry_after)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n",
            ]
        )
        if retry_after is not None:
            content.append(b"retry-after: " + str(retry_after).encode() + b"\r\n")
        content.extend([b"\r\n", body])
        self.transport.write(b"".join(content))
        self.transport.close()
