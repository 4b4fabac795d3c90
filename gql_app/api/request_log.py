"""One log line per request: its id, what it asked, how it ended and how long it took.

The id is echoed in the ``X-Request-ID`` header and in masked errors, so a client's report
leads to the line. Variables, headers and bodies are never logged: they carry passwords
and tokens.
"""

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from graphql import GraphQLError
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from gql_app.api.context import Network, is_trusted_proxy
from gql_app.api.errors import INTERNAL_ERROR_MESSAGE
from gql_app.api.http import JSON_CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from gql_app.logging_config import current_request_id

logger = logging.getLogger("gql_app.requests")

REQUEST_ID_HEADER = "x-request-id"
# A trusted proxy's id is kept (it ties our line to the proxy's) if it cannot forge lines.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# What the GraphQL layer learnt about the request being handled in this task.
_operation: ContextVar[dict[str, Any] | None] = ContextVar("graphql_operation", default=None)


def request_id_for(scope: Scope, *, trusted_proxies: Sequence[Network]) -> str:
    """A fresh id, or the one a trusted proxy gave; a client's own would let it pose as
    another request in the logs."""
    client = scope.get("client")
    if client and is_trusted_proxy(client[0], trusted_proxies):
        given = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        if _SAFE_REQUEST_ID.fullmatch(given):
            return given
    return uuid.uuid4().hex


class RequestLog:
    """Gives each HTTP request an id and logs it once it has been answered."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: Sequence[Network]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope, trusted_proxies=self.trusted_proxies)
        id_token = current_request_id.set(request_id)
        operation_token = _operation.set({})
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered here rather than by the server's fallback, so the 500 still has its
            # id, the traceback goes to this log in its format, and no detail leaks.
            logger.exception("Unhandled error (request id %s)", request_id)
            if not response_started:
                await _internal_error(send, request_id)
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
                    "request_id": request_id,
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


async def _internal_error(send: Send, request_id: str) -> None:
    body = json.dumps(
        {
            "errors": [
                {
                    "message": INTERNAL_ERROR_MESSAGE,
                    "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                }
            ]
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER.encode(), request_id.encode()),
        (b"content-security-policy", JSON_CONTENT_SECURITY_POLICY.encode()),
        (b"cache-control", b"no-store"),
        *((name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()),
    ]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class OperationOutcome(SchemaExtension):
    """Notes the operation's name and outcome code for the request's log line.

    Runs outermost, so it sees the errors after ErrorMapping has given them codes.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        try:
            operation_type: str | None = context.operation_type.value
        except RuntimeError:
            operation_type = None
        errors = getattr(context.result, "errors", None) or []
        note_operation(name=context.operation_name, operation_type=operation_type, errors=errors)


def note_operation(
    *, name: str | None, operation_type: str | None, errors: Sequence[GraphQLError]
) -> None:
    """What the request's log line says of its operation: name, type and outcome codes."""
    noted = _operation.get()
    if noted is None:
        return
    noted["name"] = name
    noted["type"] = operation_type
    codes = sorted({(error.extensions or {}).get("code", "UNKNOWN") for error in errors})
    noted["outcome"] = ",".join(codes) if codes else "OK"
