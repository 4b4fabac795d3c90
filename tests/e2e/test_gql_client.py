"""The API as a Python client meets it: gql over its httpx transport, against uvicorn.

The persisted-query transport below is what Apollo's link does in a browser: send the
document's hash, and the document only when the server asks for it.
"""

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import ExecutionResult

from bench.server import RunningServer
from gql_app.config import Settings
from tests.live_server import live_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EMAIL = "client@example.com"
PASSWORD = "correct horse battery staple"

REGISTER = gql("mutation Register($input: RegisterInput!) { register(input: $input) { email } }")
LOGIN = gql(
    "mutation Login($input: LoginInput!) {"
    " login(input: $input) { accessToken refreshToken tokenType } }"
)
ME = gql("query Me { me { email isVerified } }")


class PersistedQueryTransport(HTTPXAsyncTransport):
    """Apollo's automatic persisted queries over gql's httpx transport."""

    def __init__(self, url: str) -> None:
        super().__init__(url=url)
        self.sent: list[dict[str, Any]] = []
        self._hash_only = True

    def _prepare_request(self, request: Any, **kwargs: Any) -> dict[str, Any]:
        post_args: dict[str, Any] = super()._prepare_request(request, **kwargs)
        payload = post_args["json"]
        digest = hashlib.sha256(payload["query"].encode()).hexdigest()
        payload["extensions"] = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
        if self._hash_only:
            del payload["query"]
        self.sent.append(dict(payload))
        return post_args

    async def execute(self, request: GraphQLRequest, **kwargs: Any) -> ExecutionResult:
        self._hash_only = True
        result = await super().execute(request, **kwargs)
        codes = [error["extensions"]["code"] for error in result.errors or []]
        if codes == ["PERSISTED_QUERY_NOT_FOUND"]:
            self._hash_only = False
            result = await super().execute(request, **kwargs)
        return result


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running_server(
    e2e_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """uvicorn on this worker's PostgreSQL database, started once for the module's tests."""
    async with live_server(
        tmp_path_factory.mktemp("gql-client"),
        DATABASE_URL=e2e_settings.database_url,
        # The signing keys stored there are encrypted under the e2e tests' secret.
        SECRET_KEY=e2e_settings.secret_key_value,
        MIGRATE_ON_START="false",
    ) as running:
        yield running


@pytest.fixture
def server(running_server: RunningServer, app: object) -> RunningServer:
    """The module's server, on tables ``app`` emptied for this test."""
    return running_server


def client(server: RunningServer, **headers: str) -> Client:
    return Client(transport=HTTPXAsyncTransport(url=f"{server.base_url}/graphql", headers=headers))


async def test_register_sign_in_and_read_the_account(server: RunningServer) -> None:
    credentials = {"input": {"email": EMAIL, "password": PASSWORD}}
    async with client(server) as session:
        registered = await session.execute(GraphQLRequest(REGISTER, variable_values=credentials))
        signed_in = await session.execute(GraphQLRequest(LOGIN, variable_values=credentials))
    tokens = signed_in["login"]

    async with client(server, Authorization=f"Bearer {tokens['accessToken']}") as session:
        me = await session.execute(ME)

    assert registered == {"register": {"email": EMAIL}}
    assert tokens["tokenType"] == "Bearer"
    assert me == {"me": {"email": EMAIL, "isVerified": False}}


async def test_an_unauthenticated_call_raises_with_a_readable_code(
    server: RunningServer,
) -> None:
    async with client(server) as session:
        with pytest.raises(TransportQueryError) as raised:
            await session.execute(ME)

    assert raised.value.errors is not None
    [error] = raised.value.errors
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["path"] == ["me"]


async def test_a_bad_token_is_unauthenticated_too(server: RunningServer) -> None:
    async with client(server, Authorization="Bearer not-a-token") as session:
        with pytest.raises(TransportQueryError) as raised:
            await session.execute(ME)

    assert raised.value.errors is not None
    assert [e["extensions"]["code"] for e in raised.value.errors] == ["UNAUTHENTICATED"]


async def test_persisted_queries_send_the_document_once(server: RunningServer) -> None:
    transport = PersistedQueryTransport(f"{server.base_url}/graphql")
    typename = gql("query Typename { __typename }")

    async with Client(transport=transport) as session:
        first = await session.execute(typename)
        second = await session.execute(typename)

    assert first == second == {"__typename": "Query"}
    # Hash only (unknown), then hash and document, then hash only (known).
    assert ["query" in payload for payload in transport.sent] == [False, True, False]
    assert len({p["extensions"]["persistedQuery"]["sha256Hash"] for p in transport.sent}) == 1
