"""Automatic persisted queries: Apollo's protocol, version 1."""

import hashlib
import json
import uuid
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_app.api.media_types import GRAPHQL_RESPONSE_JSON
from gql_app.api.persisted_queries import MemoryQueryStorage
from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.main import create_app
from tests.conftest import LogRecords

TYPENAME = "query Typename { __typename }"


def sha256(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(query: str, *, send_query: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(query)}}
    }
    if send_query:
        body["query"] = query
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


class TestProtocol:
    async def test_an_unknown_hash_asks_for_the_document(self, client: AsyncClient) -> None:
        response = await client.post("/graphql", json=persisted(TYPENAME))

        assert response.status_code == 200
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert response.json()["errors"][0]["message"] == "PersistedQueryNotFound"

    async def test_the_document_sent_once_runs_by_hash_afterwards(
        self, client: AsyncClient
    ) -> None:
        first = await client.post("/graphql", json=persisted(TYPENAME, send_query=True))
        again = await client.post("/graphql", json=persisted(TYPENAME))

        assert first.json() == {"data": {"__typename": "Query"}}
        assert again.json() == {"data": {"__typename": "Query"}}

    async def test_variables_and_operation_name_go_with_the_hash(self, client: AsyncClient) -> None:
        query = "query Pick($yes: Boolean!) { a: __typename @include(if: $yes) }"
        await client.post(
            "/graphql", json=persisted(query, send_query=True) | {"variables": {"yes": False}}
        )

        response = await client.post(
            "/graphql",
            json=persisted(query) | {"variables": {"yes": True}, "operationName": "Pick"},
        )

        assert response.json() == {"data": {"a": "Query"}}

    async def test_a_hash_that_does_not_match_the_document_is_refused(
        self, client: AsyncClient
    ) -> None:
        body = persisted(TYPENAME) | {"query": "{ me { email } }"}

        response = await client.post("/graphql", json=body)
        after = await client.post("/graphql", json=persisted(TYPENAME))

        assert codes(response.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
        assert "data" not in response.json()
        # The mismatched document was not kept under that hash.
        assert codes(after.json()) == ["PERSISTED_QUERY_NOT_FOUND"]

    @pytest.mark.parametrize(
        "extension",
        [
            pytest.param({"version": 2, "sha256Hash": "0" * 64}, id="version"),
            # true == 1 in Python: a boolean must not pass for the number.
            pytest.param({"version": True, "sha256Hash": "0" * 64}, id="boolean-version"),
            pytest.param({"version": 1.0, "sha256Hash": "0" * 64}, id="float-version"),
            pytest.param({"version": "1", "sha256Hash": "0" * 64}, id="string-version"),
            pytest.param({"version": 1, "sha256Hash": "abc"}, id="short-hash"),
            pytest.param({"version": 1, "sha256Hash": "G" * 64}, id="not-hex"),
            pytest.param("yes", id="not-an-object"),
        ],
    )
    async def test_a_malformed_extension_is_refused(
        self, client: AsyncClient, extension: object
    ) -> None:
        response = await client.post("/graphql", json={"extensions": {"persistedQuery": extension}})

        assert codes(response.json()) == ["PERSISTED_QUERY_INVALID"]

    async def test_a_document_that_does_not_validate_is_not_kept(self, client: AsyncClient) -> None:
        invalid = "{ nope }"

        first = await client.post("/graphql", json=persisted(invalid, send_query=True))
        again = await client.post("/graphql", json=persisted(invalid))

        assert codes(first.json()) == ["GRAPHQL_VALIDATION_FAILED"]
        assert codes(again.json()) == ["PERSISTED_QUERY_NOT_FOUND"]

    async def test_a_persisted_mutation_over_get_is_still_refused(
        self, client: AsyncClient, outbox: list[object]
    ) -> None:
        mutation = 'mutation Reset { requestPasswordReset(email: "a@example.com") }'
        # Registered over POST, where mutations belong; it ran once, sending nothing.
        await client.post("/graphql", json=persisted(mutation, send_query=True))
        sent_before = len(outbox)

        extensions = json.dumps(persisted(mutation)["extensions"])

        response = await client.get("/graphql", params={"extensions": extensions})

        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert len(outbox) == sent_before

    async def test_graphql_response_clients_get_a_404_for_an_unknown_hash(
        self, client: AsyncClient
    ) -> None:
        response = await client.post(
            "/graphql", json=persisted(TYPENAME), headers={"accept": GRAPHQL_RESPONSE_JSON}
        )

        assert response.status_code == 404
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


class TestMemoryStorage:
    async def test_keeps_the_most_recently_used(self) -> None:
        storage = MemoryQueryStorage(maxsize=2)
        await storage.put("a", "A")
        await storage.put("b", "B")
        await storage.get("a")
        await storage.put("c", "C")

        assert [await storage.get(key) for key in ("a", "b", "c")] == ["A", None, "C"]


class TestRedisStorage:
    async def test_a_document_sent_to_one_worker_runs_by_hash_on_another(
        self,
        settings: Settings,
        redis_url: str,
        async_test_db: tuple[AsyncEngine, SessionFactory],
    ) -> None:
        _, session_factory = async_test_db
        shared = settings.model_copy(
            update={"redis_url": redis_url, "rate_limit_key_prefix": f"test-{uuid.uuid4().hex}"}
        )
        workers = [create_app(shared) for _ in range(2)]
        for app in workers:
            app.state.session_factory = session_factory
        try:
            async with (
                AsyncClient(transport=ASGITransport(app=workers[0]), base_url="http://a") as one,
                AsyncClient(transport=ASGITransport(app=workers[1]), base_url="http://b") as two,
            ):
                await one.post("/graphql", json=persisted(TYPENAME, send_query=True))
                response = await two.post("/graphql", json=persisted(TYPENAME))
        finally:
            for app in workers:
                await app.state.persisted_queries.storage.aclose()
                await app.state.rate_limiter.aclose()
                await app.state.engine.dispose()

        assert response.json() == {"data": {"__typename": "Query"}}


class TestLimits:
    async def test_a_long_document_runs_but_is_not_kept(
        self, settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> None:
        _, session_factory = async_test_db
        app = create_app(settings.model_copy(update={"persisted_query_max_bytes": 100}))
        app.state.session_factory = session_factory
        padded = "# " + "x" * 200 + "\n" + TYPENAME
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            sent = await http.post("/graphql", json=persisted(padded, send_query=True))
            again = await http.post("/graphql", json=persisted(padded))
        await app.state.engine.dispose()

        assert sent.json() == {"data": {"__typename": "Query"}}
        assert codes(again.json()) == ["PERSISTED_QUERY_NOT_FOUND"]

    async def test_without_its_store_a_full_request_still_runs(
        self,
        settings: Settings,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        app_log: LogRecords,
    ) -> None:
        _, session_factory = async_test_db
        # Nothing listens on port 1: every Redis command fails to connect.
        app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
        app.state.session_factory = session_factory
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http:
            full = await http.post("/graphql", json=persisted(TYPENAME, send_query=True))
            hash_only = await http.post("/graphql", json=persisted(TYPENAME))
        await app.state.persisted_queries.storage.aclose()
        await app.state.engine.dispose()

        assert full.json() == {"data": {"__typename": "Query"}}
        assert codes(hash_only.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
        # Two failed commands, one line: the outage, not each request it touched.
        outage = [r for r in app_log.records if r.name == "gql_app.availability"]
        assert [r.getMessage().split(" (")[0] for r in outage] == ["redis unavailable"]
        assert outage[0].exc_info is None
