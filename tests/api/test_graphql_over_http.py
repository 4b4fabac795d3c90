"""GraphQL over HTTP: the application/graphql-response+json media type and its status codes.

Each row of the spec's table is a request a client can make; plain application/json clients
keep the classic answers (200 with errors).
"""

from typing import Any

import pytest
from httpx import AsyncClient, Response

from gql_app.api.media_types import GRAPHQL_RESPONSE_JSON
from gql_app.models import User

GRAPHQL_RESPONSE = {"accept": GRAPHQL_RESPONSE_JSON}
ME = "query Me { me { email } }"


async def post(
    client: AsyncClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return await client.post("/graphql", json=body, headers=headers or GRAPHQL_RESPONSE)


def media_type(response: Response) -> str:
    return response.headers["content-type"].split(";")[0]


def codes(response: Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


class TestRequestErrors:
    async def test_a_document_that_does_not_parse_is_400_without_data(
        self, client: AsyncClient
    ) -> None:
        response = await post(client, {"query": "{ me { "})

        assert response.status_code == 400
        assert media_type(response) == GRAPHQL_RESPONSE_JSON
        assert "data" not in response.json()
        assert codes(response) == ["GRAPHQL_PARSE_FAILED"]

    async def test_a_document_that_does_not_validate_is_422(self, client: AsyncClient) -> None:
        response = await post(client, {"query": "{ me { nope } }"})

        assert response.status_code == 422
        assert "data" not in response.json()
        assert codes(response) == ["GRAPHQL_VALIDATION_FAILED"]

    async def test_an_unknown_operation_is_422(self, client: AsyncClient) -> None:
        response = await post(client, {"query": ME, "operationName": "Other"})

        assert response.status_code == 422
        assert media_type(response) == GRAPHQL_RESPONSE_JSON
        assert "Other" in response.json()["errors"][0]["message"]
        assert response.json()["errors"][0]["extensions"] == {
            "code": "GRAPHQL_VALIDATION_FAILED",
            "reason": "UNKNOWN_OPERATION",
        }

    async def test_variables_that_do_not_fit_are_422(self, client: AsyncClient) -> None:
        response = await post(
            client,
            {
                "query": "query ($first: Int) { users(first: $first) { totalCount } }",
                "variables": {"first": "ten"},
            },
        )

        assert response.status_code == 422
        assert "data" not in response.json()
        assert codes(response) == ["BAD_USER_INPUT"]

    async def test_a_body_that_is_not_json_is_400(self, client: AsyncClient) -> None:
        response = await client.post(
            "/graphql",
            content=b"{not json",
            headers={**GRAPHQL_RESPONSE, "content-type": "application/json"},
        )

        assert response.status_code == 400
        assert media_type(response) == GRAPHQL_RESPONSE_JSON
        assert response.json()["errors"][0]["message"]


class TestTransport:
    async def test_an_unsupported_method_is_405_with_allow(self, client: AsyncClient) -> None:
        response = await client.put("/graphql", json={"query": ME}, headers=GRAPHQL_RESPONSE)

        assert response.status_code == 405
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}

    @pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PATCH", "DELETE"])
    async def test_every_other_method_is_405_allowing_get_and_post(
        self, client: AsyncClient, method: str
    ) -> None:
        response = await client.request(method, "/graphql", headers=GRAPHQL_RESPONSE)

        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"

    async def test_a_mutation_over_get_is_405_allowing_post(self, client: AsyncClient) -> None:
        response = await client.get(
            "/graphql",
            params={"query": 'mutation { requestPasswordReset(email: "a@example.com") }'},
            headers=GRAPHQL_RESPONSE,
        )

        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert media_type(response) == GRAPHQL_RESPONSE_JSON

    async def test_an_unsupported_content_type_is_415(self, client: AsyncClient) -> None:
        response = await client.post(
            "/graphql",
            content="query=%7B__typename%7D",
            headers={**GRAPHQL_RESPONSE, "content-type": "application/x-www-form-urlencoded"},
        )

        assert response.status_code == 415

    @pytest.mark.parametrize("accept", ["text/plain", "application/xml", "application/json;q=0"])
    async def test_an_unacceptable_accept_is_406(self, client: AsyncClient, accept: str) -> None:
        response = await post(client, {"query": ME}, headers={"accept": accept})

        assert response.status_code == 406
        assert GRAPHQL_RESPONSE_JSON in response.text

    async def test_a_body_too_large_is_413(self, client: AsyncClient) -> None:
        response = await post(client, {"query": "{ __typename }", "pad": "x" * 200_000})

        assert response.status_code == 413


class TestExecutedOperations:
    async def test_data_is_200_in_the_requested_media_type(self, client: AsyncClient) -> None:
        response = await post(client, {"query": "{ __typename }"})

        assert response.status_code == 200
        assert media_type(response) == GRAPHQL_RESPONSE_JSON
        assert response.json() == {"data": {"__typename": "Query"}}

    async def test_answers_keep_the_json_security_headers(self, client: AsyncClient) -> None:
        response = await post(client, {"query": "{ __typename }"})

        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")

    async def test_a_field_error_is_still_200_with_data(self, client: AsyncClient) -> None:
        response = await post(client, {"query": ME})

        assert response.status_code == 200
        assert response.json()["data"] is None
        assert codes(response) == ["UNAUTHENTICATED"]

    async def test_a_domain_input_error_is_200_not_a_request_error(
        self, client: AsyncClient, test_user: User
    ) -> None:
        response = await post(
            client,
            {
                "query": "mutation ($e: String!) { requestPasswordReset(email: $e) }",
                "variables": {"e": "not an email"},
            },
        )

        assert response.status_code == 200
        assert "data" in response.json()
        assert codes(response) == ["BAD_USER_INPUT"]


class TestClassicJsonClients:
    @pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
    async def test_request_errors_stay_200_with_errors(
        self, client: AsyncClient, accept: str | None
    ) -> None:
        headers = {"accept": accept} if accept else {}
        response = await client.post("/graphql", json={"query": "{ me { nope } }"}, headers=headers)

        assert response.status_code == 200
        assert media_type(response) == "application/json"
        assert codes(response) == ["GRAPHQL_VALIDATION_FAILED"]

    async def test_an_unknown_operation_stays_400(self, client: AsyncClient) -> None:
        response = await client.post("/graphql", json={"query": ME, "operationName": "Other"})

        assert response.status_code == 400
        assert codes(response) == ["GRAPHQL_VALIDATION_FAILED"]


class TestEveryRefusalHasACode:
    @pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE_JSON])
    @pytest.mark.parametrize(
        ("request_args", "status", "code"),
        [
            pytest.param(
                {"method": "PUT", "json": {"query": ME}}, 405, "METHOD_NOT_ALLOWED", id="405"
            ),
            pytest.param(
                {"method": "POST", "content": "x", "headers": {"content-type": "text/plain"}},
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                id="415",
            ),
            pytest.param(
                {"method": "POST", "json": {"query": ME, "pad": "x" * 200_000}},
                413,
                "PAYLOAD_TOO_LARGE",
                id="413",
            ),
            pytest.param(
                {"method": "POST", "content": "{", "headers": {"content-type": "application/json"}},
                400,
                "BAD_REQUEST",
                id="400",
            ),
        ],
    )
    async def test_in_the_body_as_in_every_answer(
        self,
        client: AsyncClient,
        request_args: dict[str, Any],
        status: int,
        code: str,
        accept: str | None,
    ) -> None:
        arguments = dict(request_args)
        headers = {**arguments.pop("headers", {}), **({"accept": accept} if accept else {})}

        response = await client.request(url="/graphql", headers=headers, **arguments)

        assert response.status_code == status
        assert codes(response) == [code]

    async def test_no_acceptable_media_type_is_406_with_a_code(self, client: AsyncClient) -> None:
        response = await post(client, {"query": ME}, headers={"accept": "text/plain"})

        assert response.status_code == 406
        assert codes(response) == ["NOT_ACCEPTABLE"]
