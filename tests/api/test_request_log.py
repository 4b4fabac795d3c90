"""Every request has an id, in a header and in its one log line; secrets are never logged."""

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from ipaddress import ip_network

import pytest
from httpx import ASGITransport, AsyncClient

from gql_app.api import lean_lane, router
from gql_app.config import Settings
from gql_app.logging_config import configure_logging
from gql_app.main import create_app
from gql_app.models import User
from tests.conftest import LogRecords
from tests.factories import STRONG_PASSWORD, USER_PASSWORD
from tests.graphql import LOGIN, GraphQLClient
from tests.operations import CHANGE_PASSWORD, REFRESH_TOKEN


@asynccontextmanager
async def behind_proxy(settings: Settings) -> AsyncIterator[AsyncClient]:
    """The app trusting the loopback peer the test client connects from as its proxy."""
    trusting = settings.model_copy(update={"trusted_proxies": [ip_network("127.0.0.0/8")]})
    app = create_app(trusting)
    transport = ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with AsyncClient(transport=transport, base_url="http://t") as http:
        yield http
    await app.state.engine.dispose()


REGISTER = "mutation Register($input: RegisterInput!) { register(input: $input) { id } }"


def request_lines(log: LogRecords) -> list[logging.LogRecord]:
    return [record for record in log.records if record.name == "gql_app.requests"]


class TestRequestId:
    async def test_every_answer_carries_a_fresh_id(self, client: AsyncClient) -> None:
        first = await client.get("/healthz")
        second = await client.get("/healthz")

        ids = [response.headers["x-request-id"] for response in (first, second)]
        assert all(len(request_id) == 32 for request_id in ids)
        assert ids[0] != ids[1]

    async def test_a_trusted_proxy_id_is_kept(self, settings: Settings) -> None:
        async with behind_proxy(settings) as proxied:
            response = await proxied.get("/healthz", headers={"x-request-id": "edge-42.a_b"})

        assert response.headers["x-request-id"] == "edge-42.a_b"

    async def test_a_client_cannot_choose_its_id(self, client: AsyncClient) -> None:
        response = await client.get("/healthz", headers={"x-request-id": "someone-elses-id"})

        assert response.headers["x-request-id"] != "someone-elses-id"
        assert len(response.headers["x-request-id"]) == 32

    @pytest.mark.parametrize("given", ["line\nbreak", "x" * 65, "spaces are here", ""])
    async def test_an_id_that_could_forge_log_lines_is_replaced(
        self, settings: Settings, given: str
    ) -> None:
        async with behind_proxy(settings) as proxied:
            response = await proxied.get("/healthz", headers={"x-request-id": given})

        assert response.headers["x-request-id"] != given
        assert len(response.headers["x-request-id"]) == 32

    async def test_refused_requests_have_one_too(self, client: AsyncClient) -> None:
        response = await client.post(
            "/graphql", content="x", headers={"content-type": "text/plain"}
        )

        assert response.status_code == 415
        assert response.headers["x-request-id"]


class TestUnexpectedFailures:
    async def test_an_error_outside_graphql_is_a_500_with_the_request_id(
        self, client: AsyncClient, app_log: LogRecords, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def explode(_: object) -> str:
            raise RuntimeError("secret detail")

        # Both ways to the endpoint negotiate first: the lean lane and the router.
        monkeypatch.setattr(lean_lane, "negotiate_response_type", explode)
        monkeypatch.setattr(router, "negotiate_response_type", explode)

        response = await client.post("/graphql", json={"query": "{ __typename }"})

        assert response.status_code == 500
        [error] = response.json()["errors"]
        assert error["extensions"] == {
            "code": "INTERNAL_SERVER_ERROR",
            "requestId": response.headers["x-request-id"],
        }
        assert "secret detail" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
        [logged] = [r for r in app_log.records if r.levelno == logging.ERROR]
        assert logged.exc_info is not None
        assert request_lines(app_log)[-1].__dict__["status"] == 500

    @pytest.mark.parametrize("body", ['"x"', "5", "null", "true", "[" * 100_000])
    async def test_a_body_that_is_not_a_json_object_is_a_400(
        self, client: AsyncClient, body: str
    ) -> None:
        response = await client.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )

        assert response.status_code == 400


class TestRequestLine:
    async def test_one_line_with_operation_outcome_status_and_duration(
        self, gql: GraphQLClient, app_log: LogRecords
    ) -> None:
        response = await gql("query Who { me { email } }")

        [line] = request_lines(app_log)
        assert line.__dict__["operation"] == "Who"
        assert line.__dict__["operation_type"] == "query"
        assert line.__dict__["outcome"] == "UNAUTHENTICATED"
        assert line.__dict__["status"] == response.status_code == 200
        assert line.__dict__["duration_ms"] >= 0
        assert line.__dict__["path"] == "/graphql"

    async def test_a_successful_operation_is_ok(
        self, gql: GraphQLClient, app_log: LogRecords
    ) -> None:
        await gql("{ __typename }")

        [line] = request_lines(app_log)
        assert (line.__dict__["operation"], line.__dict__["outcome"]) == (None, "OK")

    async def test_a_document_that_does_not_parse_is_logged_with_its_code(
        self, gql: GraphQLClient, app_log: LogRecords
    ) -> None:
        await gql("{ me {")

        [line] = request_lines(app_log)
        assert line.__dict__["outcome"] == "GRAPHQL_PARSE_FAILED"
        assert line.__dict__["operation_type"] is None

    async def test_the_line_carries_the_request_id_of_the_answer(
        self, client: AsyncClient, app_log: LogRecords
    ) -> None:
        response = await client.get("/healthz")

        [line] = request_lines(app_log)
        assert line.__dict__["request_id"] == response.headers["x-request-id"]


class TestFormats:
    @pytest.fixture
    def stream(self) -> Iterator[io.StringIO]:
        # Whichever test of this process ran first, the application's handler exists now.
        configure_logging("INFO", log_format="text")
        [handler] = [h for h in logging.getLogger("gql_app").handlers if h.get_name() == "gql_app"]
        assert isinstance(handler, logging.StreamHandler)
        output = io.StringIO()
        previous = handler.setStream(output)
        yield output
        handler.setStream(previous)

    def test_production_writes_json_lines(self, stream: io.StringIO) -> None:
        configure_logging("INFO", log_format="json")
        try:
            logging.getLogger("gql_app.requests").info("hello", extra={"status": 200})
        finally:
            configure_logging("INFO", log_format="text")

        record = json.loads(stream.getvalue())
        assert record["message"] == "hello"
        assert record["status"] == 200
        assert record["level"] == "INFO"
        assert record["logger"] == "gql_app.requests"
        assert record["request_id"] == "-"

    def test_development_writes_readable_lines(self, stream: io.StringIO) -> None:
        configure_logging("INFO", log_format="text")

        logging.getLogger("gql_app.requests").info("hello")

        assert stream.getvalue().rstrip().endswith("INFO gql_app.requests [-] hello")


class TestNoSecrets:
    async def test_passwords_tokens_and_hashes_never_reach_the_log(
        self, gql: GraphQLClient, app_log: LogRecords, test_user: User
    ) -> None:
        app_log.setFormatter(logging.Formatter("%(message)s %(request_id)s"))
        await gql(REGISTER, {"input": {"email": "new@example.com", "password": STRONG_PASSWORD}})
        await gql(LOGIN, {"input": {"email": test_user.email, "password": "Wrong-password-1"}})
        signed_in = await gql(
            LOGIN, {"input": {"email": test_user.email, "password": USER_PASSWORD}}
        )
        tokens = signed_in.data["login"]
        refreshed = await gql(REFRESH_TOKEN, {"refreshToken": tokens["refreshToken"]})
        await gql(
            CHANGE_PASSWORD,
            {"input": {"currentPassword": USER_PASSWORD, "newPassword": STRONG_PASSWORD + "!"}},
            token=tokens["accessToken"],
        )

        written = "\n".join(
            f"{record.getMessage()} {json.dumps(record.__dict__, default=str)}"
            for record in app_log.records
        )
        secrets = [
            STRONG_PASSWORD,
            USER_PASSWORD,
            "Wrong-password-1",
            tokens["accessToken"],
            tokens["refreshToken"],
            refreshed.data["refreshToken"]["refreshToken"],
            test_user.password_hash,
        ]
        assert request_lines(app_log), "the requests were logged"
        assert [secret for secret in secrets if secret in written] == []
