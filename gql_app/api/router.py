"""The GraphQL endpoint as HTTP clients meet it: media types, status codes, persisted queries.

Clients that ask for ``application/graphql-response+json`` get the GraphQL-over-HTTP
status codes: a request that never reached execution (a document that does not parse or
validate, an unknown operation, variables that do not fit) answers 4xx without ``data``;
anything that executed answers 200. Plain ``application/json`` clients keep the classic
behaviour: 200 with ``errors``.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

from cross_web import HTTPException
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.types import HTTPMethod
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.unset import UNSET

from gql_app.api import graphiql
from gql_app.api.context import Context
from gql_app.api.error_codes import ErrorCode, ErrorReason
from gql_app.api.media_types import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    negotiate_response_type,
)
from gql_app.api.persisted_queries import PersistedQueryError, PersistedQueryStore
from gql_app.api.request_errors import request_error
from gql_app.availability import OUTAGE_RETRY_AFTER_SECONDS

# The media type chosen for the request being handled; set and read in the same task.
_response_type: ContextVar[str] = ContextVar("graphql_response_type", default=JSON)

# Where in the ASGI scope a request's deadline is kept (the event loop's clock), once set.
REQUEST_DEADLINE = "gql_app.request_deadline"

T = TypeVar("T")

# Errors raised before execution, by how a GraphQL-over-HTTP client should see them.
_REQUEST_ERROR_STATUS: dict[str, int] = {
    ErrorCode.GRAPHQL_PARSE_FAILED: 400,
    ErrorCode.GRAPHQL_VALIDATION_FAILED: 422,
    ErrorCode.BAD_USER_INPUT: 422,
}


class GraphQLEndpoint(GraphQLRouter[Context, None]):
    def __init__(
        self,
        schema: Any,
        *,
        persisted_queries: PersistedQueryStore,
        request_timeout_seconds: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(schema, **kwargs)
        self._persisted_queries = persisted_queries
        self._request_timeout = request_timeout_seconds
        # Without this, the router's first route for the path answers other methods with
        # its own Allow (GET only), as if POST were not served either.
        self.add_api_route(
            "",
            _method_not_allowed,
            methods=["HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"],
            include_in_schema=False,
        )

    @property
    def graphql_ide_html(self) -> str:
        return graphiql.page_html()

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        # The page loads only what the app serves; the policy holds it to that.
        return HTMLResponse(
            self.graphql_ide_html,
            headers={"content-security-policy": graphiql.CONTENT_SECURITY_POLICY},
        )

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET carrying only a persisted query's hash is an operation, not a visit.
        return bool(super().should_render_graphql_ide(request)) and (
            "extensions" not in request.query_params
        )

    async def run(  # type: ignore[override]
        self, request: Request, context: Context = UNSET, root_value: None = UNSET
    ) -> Response:
        response_type = negotiate_response_type(request.headers.get("accept"))
        if response_type is None and not self._wants_ide(request):
            return _plain_error(
                406, f"Acceptable media types: {GRAPHQL_RESPONSE_JSON}, {JSON}", JSON
            )
        token = _response_type.set(response_type or JSON)
        try:
            return await self._run_mapping_errors(request, context, root_value)
        finally:
            _response_type.reset(token)

    @property
    def persisted_queries(self) -> PersistedQueryStore:
        return self._persisted_queries

    def deadline_from_now(self) -> float:
        """When a request arriving now must be answered, on the event loop's clock."""
        return asyncio.get_running_loop().time() + self._request_timeout

    async def within_deadline(
        self,
        work: Callable[[], Awaitable[T]],
        response_type: str,
        *,
        deadline: float,
        sub_response: Response | None = None,
    ) -> T | Response:
        """What the work gives, or the timeout's answer when the deadline passes first.

        ``sub_response``: the operation's own headers. Its cookies go with the timeout's
        answer too: each was set after what it stands for had committed (a rotated refresh
        token; a browser keeping the retired one would later look like a thief).
        """
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                return await work()
        except TimeoutError:
            if not timeout.expired():
                raise
            # What it changed was rolled back with its session, unless it had committed.
            answer = _timed_out(self._request_timeout, response_type)
            if sub_response is not None:
                answer.headers.raw.extend(
                    (name, value)
                    for name, value in sub_response.headers.raw
                    if name == b"set-cookie"
                )
            return answer

    def answer(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
        *,
        response_type: str,
    ) -> Response:
        """The HTTP answer to an operation that ran, as run() gives it."""
        headers: dict[str, str] = {}
        status = sub_response.status_code or 200
        if response_type == GRAPHQL_RESPONSE_JSON and isinstance(response_data, dict):
            request_error_status = _request_error_status(response_data)
            if request_error_status is not None:
                # The operation never ran, so there is no data entry at all.
                response_data = response_data.copy()
                response_data.pop("data", None)
                status = request_error_status
            retry_after = _unavailable_retry_after(response_data)
            if retry_after is not None:
                status = 503
                headers["retry-after"] = str(retry_after)
        response = Response(
            self.encode_json(response_data),
            media_type=response_type,
            status_code=status,
            headers=headers,
        )
        response.headers.raw.extend(sub_response.headers.raw)
        return response

    def _wants_ide(self, request: Request) -> bool:
        return request.method == "GET" and "text/html" in request.headers.get("accept", "")

    async def _run_mapping_errors(
        self, request: Request, context: Context, root_value: None
    ) -> Response:
        response_type = _response_type.get()
        # Reading the body, checking the document and running it, within the request's one
        # deadline (the lean lane's, when the request came through it).
        deadline = request.scope.get(REQUEST_DEADLINE) or self.deadline_from_now()
        try:
            return await self.within_deadline(
                partial(super().run, request, context=context, root_value=root_value),
                response_type,
                deadline=deadline,
                sub_response=context.response,
            )
        except PersistedQueryError as error:
            return persisted_query_refusal(error, response_type)
        except _OperationRefusedError as error:
            return _refusal(error, response_type)
        except HTTPException as error:
            return _plain_error(error.status_code, error.reason, response_type)

    async def execute_single(  # type: ignore[override]
        self, request: Request, request_adapter: Any, **kwargs: Any
    ) -> Any:
        try:
            return await super().execute_single(
                request=request, request_adapter=request_adapter, **kwargs
            )
        except HTTPException as error:
            cause = error.__cause__
            if isinstance(cause, InvalidOperationTypeError):
                # A mutation over GET (or any query where GET is off): POST would do.
                raise _OperationRefusedError(405, error.reason, allow=("POST",)) from cause
            if isinstance(cause, CannotGetOperationTypeError):
                # The document is fine but holds no such operation: unprocessable for
                # GraphQL-over-HTTP clients, the classic 400 for the others.
                raise _OperationRefusedError(
                    400,
                    error.reason,
                    graphql_response_status=422,
                    code=ErrorCode.GRAPHQL_VALIDATION_FAILED,
                    reason=ErrorReason.UNKNOWN_OPERATION,
                ) from cause
            raise

    def decode_json(self, data: str | bytes) -> object:
        try:
            return json.loads(data, parse_constant=_refuse_constant)
        except json.JSONDecodeError as error:
            raise HTTPException(400, "The body is not valid JSON") from error
        except (ValueError, RecursionError) as error:
            # Not UTF-8, an integer of more digits than Python converts, NaN or Infinity
            # (not JSON at all), or nested past what the decoder can follow.
            raise HTTPException(
                400, f"The body is not acceptable JSON: {_first_line(error)}"
            ) from error

    async def parse_http_body(self, request: Any) -> GraphQLRequestData:
        try:
            data = await super().parse_http_body(request)
        except (AttributeError, RecursionError) as error:
            # JSON that is not an object (Strawberry reads it as one), or nested past
            # what the decoder can follow.
            raise HTTPException(
                400, "The body must be a JSON object with a query, variables and extensions"
            ) from error
        # Strawberry refuses batches (batching is off), so this is a single request.
        assert isinstance(data, GraphQLRequestData)
        if not isinstance(data.operation_name, str | None):
            raise HTTPException(400, "The GraphQL operation's `operationName` must be a string")
        return await self._persisted_queries.resolve(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        return self.answer(response_data, sub_response, response_type=_response_type.get())


def persisted_query_refusal(error: PersistedQueryError, response_type: str) -> Response:
    status = error.status if response_type == GRAPHQL_RESPONSE_JSON else 200
    return JSONResponse(
        request_error(error.status, error.message, code=error.code),
        status_code=status,
        media_type=response_type,
    )


def _refuse_constant(constant: str) -> object:
    raise ValueError(f"{constant} is not a JSON value")


def _first_line(error: BaseException) -> str:
    # Python's messages here name the limit and the position, never the body's content.
    return str(error).splitlines()[0][:200]


async def _method_not_allowed(request: Request) -> Response:
    response_type = negotiate_response_type(request.headers.get("accept")) or JSON
    message = "GraphQL is served over GET (queries) and POST"
    return _plain_error(405, message, response_type, {"allow": "GET, POST"})


class _OperationRefusedError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        allow: tuple[HTTPMethod, ...] = (),
        graphql_response_status: int | None = None,
        code: ErrorCode | None = None,
        reason: ErrorReason | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.allow = allow
        self.graphql_response_status = graphql_response_status or status
        self.code = code
        self.reason = reason


def _refusal(error: _OperationRefusedError, response_type: str) -> Response:
    headers = {"allow": ", ".join(error.allow)} if error.allow else {}
    status = (
        error.graphql_response_status if response_type == GRAPHQL_RESPONSE_JSON else error.status
    )
    return _plain_error(
        status, error.message, response_type, headers, code=error.code, reason=error.reason
    )


def _plain_error(
    status: int,
    message: str,
    response_type: str,
    headers: dict[str, str] | None = None,
    *,
    code: ErrorCode | None = None,
    reason: ErrorReason | None = None,
) -> Response:
    return JSONResponse(
        request_error(status, message, code=code, reason=reason),
        status_code=status,
        media_type=response_type,
        headers=headers,
    )


def _timed_out(seconds: float, response_type: str) -> Response:
    body = request_error(
        503,
        f"The request did not complete within {seconds:g} s; try again shortly",
        reason=ErrorReason.DEADLINE_EXCEEDED,
        retry_after=OUTAGE_RETRY_AFTER_SECONDS,
    )
    if response_type == GRAPHQL_RESPONSE_JSON:
        return JSONResponse(
            body,
            status_code=503,
            media_type=response_type,
            headers={"retry-after": str(OUTAGE_RETRY_AFTER_SECONDS)},
        )
    # Classic clients expect 200 and a data entry with their errors.
    return JSONResponse({"data": None, **body}, media_type=response_type)


def _unavailable_retry_after(response: GraphQLHTTPResponse) -> int | None:
    """When every error says the service is unavailable: how long to wait, else None."""
    errors = response.get("errors") or []
    waits = []
    for error in errors:
        extensions = (error.get("extensions") or {}) if isinstance(error, dict) else {}
        if extensions.get("code") != ErrorCode.SERVICE_UNAVAILABLE:
            return None
        waits.append(int(extensions.get("retryAfter", 1)))
    return max(waits, default=None)


def _request_error_status(response: GraphQLHTTPResponse) -> int | None:
    """The 4xx for errors raised before execution, or None when the operation ran."""
    if response.get("data") is not None:
        return None
    statuses: list[int] = []
    for error in response.get("errors") or []:
        if not isinstance(error, dict) or "path" in error:
            return None
        status = _REQUEST_ERROR_STATUS.get(str((error.get("extensions") or {}).get("code")))
        if status is None:
            return None
        statuses.append(status)
    return max(statuses, default=None)
