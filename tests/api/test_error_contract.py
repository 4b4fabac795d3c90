"""Every entry in errors[] carries extensions.code; unexpected failures are masked."""

import logging
from collections.abc import Iterator

import pytest
from httpx import AsyncClient

from gql_app.api.resolvers import users as users_resolvers
from gql_app.models import User
from tests.graphql import GraphQLClient


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log() -> Iterator[ListHandler]:
    handler = ListHandler()
    logger = logging.getLogger("gql_app.errors")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


class TestDocumentErrors:
    @pytest.mark.parametrize(
        "document", ["{ me { id ", "query {", "}", "mutation { login(input: }"]
    )
    async def test_unparsable_document_is_parse_failed(
        self, gql: GraphQLClient, document: str, error_log: ListHandler
    ) -> None:
        response = await gql(document)

        error = response.single_error("GRAPHQL_PARSE_FAILED")
        assert error["message"].startswith("Syntax Error")
        assert error_log.records == []

    @pytest.mark.parametrize(
        "document",
        [
            "{ nope }",
            "{ me { passwordHash } }",
            'query { users(first: "ten") { totalCount } }',
            'mutation { register(input: {email: "a@example.com"}) { id } }',
            "query ($x: Int) { me { id } }",
        ],
    )
    async def test_invalid_document_is_validation_failed(
        self, gql: GraphQLClient, document: str, error_log: ListHandler
    ) -> None:
        response = await gql(document)

        assert set(response.error_codes) == {"GRAPHQL_VALIDATION_FAILED"}
        assert response.data is None
        assert error_log.records == []

    async def test_variable_of_the_wrong_type_is_bad_user_input(self, gql: GraphQLClient) -> None:
        response = await gql(
            "query ($first: Int) { users(first: $first) { totalCount } }", {"first": "ten"}
        )

        error = response.single_error("BAD_USER_INPUT")
        assert error["extensions"]["reason"] == "BAD_USER_INPUT"
        [field] = error["extensions"]["fields"]
        assert (field["field"], field["code"]) == ("first", "INVALID_VALUE")

    @pytest.mark.parametrize(
        ("document", "variables"),
        [
            pytest.param(
                "mutation ($t: String!) { verifyEmail(token: $t) { id } }", {}, id="left-out"
            ),
            pytest.param(
                "mutation ($t: String!) { verifyEmail(token: $t) { id } }", {"t": None}, id="null"
            ),
            pytest.param(
                "mutation ($i: RegisterInput!) { register(input: $i) { id } }",
                {"i": {"email": "someone@example.com"}},
                id="input-without-a-required-field",
            ),
        ],
    )
    async def test_a_required_variable_missing_is_field_code_required(
        self, gql: GraphQLClient, document: str, variables: dict[str, object]
    ) -> None:
        response = await gql(document, variables)

        [field] = response.single_error("BAD_USER_INPUT")["extensions"]["fields"]
        assert field["code"] == "REQUIRED"

    async def test_missing_document_is_rejected_by_the_transport(self, client: AsyncClient) -> None:
        response = await client.post("/graphql", json={"variables": {}})

        assert response.status_code == 400


class TestUnexpectedErrors:
    async def test_are_masked_with_a_request_id_that_is_logged(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_user: User,
        monkeypatch: pytest.MonkeyPatch,
        error_log: ListHandler,
    ) -> None:
        async def explode(**_: object) -> User:
            raise RuntimeError("database password is hunter2")

        monkeypatch.setattr(users_resolvers.users_service, "get_user", explode)

        response = await gql(
            "query ($id: ID!) { user(id: $id) { id } }",
            {"id": str(test_user.id)},
            token=superuser_token,
        )

        error = response.single_error("INTERNAL_SERVER_ERROR")
        assert error["message"] == "Internal server error"
        assert "hunter2" not in response.text
        assert "Traceback" not in response.text
        assert set(error["extensions"]) == {"code", "reason", "requestId"}
        assert error["extensions"]["reason"] == "INTERNAL_SERVER_ERROR"
        [record] = error_log.records
        assert record.levelno == logging.ERROR
        assert error["extensions"]["requestId"] in record.getMessage()
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], RuntimeError)

    async def test_other_fields_still_resolve(self, gql: GraphQLClient, user_token: str) -> None:
        response = await gql("{ me { email } users { totalCount } }", token=user_token)

        assert response.error_codes == ["FORBIDDEN"]
        assert response.errors[0]["path"] == ["users"]
        assert response.data is None  # users is non-null, so the whole query nulls out

    async def test_concurrent_fields_share_one_database_session_safely(
        self, gql: GraphQLClient, superuser_token: str
    ) -> None:
        response = await gql(
            "{ me { email } users { totalCount } again: users(first: 1) { totalCount } }",
            token=superuser_token,
        )

        assert response.errors == []
        assert response.data["me"]["email"] == "superuser@example.com"
        assert response.data["users"]["totalCount"] == response.data["again"]["totalCount"] == 1
