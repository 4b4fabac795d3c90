import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import User
from tests.factories import STRONG_PASSWORD
from tests.graphql import GraphQLClient

REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) { id email fullName isActive isSuperuser isVerified createdAt }
}
"""


async def user_count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(User))).scalar_one()


class TestRegister:
    async def test_creates_an_ordinary_unverified_account(
        self, gql: GraphQLClient, db_session: AsyncSession
    ) -> None:
        response = await gql(
            REGISTER,
            {
                "input": {
                    "email": "New.Person@Example.COM",
                    "password": STRONG_PASSWORD,
                    "fullName": "  New   Person ",
                }
            },
        )

        assert response.errors == []
        user = response.data["register"]
        assert user["email"] == "new.person@example.com"
        assert user["fullName"] == "New Person"
        assert (user["isActive"], user["isSuperuser"], user["isVerified"]) == (True, False, False)
        stored = await db_session.scalar(select(User).where(User.email == user["email"]))
        assert stored is not None
        assert str(stored.id) == user["id"]
        assert stored.password_hash.startswith("$argon2id$")
        assert stored.password_hash not in response.text
        assert STRONG_PASSWORD not in response.text

    async def test_client_cannot_make_itself_superuser(self, gql: GraphQLClient) -> None:
        response = await gql(
            REGISTER,
            {"input": {"email": "a@example.com", "password": STRONG_PASSWORD, "isSuperuser": True}},
        )

        assert response.error_codes == ["BAD_USER_INPUT"]

    @pytest.mark.parametrize(
        "email", ["testuser@example.com", "TESTUSER@EXAMPLE.COM", "TestUser@Example.com"]
    )
    async def test_existing_email_in_any_case_is_a_conflict(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession, email: str
    ) -> None:
        response = await gql(REGISTER, {"input": {"email": email, "password": STRONG_PASSWORD}})

        error = response.single_error("CONFLICT")
        assert error["message"] == "An account with this email already exists"
        assert await user_count(db_session) == 1

    @pytest.mark.parametrize(
        "email",
        [
            "",
            "   ",
            "not-an-email",
            "@example.com",
            "user@",
            "user@@example.com",
            "user@example",
            "user name@example.com",
            f"{'a' * 310}@example.com",
        ],
    )
    async def test_bad_email_is_bad_user_input_on_email(
        self, gql: GraphQLClient, db_session: AsyncSession, email: str
    ) -> None:
        response = await gql(REGISTER, {"input": {"email": email, "password": STRONG_PASSWORD}})

        assert response.error_fields() == ["email"]
        assert await user_count(db_session) == 0

    @pytest.mark.parametrize(
        ("password", "reason"),
        [
            ("", "at least 12 characters"),
            ("short1!", "at least 12 characters"),
            ("elevenchars", "at least 12 characters"),
            ("x" * 129, "at most 128 characters"),
            ("password1234", "too common"),
            ("123456789012", "too common"),
            ("qwertyuiopas", "too common"),
            ("aaaaaaaaaaaa", "too common"),
            ("iloveyou1234", "too common"),
            ("someone@example.com", "same as the email"),
            ("SOMEONE@EXAMPLE.COM", "same as the email"),
        ],
    )
    async def test_bad_password_is_bad_user_input_on_password(
        self, gql: GraphQLClient, db_session: AsyncSession, password: str, reason: str
    ) -> None:
        response = await gql(
            REGISTER, {"input": {"email": "someone@example.com", "password": password}}
        )

        error = response.single_error("BAD_USER_INPUT")
        assert error["extensions"]["fields"][0]["field"] == "password"
        assert reason in error["extensions"]["fields"][0]["message"]
        assert await user_count(db_session) == 0

    @pytest.mark.parametrize(
        "password",
        [
            "correct horse battery staple",
            "Tr0ub4dor&3xyz",
            "x7$Lq!9vRt#2",
            "żółta gęś liczy chmury",
        ],
    )
    async def test_strong_passwords_without_composition_rules_are_accepted(
        self, gql: GraphQLClient, password: str
    ) -> None:
        response = await gql(
            REGISTER, {"input": {"email": "someone@example.com", "password": password}}
        )

        assert response.errors == []

    async def test_longest_allowed_password_is_accepted(self, gql: GraphQLClient) -> None:
        password = "correct horse battery staple " * 4 + "x" * 12
        assert len(password) == 128

        response = await gql(
            REGISTER, {"input": {"email": "someone@example.com", "password": password}}
        )

        assert response.errors == []

    async def test_every_problem_is_reported_at_once(self, gql: GraphQLClient) -> None:
        response = await gql(
            REGISTER, {"input": {"email": "nope", "password": "short", "fullName": "x" * 256}}
        )

        assert sorted(response.error_fields()) == ["email", "fullName", "password"]

    async def test_missing_required_field_is_bad_user_input(self, gql: GraphQLClient) -> None:
        response = await gql(REGISTER, {"input": {"email": "a@example.com"}})

        error = response.single_error("BAD_USER_INPUT")
        assert error["extensions"]["fields"][0]["field"] == "input"
