"""Errors about the HTTP request itself, answered before any GraphQL work: each with a code.

Malformed bodies, methods, media types and sizes are refused with their HTTP status and, in
the body, the same ``errors`` shape as every other answer, so a client branches on
``extensions.code`` here too.
"""

import json
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gql_app.api.error_codes import ErrorCode, ErrorReason

CODE_FOR_STATUS: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    408: ErrorCode.REQUEST_TIMEOUT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    431: ErrorCode.REQUEST_HEADER_FIELDS_TOO_LARGE,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


def request_error(
    status: int,
    message: str,
    *,
    code: ErrorCode | None = None,
    reason: ErrorReason | None = None,
    retry_after: int | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """The answer's body: one error whose code is ``code``, or the status's.

    Its reason is ``reason`` when one is finer, else the code.
    """
    error_code = code or CODE_FOR_STATUS.get(status, ErrorCode.BAD_REQUEST)
    coded = {"code": error_code, "reason": reason or ErrorReason(error_code), **extensions}
    if retry_after is not None:
        coded["retryAfter"] = retry_after
    return {"errors": [{"message": message, "extensions": coded}]}


def request_error_bytes(
    status: int,
    message: str,
    *,
    code: ErrorCode | None = None,
    reason: ErrorReason | None = None,
    retry_after: int | None = None,
) -> bytes:
    body = request_error(status, message, code=code, reason=reason, retry_after=retry_after)
    return json.dumps(body).encode()


async def http_exception_answer(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such route, a method a route does not take), coded."""
    assert isinstance(error, StarletteHTTPException)
    body = request_error(error.status_code, str(error.detail))
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)
