"""Strings that are not Unicode text: a lone surrogate, escaped in JSON as clients may send
it, is bad input or an unknown token, never a server error."""

import json
from typing import Any

import pytest
from httpx import AsyncClient

from tests.factories import STRONG_PASSWORD
from tests.graphql import GraphQLResponse

LONE_SURROGATE = "\ud800"
REGISTER = "mutation ($i: RegisterInput!) { register(input: $i) { id } }"


async def post_escaped(
    client: AsyncClient, query: str, variables: dict[str, Any]
) -> GraphQLResponse:
    """Post JSON with non-ASCII escaped, as a client may send a lone surrogate."""
    response = await client.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return GraphQLResponse(status_code=200, body=response.json(), text=response.text)


async def test_a_password_with_a_lone_surrogate_is_bad_user_input(client: AsyncClient) -> None:
    response = await post_escaped(
        client,
        REGISTER,
        {"i": {"email": "odd@example.com", "password": LONE_SURROGATE + STRONG_PASSWORD}},
    )

    assert response.error_fields() == ["password"]


@pytest.mark.parametrize(
    "document",
    [
        "mutation ($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
        "mutation ($t: String!) { logout(refreshToken: $t) }",
    ],
)
async def test_a_token_with_a_lone_surrogate_is_just_unknown(
    client: AsyncClient, document: str
) -> None:
    response = await post_escaped(client, document, {"t": LONE_SURROGATE})

    response.single_error("UNAUTHENTICATED")


async def test_an_emailed_token_with_a_lone_surrogate_is_just_invalid(client: AsyncClient) -> None:
    response = await post_escaped(
        client,
        "mutation ($t: String!) { verifyEmail(token: $t) { id } }",
        {"t": LONE_SURROGATE},
    )

    assert response.error_fields() == ["token"]
