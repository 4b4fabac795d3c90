from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import User
from gql_app.models.base import utc_now
from tests.graphql import GraphQLClient

ME = "query { me { id email fullName isActive isSuperuser isVerified createdAt updatedAt } }"


class TestMe:
    async def test_returns_the_signed_in_user(
        self, gql: GraphQLClient, test_user: User, user_token: str
    ) -> None:
        response = await gql(ME, token=user_token)

        assert response.errors == []
        me = response.data["me"]
        assert me["id"] == str(test_user.id)
        assert me["email"] == "testuser@example.com"
        assert me["isActive"] is True
        assert me["isSuperuser"] is False
        assert me["createdAt"].endswith("+00:00")
        assert test_user.password_hash not in response.text

    async def test_without_token_is_unauthenticated(self, gql: GraphQLClient) -> None:
        response = await gql(ME)

        error = response.single_error("UNAUTHENTICATED")
        assert error["message"] == "Authentication required"
        assert response.data is None

    @pytest.mark.parametrize(
        "authorization",
        ["Bearer not-a-jwt", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer a.b.c"],
    )
    async def test_garbage_authorization_is_unauthenticated(
        self, gql: GraphQLClient, authorization: str
    ) -> None:
        response = await gql(ME, headers={"Authorization": authorization})

        response.single_error("UNAUTHENTICATED")

    async def test_expired_token_is_unauthenticated(
        self, gql: GraphQLClient, user_token: str
    ) -> None:
        with freeze_time(utc_now() + timedelta(hours=1)):
            response = await gql(ME, token=user_token)

        error = response.single_error("UNAUTHENTICATED")
        assert error["message"] == "Access token has expired"

    async def test_token_of_revoked_session_is_unauthenticated(
        self, gql: GraphQLClient, user_token: str, db_session: AsyncSession, test_user: User
    ) -> None:
        await db_session.refresh(test_user, ["sessions"])
        for auth_session in test_user.sessions:
            auth_session.revoked_at = utc_now()
        await db_session.commit()

        response = await gql(ME, token=user_token)

        error = response.single_error("UNAUTHENTICATED")
        assert error["message"] == "Session has ended"

    async def test_deactivated_account_is_forbidden(
        self, gql: GraphQLClient, user_token: str, db_session: AsyncSession, test_user: User
    ) -> None:
        test_user.is_active = False
        await db_session.commit()

        response = await gql(ME, token=user_token)

        response.single_error("FORBIDDEN")
