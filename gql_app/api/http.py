"""HTTP-level defences around the GraphQL endpoint: body size, media type, headers."""

import logging
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql_app.api.media_types import GRAPHQL_RESPONSE_JSON, JSON
from gql_app.api.request_errors import request_error_bytes

logger = logging.getLogger(__name__)

GRAPHQL_PATH = "/graphql"
JSON_MEDIA_TYPES = {JSON, GRAPHQL_RESPONSE_JSON}

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
# JSON answers never need to load anything; the GraphiQL page (HTML) does, so it is spared.
JSON_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=63072000; includeSubDomains"


class _BodyTooLargeError(Exception):
    pass


async def _plain_error(
    send: Send, status: int, detail: str, headers: Iterable[tuple[str, str]] = ()
) -> None:
    body = request_error_bytes(status, detail)
    raw_headers = [
        (b"content-type", JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.encode(), value.encode()) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """Refuses oversized bodies (413) and non-JSON GraphQL posts (415); shrugs off disconnects."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _plain_error(send, 413, f"Request body exceeds {self.max_body_bytes} bytes")
            return
        if scope["method"] == "POST" and scope["path"].rstrip("/") == GRAPHQL_PATH:
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != JSON:
                # Forms and text/plain are what a cross-site page can post without CORS.
                await _plain_error(send, 415, "GraphQL requests must be application/json")
                return

        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLargeError:
            if not response_started:
                await _plain_error(send, 413, f"Request body exceeds {self.max_body_bytes} bytes")
        except ClientDisconnect:
            # Nobody is left to answer; this is not a server error.
            logger.debug("Client disconnected before the request was read")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                media_type = headers.get("content-type", "").split(";")[0].strip()
                if media_type in JSON_MEDIA_TYPES:
                    headers.setdefault("content-security-policy", JSON_CONTENT_SECURITY_POLICY)
                    # Answers may carry tokens: no cache keeps them.
                    headers.setdefault("cache-control", "no-store")
                if self.hsts:
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
