"""One log line per request: its id, what it asked, how it ended and how long it took.

The id is echoed in the ``X-Request-ID`` header and in masked errors, so a client's report
leads to the line. Variables, headers and bodies are never logged: they carry passwords
and tokens.
"""

import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from gql_app.logging_config import current_request_id

logger = logging.getLogger("gql_app.requests")

REQUEST_ID_HEADER = "x-request-id"
# A proxy's id is kept (it ties our line to the proxy's) only when it cannot forge lines.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# What the GraphQL layer learnt about the request being handled in this task.
_operation: ContextVar[dict[str, Any] | None] = ContextVar("graphql_operation", default=None)


def request_id_from(headers: Headers) -> str:
    given = headers.get(REQUEST_ID_HEADER, "")
    return given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class RequestLog:
    """Gives each HTTP request an id and logs it once it has been answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope))
        id_token = current_request_id.set(request_id)
        operation_token = _operation.set({})
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            operation = _operation.get() or {}
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            # Paths only: a query string could carry a GET operation's variables.
            logger.info(
                "%s %s %s %s %s %.2fms",
                scope["method"],
                scope["path"],
                status,
                operation.get("name") or "-",
                operation.get("outcome") or "-",
                duration_ms,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": duration_ms,
                    "operation": operation.get("name"),
                    "operation_type": operation.get("type"),
                    "outcome": operation.get("outcome"),
                },
            )
            _operation.reset(operation_token)
            current_request_id.reset(id_token)


class OperationOutcome(SchemaExtension):
    """Notes the operation's name and outcome code for the request's log line.

    Runs outermost, so it sees the errors after ErrorMapping has given them codes.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        noted = _operation.get()
        if noted is None:
            return
        context = self.execution_context
        noted["name"] = context.operation_name
        try:
            noted["type"] = context.operation_type.value
        except RuntimeError:
            noted["type"] = None
        errors = getattr(context.result, "errors", None) or []
        codes = sorted({(error.extensions or {}).get("code", "UNKNOWN") for error in errors})
        noted["outcome"] = ",".join(codes) if codes else "OK"
