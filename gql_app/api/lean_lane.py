"""The lean lane: the common GraphQL request, answered without the general pipeline.

Most requests are a POST of a JSON object carrying one of the few documents a client sends
over and over. The general path pays for everything a request might need: FastAPI's
routing and dependency solving, Strawberry's view, its schema extensions' hooks (a
generator each, for each stage) and its execution context, about half a millisecond a
request before the first field runs.

This middleware answers such a request itself, with the same parts: the document cache
(its limits included), the persisted-query store, the request's context as the router
builds it, the planned executor, the error mapping, the log line's outcome, the router's
deadline and its response building (status codes, media types, Retry-After). It answers
the request's refusals that those parts decide (a document that does not validate, a
persisted query the store cannot give) as the router does, so nothing is checked twice.
Anything else goes on to the general path unchanged, with its body replayed and within the
same deadline: another method or path, an Accept header or a content type the router
treats otherwise, a body that is not a JSON object of the expected shape, a document that
does not parse, or one that names no single query or mutation. ``tests/api/test_lean_lane.py``
compares both paths' answers, byte for byte.

The lane copies the pipeline of one schema: the planned executor, no middleware, no
incremental delivery. ``serves`` says whether a schema is that one; the app adds the lane
only then.
"""

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import strawberry
from fastapi import Request, Response
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType
from graphql import execute as graphql_execute
from graphql.execution import ExecutionResult, MiddlewareManager
from graphql.utilities import get_operation_ast
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTasks
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.types import ExecutionResult as AnsweredResult

from gql_app.api.context import context_for
from gql_app.api.documents import DocumentCache
from gql_app.api.errors import Stage, map_errors
from gql_app.api.http import GRAPHQL_PATH
from gql_app.api.media_types import JSON, negotiate_response_type
from gql_app.api.persisted_queries import PersistedQueryError
from gql_app.api.planned_execution import PlannedExecutionContext
from gql_app.api.request_log import note_operation
from gql_app.api.router import REQUEST_DEADLINE, GraphQLEndpoint, persisted_query_refusal
from gql_app.db import SessionFactory, open_session

# What a POST may run (subscriptions are served elsewhere, or refused there).
_LANE_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
_REQUEST_KEYS = frozenset({"query", "variables", "operationName", "extensions"})


@dataclass(frozen=True, slots=True)
class _Checked:
    """A request the lane answers: its document, its operation and what validation said."""

    document: DocumentNode
    operation: OperationDefinitionNode
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    # What validation found (the document limits included); the lane answers these too.
    errors: tuple[GraphQLError, ...]


class LeanLane:
    """Answers checked POST requests to the GraphQL endpoint; passes on everything else."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        endpoint: GraphQLEndpoint,
        documents: DocumentCache,
        hide_suggestions: bool,
    ) -> None:
        self.app = app
        self._endpoint = endpoint
        self._documents = documents
        self._schema = endpoint.schema._schema  # type: ignore[attr-defined]
        self._hide_suggestions = hide_suggestions

    @staticmethod
    def serves(schema: strawberry.Schema) -> bool:
        """Whether the lane runs the schema as Strawberry would: the planned executor, no
        middleware (a resolve hook or a directive), no incremental delivery."""
        return (
            schema.execution_context_class is PlannedExecutionContext
            and not schema.config.enable_experimental_incremental_execution
            and all(
                type(extension).resolve is SchemaExtension.resolve
                for extension in schema.get_extensions()
            )
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != GRAPHQL_PATH:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        response_type = negotiate_response_type(headers.get("accept"))
        if response_type is None or not _router_reads_json(headers.get("content-type", "")):
            await self.app(scope, receive, send)
            return
        # One deadline for the whole request, reading its body included, whichever path
        # answers it.
        deadline = self._endpoint.deadline_from_now()
        scope[REQUEST_DEADLINE] = deadline
        read = await self._endpoint.within_deadline(
            partial(self._read_and_check, receive, response_type), response_type, deadline=deadline
        )
        if isinstance(read, Response):
            await read(scope, receive, send)
            return
        body, checked = read
        replay = _replaying(body, receive)
        if isinstance(checked, Response):
            await checked(scope, replay, send)
            return
        if checked is None:
            await self.app(scope, replay, send)
            return
        if checked.errors:
            # Refused before it ran: nothing to open, nothing to schedule.
            refused = self._answered(
                checked, data=None, errors=checked.errors, stage=Stage.VALIDATE
            )
            refusal = self._endpoint.answer(
                refused, _no_sub_response(), response_type=response_type
            )
            await refusal(scope, replay, send)
            return
        request = Request(scope, replay)
        session_factory: SessionFactory = request.app.state.session_factory
        # Jobs go with whatever answer is sent, the deadline's too, as a route's do.
        tasks = BackgroundTasks()
        # Open until the answer is sent and its jobs have run, as the router's dependency is.
        sub_response = _no_sub_response()
        async with open_session(session_factory) as session:
            response = await self._endpoint.within_deadline(
                partial(
                    self._answer,
                    request,
                    checked,
                    session=session,
                    tasks=tasks,
                    sub_response=sub_response,
                    response_type=response_type,
                ),
                response_type,
                deadline=deadline,
                sub_response=sub_response,
            )
            response.background = tasks
            await response(scope, replay, send)

    async def _read_and_check(
        self, receive: Receive, response_type: str
    ) -> tuple[bytes, _Checked | Response | None]:
        body = await _read_body(receive)
        return body, await self._checked(body, response_type)

    async def _checked(self, body: bytes, response_type: str) -> _Checked | Response | None:
        """The request to run; or the router's refusal of it; or None: the router decides."""
        data = self._request_data(body)
        if data is None:
            return None
        if data.extensions:
            try:
                data = await self._endpoint.persisted_queries.resolve(data)
            except PersistedQueryError as error:
                return persisted_query_refusal(error, response_type)
        query = data.query
        if not query:
            return None
        document = self._documents.parse(query)
        if document is None:
            return None
        operation = get_operation_ast(document, data.operation_name)
        if operation is None or operation.operation not in _LANE_OPERATIONS:
            return None
        return _Checked(
            document=document,
            operation=operation,
            variables=data.variables,
            operation_name=data.operation_name,
            extensions=data.extensions,
            errors=tuple(self._documents.validate(self._schema, query)),
        )

    def _request_data(self, body: bytes) -> GraphQLRequestData | None:
        """The body's request, when it is a JSON object of the shape the router accepts."""
        try:
            data = self._endpoint.decode_json(body)
        except Exception:
            return None
        if not isinstance(data, dict) or not data.keys() <= _REQUEST_KEYS:
            return None
        query = data.get("query")
        variables = data.get("variables")
        operation_name = data.get("operationName")
        extensions = data.get("extensions")
        if (
            not isinstance(query, str | None)
            or not isinstance(variables, dict | None)
            or not isinstance(operation_name, str | None)
            or not isinstance(extensions, dict | None)
        ):
            return None
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=operation_name,
            extensions=extensions,
            protocol="http",
        )

    async def _answer(
        self,
        request: Request,
        checked: _Checked,
        *,
        session: AsyncSession,
        tasks: BackgroundTasks,
        sub_response: Response,
        response_type: str,
    ) -> Response:
        context = context_for(
            request, session=session, session_factory=request.app.state.session_factory
        )
        context.request = request
        context.background_tasks = tasks
        context.response = sub_response
        result = await self._execute(checked, context)
        answered = self._answered(
            checked, data=result.data, errors=result.errors or (), stage=Stage.EXECUTE
        )
        return self._endpoint.answer(answered, sub_response, response_type=response_type)

    def _answered(
        self,
        checked: _Checked,
        *,
        data: dict[str, Any] | None,
        errors: Sequence[GraphQLError],
        stage: Stage,
    ) -> GraphQLHTTPResponse:
        """The response's content, its errors mapped, and the log line's note of it."""
        mapped = (
            map_errors(errors, stage=stage, hide_suggestions=self._hide_suggestions)
            if errors
            else []
        )
        operation = checked.operation
        note_operation(
            name=operation.name.value if operation.name else None,
            operation_type=operation.operation.value,
            errors=mapped,
        )
        return process_result(AnsweredResult(data=data, errors=mapped or None))

    async def _execute(self, checked: _Checked, context: Any) -> ExecutionResult:
        result = graphql_execute(
            self._schema,
            checked.document,
            context_value=context,
            variable_values=checked.variables,
            operation_name=checked.operation_name,
            middleware=MiddlewareManager(),
            executor_class=PlannedExecutionContext,
            # Strawberry's predicate, as its own execution passes it.
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
            operation_extensions=checked.extensions,
        )
        if isinstance(result, Awaitable):
            return await result
        return result


def _no_sub_response() -> Response:
    # As FastAPI gives a route its Response parameter: no status, no headers of its own.
    sub_response = Response()
    del sub_response.headers["content-length"]
    sub_response.status_code = None  # type: ignore[assignment]
    return sub_response


def _router_reads_json(content_type: str) -> bool:
    """Whether Strawberry's view reads the body as JSON (its own test, its own parser)."""
    if content_type == JSON:
        return True
    media_type, _ = parse_content_type(content_type)
    return JSON in media_type


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body once more, then what the connection says next."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
