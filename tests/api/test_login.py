import hashlib

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.models import AuthSession, RefreshToken, SigningKey, User
from tests.factories import USER_PASSWORD, bcrypt_hashed, create_user
from tests.graphql import LOGIN, GraphQLClient


def credentials(email: str, password: str) -> dict[str, dict[str, str]]:
    return {"input": {"email": email, "password": password}}


class TestLogin:
    async def test_valid_credentials_return_tokens_and_the_user(
        self, gql: GraphQLClient, test_user: User, settings: Settings
    ) -> None:
        response = await gql(LOGIN, credentials("testuser@example.com", USER_PASSWORD))

        assert response.errors == []
        payload = response.data["login"]
        assert payload["tokenType"] == "Bearer"
        assert payload["expiresIn"] == settings.access_token_expire_seconds
        assert payload["user"] == {"id": str(test_user.id), "email": "testuser@example.com"}
        assert payload["refreshToken"] != payload["accessToken"]
        assert test_user.password_hash not in response.text

    async def test_access_token_carries_the_documented_claims(
        self, gql: GraphQLClient, test_user: User, settings: Settings, db_session: AsyncSession
    ) -> None:
        response = await gql(LOGIN, credentials("testuser@example.com", USER_PASSWORD))

        token = response.data["login"]["accessToken"]
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "ES256"
        (stored_key,) = (await db_session.scalars(select(SigningKey))).all()
        assert header["kid"] == stored_key.kid
        claims = jwt.decode(
            token,
            jwt.PyJWK(stored_key.public_jwk).key,
            algorithms=["ES256"],
            audience=settings.jwt_audience,
        )
        assert claims["sub"] == str(test_user.id)
        assert claims["type"] == "access"
        assert claims["iss"] == settings.jwt_issuer
        assert claims["exp"] - claims["iat"] == settings.access_token_expire_seconds
        assert claims["jti"]
        auth_session = await db_session.scalar(select(AuthSession))
        assert auth_session is not None
        assert claims["sid"] == str(auth_session.id)

    async def test_refresh_token_is_stored_only_as_a_hash(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        response = await gql(
            LOGIN,
            credentials("testuser@example.com", USER_PASSWORD),
            headers={"User-Agent": "pytest-browser/1.0"},
        )

        refresh_token = response.data["login"]["refreshToken"]
        auth_session = await db_session.scalar(select(AuthSession))
        stored = await db_session.scalar(select(RefreshToken))
        assert auth_session is not None
        assert stored is not None
        assert stored.session_id == auth_session.id
        assert stored.token_hash == hashlib.sha256(refresh_token.encode()).hexdigest()
        assert stored.rotated_at is None
        assert auth_session.user_agent == "pytest-browser/1.0"
        assert auth_session.revoked_at is None
        assert auth_session.expires_at > auth_session.created_at

    async def test_each_login_starts_its_own_session(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        for _ in range(2):
            response = await gql(LOGIN, credentials("testuser@example.com", USER_PASSWORD))
            assert response.errors == []

        sessions = (await db_session.scalars(select(AuthSession))).all()
        assert len(sessions) == 2

    async def test_email_is_matched_in_any_letter_case(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        response = await gql(LOGIN, credentials("  TestUser@EXAMPLE.com ", USER_PASSWORD))

        assert response.errors == []

    async def test_wrong_password_is_unauthenticated(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        response = await gql(LOGIN, credentials("testuser@example.com", "WrongPassword123!"))

        error = response.single_error("UNAUTHENTICATED")
        assert error["message"] == "Invalid credentials"
        assert response.data is None
        assert await db_session.scalar(select(AuthSession)) is None

    async def test_unknown_email_gets_the_same_answer_as_a_wrong_password(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        unknown = await gql(LOGIN, credentials("nobody@example.com", USER_PASSWORD))
        wrong = await gql(LOGIN, credentials("testuser@example.com", "WrongPassword123!"))

        assert unknown.errors[0]["message"] == wrong.errors[0]["message"] == "Invalid credentials"
        assert unknown.errors[0]["extensions"] == wrong.errors[0]["extensions"]

    async def test_password_is_case_sensitive(self, gql: GraphQLClient, test_user: User) -> None:
        response = await gql(LOGIN, credentials("testuser@example.com", USER_PASSWORD.upper()))

        response.single_error("UNAUTHENTICATED")

    async def test_deactivated_account_is_forbidden_after_a_correct_password(
        self, gql: GraphQLClient, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="gone@example.com", is_active=False)

        correct = await gql(LOGIN, credentials("gone@example.com", USER_PASSWORD))
        wrong = await gql(LOGIN, credentials("gone@example.com", "WrongPassword123!"))

        correct.single_error("FORBIDDEN")
        wrong.single_error("UNAUTHENTICATED")

    @pytest.mark.usefixtures("standard_password_hashing")
    async def test_bcrypt_hash_is_upgraded_to_argon2id(
        self, gql: GraphQLClient, db_session: AsyncSession
    ) -> None:
        user = await create_user(
            db_session, email="legacy@example.com", password_hash_value=bcrypt_hashed(USER_PASSWORD)
        )

        response = await gql(LOGIN, credentials("legacy@example.com", USER_PASSWORD))

        assert response.errors == []
        await db_session.refresh(user)
        assert user.password_hash.startswith("$argon2id$")

    @pytest.mark.parametrize(
        ("email", "password", "field"),
        [
            ("not-an-email", USER_PASSWORD, "email"),
            ("", USER_PASSWORD, "email"),
            ("testuser@example.com", "", "password"),
            ("testuser@example.com", "x" * 129, "password"),
        ],
    )
    async def test_malformed_input_is_bad_user_input(
        self, gql: GraphQLClient, test_user: User, email: str, password: str, field: str
    ) -> None:
        response = await gql(LOGIN, credentials(email, password))

        assert response.error_fields() == [field]
