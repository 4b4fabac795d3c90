"""Posting GraphQL documents the way a client does, and reading typed errors back."""

from dataclasses import dataclass, field
from typing import Any

from httpx import AsyncClient

GRAPHQL_PATH = "/graphql"

LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken tokenType expiresIn user { id email } }
}
"""


@dataclass
class GraphQLResponse:
    status_code: int
    body: dict[str, Any]
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.body.get("errors") or []
        return errors

    @property
    def error_codes(self) -> list[str]:
        return [error["extensions"]["code"] for error in self.errors]

    def single_error(self, code: str) -> dict[str, Any]:
        assert self.error_codes == [code], self.body
        return self.errors[0]

    def error_fields(self) -> list[str]:
        error = self.single_error("BAD_USER_INPUT")
        return [entry["field"] for entry in error["extensions"]["fields"]]


class GraphQLClient:
    def __init__(self, http: AsyncClient) -> None:
        self.http = http

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> GraphQLResponse:
        request_headers = dict(headers or {})
        if token is not None:
            request_headers["Authorization"] = f"Bearer {token}"
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        response = await self.http.post(GRAPHQL_PATH, json=payload, headers=request_headers)
        assert response.status_code == 200, response.text
        return GraphQLResponse(
            status_code=response.status_code,
            body=response.json(),
            text=response.text,
            headers=dict(response.headers),
        )


async def login(gql: GraphQLClient, *, email: str, password: str) -> str:
    response = await gql(LOGIN, {"input": {"email": email, "password": password}})
    assert response.errors == [], response.body
    token: str = response.data["login"]["accessToken"]
    return token


@dataclass(frozen=True)
class Tokens:
    """The access and refresh token of one session."""

    access: str
    refresh: str


async def login_tokens(
    gql: GraphQLClient, *, email: str, password: str, headers: dict[str, str] | None = None
) -> Tokens:
    """Sign in and keep both tokens: one new session."""
    response = await gql(LOGIN, {"input": {"email": email, "password": password}}, headers=headers)
    assert response.errors == [], response.body
    payload = response.data["login"]
    return Tokens(access=payload["accessToken"], refresh=payload["refreshToken"])
