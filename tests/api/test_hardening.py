"""Attacks on the GraphQL endpoint, sent to the app in production mode, each refused."""

import json
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_app.api.resolvers import users as users_resolvers
from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.main import create_app
from tests.conftest import TEST_SECRET
from tests.factories import ADMIN_PASSWORD, create_user
from tests.graphql import GraphQLClient, login

INTROSPECTION = "{ __schema { queryType { name } types { name fields { name } } } }"


def production_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "production",
        "password_hashing_cost": "standard",
        "secret_key": SecretStr(TEST_SECRET),
        "database_url": "sqlite+aiosqlite:///:memory:",
        "migrate_on_start": False,
        "email_backend": "memory",
        **overrides,
    }
    return Settings.model_validate(values)


async def app_for(settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]) -> FastAPI:
    _, session_factory = async_test_db
    app = create_app(settings)
    app.state.session_factory = session_factory
    return app


@pytest_asyncio.fixture
async def production(
    async_test_db: tuple[AsyncEngine, SessionFactory],
) -> AsyncIterator[AsyncClient]:
    app = await app_for(production_settings(), async_test_db)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://api") as http:
        yield http
    await app.state.engine.dispose()


@pytest.fixture
def gql_production(production: AsyncClient) -> GraphQLClient:
    return GraphQLClient(production)


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def app_errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    logger = logging.getLogger("gql_app")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


class TestReconnaissance:
    async def test_introspection_is_refused(self, gql_production: GraphQLClient) -> None:
        response = await gql_production(INTROSPECTION)

        assert set(response.error_codes) == {"GRAPHQL_VALIDATION_FAILED"}
        assert response.data is None
        assert "introspection" in response.errors[0]["message"].lower()

    async def test_type_name_probe_is_refused_too(self, gql_production: GraphQLClient) -> None:
        response = await gql_production('{ __type(name: "User") { fields { name } } }')

        assert set(response.error_codes) == {"GRAPHQL_VALIDATION_FAILED"}

    @pytest.mark.parametrize(
        "document",
        [
            "{ mee { id } }",
            "{ me { emial } }",
            'mutation { login(input: {emial: "a@example.com", password: "x"}) { accessToken } }',
            "{ users(frist: 1) { totalCount } }",
        ],
    )
    async def test_errors_do_not_suggest_names(
        self, gql_production: GraphQLClient, document: str
    ) -> None:
        response = await gql_production(document)

        assert set(response.error_codes) == {"GRAPHQL_VALIDATION_FAILED"}
        assert "Did you mean" not in response.text

    async def test_development_still_suggests_and_introspects(self, gql: GraphQLClient) -> None:
        suggestion = await gql("{ mee { id } }")
        introspection = await gql(INTROSPECTION)

        assert "Did you mean" in suggestion.text
        assert introspection.errors == []

    async def test_variables_do_not_suggest_input_field_names(
        self, gql_production: GraphQLClient
    ) -> None:
        response = await gql_production(
            "mutation ($i: LoginInput!) { login(input: $i) { accessToken } }",
            {"i": {"emial": "a@example.com", "password": "x", "email": "a@example.com"}},
        )

        response.single_error("BAD_USER_INPUT")
        assert "Did you mean" not in response.text


class TestDocumentLimits:
    async def test_more_than_fifteen_aliases_are_refused(
        self, gql_production: GraphQLClient
    ) -> None:
        fields = " ".join(
            f'a{i}: login(input: {{email: "a{i}@example.com", password: "x"}}) {{ accessToken }}'
            for i in range(101)
        )

        response = await gql_production(f"mutation {{ {fields} }}")

        error = response.single_error("GRAPHQL_VALIDATION_FAILED")
        assert "aliases" in error["message"]
        assert response.data is None

    async def test_fifteen_aliases_are_fine(self, gql_production: GraphQLClient) -> None:
        fields = " ".join(f"a{i}: __typename" for i in range(15))

        response = await gql_production(f"{{ {fields} }}")

        assert response.errors == []

    async def test_repeated_unknown_directives_are_answered_once(
        self, gql_production: GraphQLClient
    ) -> None:
        directives = " ".join("@nope" for _ in range(10))

        response = await gql_production(f"{{ __typename {directives} }}")

        assert len(response.errors) == 1
        assert response.error_codes == ["GRAPHQL_VALIDATION_FAILED"]

    async def test_too_many_directives_are_refused_before_validation(
        self, gql_production: GraphQLClient
    ) -> None:
        directives = " ".join("@include(if: true)" for _ in range(11))

        response = await gql_production(f"{{ __typename {directives} }}")

        error = response.single_error("GRAPHQL_VALIDATION_FAILED")
        assert "directives" in error["message"]

    async def test_a_query_deeper_than_the_limit_is_refused(
        self, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> None:
        # The schema's own deepest path is users.edges.node.<field>, so the default
        # limit (10) is never reached by a real query; a lower one shows the guard.
        app = await app_for(production_settings(graphql_max_depth=2), async_test_db)
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://api") as http:
            response = await GraphQLClient(http)("{ users { edges { node { id } } } }")

        error = response.single_error("GRAPHQL_VALIDATION_FAILED")
        assert "depth" in error["message"]

    async def test_fragments_that_fan_out_are_refused_at_once(
        self, gql_production: GraphQLClient
    ) -> None:
        # The reported document: 30 spreads a level, 8 levels, about 1.4 KB and 500 tokens.
        fragments = " ".join(
            f"fragment {a} on Query {{{f' ...{b}' * 30}}}"
            for a, b in zip("ABCDEFGH", "BCDEFGHI", strict=True)
        )
        document = f"query {{ ...A }} {fragments} fragment I on Query {{ __typename }}"

        response = await gql_production(document)

        error = response.single_error("GRAPHQL_VALIDATION_FAILED")
        assert error["extensions"]["reason"] == "TOO_MANY_FIELDS"

    async def test_a_document_of_too_many_tokens_is_refused(
        self, gql_production: GraphQLClient
    ) -> None:
        fields = " ".join("__typename" for _ in range(2100))

        response = await gql_production(f"{{ {fields} }}")

        error = response.single_error("GRAPHQL_PARSE_FAILED")
        assert "tokens" in error["message"]


class TestTransport:
    async def test_batched_arrays_are_refused(self, production: AsyncClient) -> None:
        response = await production.post(
            "/graphql", json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}]
        )

        assert response.status_code == 400
        assert "Batching" in response.text

    async def test_queries_over_get_are_refused(self, production: AsyncClient) -> None:
        response = await production.get("/graphql", params={"query": "{ __typename }"})

        assert response.status_code in {400, 405}
        assert "__typename" not in response.text

    async def test_mutations_over_get_are_refused(self, production: AsyncClient) -> None:
        response = await production.get(
            "/graphql",
            params={"query": 'mutation { requestPasswordReset(email: "a@example.com") }'},
        )

        assert response.status_code in {400, 405}
        assert "requestPasswordReset" not in response.text

    async def test_mutations_over_get_are_refused_even_where_get_queries_are_on(
        self, client: AsyncClient, outbox: list[object]
    ) -> None:
        response = await client.get(
            "/graphql",
            params={"query": 'mutation { requestPasswordReset(email: "a@example.com") }'},
        )

        assert response.status_code in {400, 405}
        assert outbox == []

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("application/x-www-form-urlencoded", "query=%7B__typename%7D"),
            ("text/plain", '{"query": "{ __typename }"}'),
            (
                "multipart/form-data; boundary=x",
                '--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n{ a }\r\n--x--',
            ),
            ("application/graphql", "{ __typename }"),
        ],
    )
    async def test_only_json_bodies_are_accepted(
        self, production: AsyncClient, content_type: str, body: str
    ) -> None:
        response = await production.post(
            "/graphql", content=body, headers={"Content-Type": content_type}
        )

        assert response.status_code == 415

    async def test_json_with_a_charset_is_accepted(self, production: AsyncClient) -> None:
        response = await production.post(
            "/graphql",
            content=json.dumps({"query": "{ __typename }"}),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )

        assert response.status_code == 200
        assert response.json() == {"data": {"__typename": "Query"}}

    async def test_an_oversized_body_is_refused(self, production: AsyncClient) -> None:
        padding = "x" * 200_000
        response = await production.post(
            "/graphql", json={"query": "{ __typename }", "variables": {"pad": padding}}
        )

        assert response.status_code == 413

    async def test_an_oversized_body_without_a_length_is_refused(
        self, production: AsyncClient
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"query": "{ __typename }", "variables": {"pad": "'
            for _ in range(30):
                yield b"x" * 10_000
            yield b'"}}'

        response = await production.post(
            "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 413

    async def test_graphiql_is_not_served(self, production: AsyncClient) -> None:
        response = await production.get("/graphql", headers={"Accept": "text/html"})

        assert "graphiql" not in response.text.lower()


class TestMaskedErrors:
    async def test_a_forced_internal_error_has_no_traceback(
        self,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        monkeypatch: pytest.MonkeyPatch,
        app_errors: ErrorLog,
    ) -> None:
        async def explode(**_: object) -> object:
            raise RuntimeError("connection string postgres://admin:hunter2@db")

        monkeypatch.setattr(users_resolvers.users_service, "list_users", explode)
        settings = production_settings(graphql_introspection=False)
        app = await app_for(settings, async_test_db)
        _, session_factory = async_test_db
        async with session_factory() as session:
            await create_user(
                session, email="root@example.com", password=ADMIN_PASSWORD, is_superuser=True
            )
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://api") as http:
            gql = GraphQLClient(http)
            token = await login(gql, email="root@example.com", password=ADMIN_PASSWORD)
            response = await gql("{ users { totalCount } }", token=token)

        error = response.single_error("INTERNAL_SERVER_ERROR")
        assert error["message"] == "Internal server error"
        assert "hunter2" not in response.text
        assert "Traceback" not in response.text
        assert "RuntimeError" not in response.text
        [record] = [r for r in app_errors.records if r.levelno >= logging.ERROR]
        assert error["extensions"]["requestId"] in record.getMessage()
        # The id the client can quote is the one its answer's header and log line carry.
        assert error["extensions"]["requestId"] == response.headers["x-request-id"]


class TestHeaders:
    async def test_answers_carry_security_headers(self, production: AsyncClient) -> None:
        response = await production.post("/graphql", json={"query": "{ __typename }"})

        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["strict-transport-security"].startswith("max-age=")

    async def test_no_cross_origin_access_by_default(self, production: AsyncClient) -> None:
        response = await production.options(
            "/graphql",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )

        assert "access-control-allow-origin" not in response.headers

    async def test_configured_origins_are_allowed(
        self, async_test_db: tuple[AsyncEngine, SessionFactory]
    ) -> None:
        settings = production_settings(cors_origins=["https://app.example"])
        app = await app_for(settings, async_test_db)
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://api") as http:
            allowed = await http.options(
                "/graphql",
                headers={
                    "Origin": "https://app.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            )
            refused = await http.options(
                "/graphql",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
            )

        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-origin" not in refused.headers


class TestClientDisconnect:
    async def test_is_not_logged_as_an_error(
        self, async_test_db: tuple[AsyncEngine, SessionFactory], app_errors: ErrorLog
    ) -> None:
        app = await app_for(production_settings(), async_test_db)
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"host", b"api")],
            "client": ("127.0.0.1", 5000),
            "server": ("api", 80),
            "state": {},
        }

        await app(scope, receive, send)

        assert [r for r in app_errors.records if r.levelno >= logging.ERROR] == []
