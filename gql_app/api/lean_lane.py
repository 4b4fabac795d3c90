"""The lean lane: the common GraphQL request, answered without the general pipeline.

Most requests are a POST of a JSON object whose document the server has already checked:
the same few documents, sent over and over. The general path still pays for everything
it might need: FastAPI's routing and dependency solving, Strawberry's view, its schema
extensions' hooks (a generator each, for each stage) and its execution context, about
half a millisecond a request before the first field runs.

This middleware answers such a request itself, with the same parts: the request's context
as the router builds it, the planned executor, the error mapping, the log line's outcome,
and the router's own response building (status codes, media types, Retry-After). Anything
else goes on to the general path unchanged, with its body replayed: another method or
path, an Accept header the server cannot answer, a body that is not a JSON object of the
expected shape, a persisted query the store cannot give, a document that does not parse
or validate, or one that names no single query or mutation. So every refusal is the
general path's own. ``tests/api/test_lean_lane.py`` compares both paths' answers, byte
for byte.
"""

from collections.abc import Awaitable
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import Request, Response
from graphql import DocumentNode, OperationDefinitionNode, OperationType
from graphql import execute as graphql_execute
from graphql.execution import ExecutionResult, MiddlewareManager
from graphql.utilities import get_operation_ast
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTasks
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.execution import optimized_is_awaitable
from strawberry.http import GraphQLRequestData, process_result
from strawberry.types import ExecutionResult as AnsweredResult

from gql_app.api.context import context_for
from gql_app.api.documents import DocumentCache
from gql_app.api.errors import map_execution_errors
from gql_app.api.http import GRAPHQL_PATH
from gql_app.api.media_types import negotiate_response_type
from gql_app.api.persisted_queries import PersistedQueryError
from gql_app.api.planned_execution import PlannedExecutionContext
from gql_app.api.request_log import note_operation
from gql_app.api.router import GraphQLEndpoint
from gql_app.db import SessionFactory, open_session

# What a POST may run (subscriptions are served elsewhere, or refused there).
_LANE_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})
_REQUEST_KEYS = frozenset({"query", "variables", "operationName", "extensions"})


@dataclass(frozen=True, slots=True)
class _Checked:
    """A request the lane answers: its document, already validated, and its operation."""

    document: DocumentNode
    operation: OperationDefinitionNode
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != GRAPHQL_PATH:
            await self.app(scope, receive, send)
            return
        response_type = negotiate_response_type(Headers(scope=scope).get("accept"))
        if response_type is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        replay = _replaying(body, receive)
        checked = await self._checked(body)
        if checked is None:
            await self.app(scope, replay, send)
            return
        request = Request(scope, replay)
        session_factory: SessionFactory = request.app.state.session_factory
        # Open until the answer is sent and its jobs have run, as the router's dependency is.
        # Jobs go with whatever answer is sent, the deadline's too, as a route's do.
        tasks = BackgroundTasks()
        async with open_session(session_factory) as session:
            response = await self._endpoint.within_deadline(
                partial(self._answer, request, checked, session, tasks, response_type),
                response_type,
            )
            if response.background is None:
                response.background = tasks
            await response(scope, replay, send)

    async def _checked(self, body: bytes) -> _Checked | None:
        data = self._request_data(body)
        if data is None:
            return None
        if data.extensions:
            try:
                data = await self._endpoint.persisted_queries.resolve(data)
            except PersistedQueryError:
                return None
        query = data.query
        if not query:
            return None
        document = self._documents.parse(query)
        if document is None or self._documents.validate(self._schema, query):
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
        session: AsyncSession,
        tasks: BackgroundTasks,
        response_type: str,
    ) -> Response:
        session_factory: SessionFactory = request.app.state.session_factory
        # As FastAPI gives a route its Response parameter: no status, no headers of its own.
        sub_response = Response()
        del sub_response.headers["content-length"]
        sub_response.status_code = None  # type: ignore[assignment]
        context = context_for(request, session=session, session_factory=session_factory)
        context.request = request
        context.background_tasks = tasks
        context.response = sub_response
        result = await self._execute(checked, context)
        errors = (
            map_execution_errors(result.errors, hide_suggestions=self._hide_suggestions)
            if result.errors
            else []
        )
        operation = checked.operation
        note_operation(
            name=operation.name.value if operation.name else None,
            operation_type=operation.operation.value,
            errors=errors,
        )
        response_data = process_result(AnsweredResult(data=result.data, errors=errors or None))
        return self._endpoint.answer(response_data, sub_response, response_type=response_type)

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
