import base64
import json
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import User
from tests.factories import create_user
from tests.graphql import GraphQLClient

USERS = """
query Users($first: Int, $after: String, $filter: UserFilter) {
  users(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id email fullName isActive isSuperuser } }
  }
}
"""

USER = "query User($id: ID!) { user(id: $id) { id email isSuperuser } }"


def cursor(payload: object) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def emails(response_data: dict[str, Any]) -> list[str]:
    return [edge["node"]["email"] for edge in response_data["users"]["edges"]]


async def seed_users(session: AsyncSession, count: int) -> list[User]:
    return [
        await create_user(session, email=f"member{index:02d}@example.com") for index in range(count)
    ]


class TestUsers:
    async def test_superuser_lists_everyone_oldest_first(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        response = await gql(USERS, token=superuser_token)

        assert response.errors == []
        connection = response.data["users"]
        assert connection["totalCount"] == 2
        assert emails(response.data) == ["superuser@example.com", "testuser@example.com"]
        assert connection["pageInfo"]["hasNextPage"] is False
        assert connection["pageInfo"]["hasPreviousPage"] is False
        assert connection["pageInfo"]["startCursor"] == connection["edges"][0]["cursor"]
        assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        assert "passwordHash" not in response.text
        assert test_user.password_hash not in response.text

    async def test_cursor_pagination_visits_every_user_once(
        self, gql: GraphQLClient, superuser_token: str, db_session: AsyncSession
    ) -> None:
        await seed_users(db_session, 11)
        seen: list[str] = []
        after = None
        pages = 0
        while True:
            response = await gql(USERS, {"first": 5, "after": after}, token=superuser_token)
            assert response.errors == []
            connection = response.data["users"]
            assert connection["totalCount"] == 12
            assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
            seen.extend(emails(response.data))
            pages += 1
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]

        assert pages == 3
        assert len(seen) == len(set(seen)) == 12

    async def test_page_after_the_last_user_is_empty(
        self, gql: GraphQLClient, superuser_token: str
    ) -> None:
        first = await gql(USERS, {"first": 1}, token=superuser_token)
        after = first.data["users"]["pageInfo"]["endCursor"]

        response = await gql(USERS, {"first": 1, "after": after}, token=superuser_token)

        connection = response.data["users"]
        assert connection["edges"] == []
        assert connection["pageInfo"]["startCursor"] is None
        assert connection["pageInfo"]["endCursor"] is None
        assert connection["pageInfo"]["hasNextPage"] is False

    async def test_null_first_uses_the_default_page_size(
        self, gql: GraphQLClient, superuser_token: str, db_session: AsyncSession
    ) -> None:
        await seed_users(db_session, 21)

        response = await gql(USERS, {"first": None}, token=superuser_token)

        assert len(response.data["users"]["edges"]) == 20
        assert response.data["users"]["pageInfo"]["hasNextPage"] is True

    @pytest.mark.parametrize(
        ("user_filter", "expected"),
        [
            ({"search": "ALICE"}, ["alice@example.com"]),
            ({"search": "wonder"}, ["alice@example.com"]),
            ({"search": "example.org"}, ["bob@example.org"]),
            ({"search": "%"}, []),
            ({"search": "_"}, []),
            ({"isActive": False}, ["bob@example.org"]),
            ({"isSuperuser": True}, ["superuser@example.com"]),
            ({"isSuperuser": False, "isActive": True}, ["alice@example.com"]),
            ({"search": "example", "isActive": False}, ["bob@example.org"]),
        ],
    )
    async def test_filters(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        db_session: AsyncSession,
        user_filter: dict[str, Any],
        expected: list[str],
    ) -> None:
        await create_user(db_session, email="alice@example.com", full_name="Alice Wonder")
        await create_user(db_session, email="bob@example.org", is_active=False)

        response = await gql(USERS, {"filter": user_filter}, token=superuser_token)

        assert response.errors == []
        assert emails(response.data) == expected
        assert response.data["users"]["totalCount"] == len(expected)

    @pytest.mark.parametrize("search", ["a\x00b", "bell\x07", "x" * 321])
    async def test_unusable_search_text_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, search: str
    ) -> None:
        response = await gql(USERS, {"filter": {"search": search}}, token=superuser_token)

        assert response.error_fields() == ["search"]

    async def test_blank_search_matches_everyone(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        response = await gql(USERS, {"filter": {"search": "   "}}, token=superuser_token)

        assert response.data["users"]["totalCount"] == 2

    @pytest.mark.parametrize("first", [0, -1, 101, 10_000])
    async def test_first_out_of_range_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, first: int
    ) -> None:
        response = await gql(USERS, {"first": first}, token=superuser_token)

        assert response.error_fields() == ["first"]

    @pytest.mark.parametrize("after", ["garbage", "", "eyJ4IjogMX0", "%%%"])
    async def test_bad_cursor_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, after: str
    ) -> None:
        response = await gql(USERS, {"after": after}, token=superuser_token)

        assert response.error_fields() == ["after"]

    @pytest.mark.parametrize(
        "after",
        [
            cursor({"c": "0001-01-01T00:00:00+05:00", "i": "00000000-0000-0000-0000-000000000000"}),
            cursor("[" * 3000),
        ],
        ids=["before-year-one-in-utc", "deeply-nested"],
    )
    async def test_a_crafted_cursor_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, after: str
    ) -> None:
        response = await gql(
            "query ($a: String) { users(after: $a) { totalCount } }",
            {"a": after},
            token=superuser_token,
        )

        assert response.error_fields() == ["after"]

    async def test_ordinary_user_is_forbidden(self, gql: GraphQLClient, user_token: str) -> None:
        response = await gql(USERS, token=user_token)

        error = response.single_error("FORBIDDEN")
        assert error["message"] == "Superuser privileges required"
        assert response.data is None

    async def test_anonymous_is_unauthenticated(self, gql: GraphQLClient) -> None:
        response = await gql(USERS)

        response.single_error("UNAUTHENTICATED")


class TestUser:
    async def test_superuser_reads_a_user_by_id(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        response = await gql(USER, {"id": str(test_user.id)}, token=superuser_token)

        assert response.errors == []
        assert response.data["user"] == {
            "id": str(test_user.id),
            "email": test_user.email,
            "isSuperuser": False,
        }

    async def test_unknown_id_is_not_found(self, gql: GraphQLClient, superuser_token: str) -> None:
        response = await gql(USER, {"id": str(uuid.uuid4())}, token=superuser_token)

        error = response.single_error("NOT_FOUND")
        assert error["message"] == "User not found"
        assert error["path"] == ["user"]

    @pytest.mark.parametrize("bad_id", ["not-a-uuid", "", "1"])
    async def test_malformed_id_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, bad_id: str
    ) -> None:
        response = await gql(USER, {"id": bad_id}, token=superuser_token)

        assert response.error_fields() == ["id"]

    async def test_ordinary_user_is_forbidden_even_for_themselves(
        self, gql: GraphQLClient, user_token: str, test_user: User
    ) -> None:
        response = await gql(USER, {"id": str(test_user.id)}, token=user_token)

        response.single_error("FORBIDDEN")

    async def test_anonymous_is_unauthenticated(self, gql: GraphQLClient, test_user: User) -> None:
        response = await gql(USER, {"id": str(test_user.id)})

        response.single_error("UNAUTHENTICATED")
