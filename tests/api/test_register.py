from email.message import EmailMessage

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
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
        assert error["extensions"]["reason"] == "EMAIL_TAKEN"
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


class TestRegistrationConcealingExisting:
    """REGISTRATION_CONCEALS_EXISTING=true: an address in use answers like a new one."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"registration_conceals_existing": True})

    async def test_an_address_in_use_answers_like_a_new_registration(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        taken = await gql(
            REGISTER, {"input": {"email": "TestUser@example.com", "password": STRONG_PASSWORD}}
        )
        new = await gql(
            REGISTER, {"input": {"email": "newcomer@example.com", "password": STRONG_PASSWORD}}
        )

        assert taken.errors == new.errors == []
        answered, fresh = taken.data["register"], new.data["register"]
        assert set(answered) == set(fresh)
        assert answered["email"] == "testuser@example.com"
        assert answered["id"] != str(test_user.id)
        flags = ("isActive", "isSuperuser", "isVerified", "fullName")
        assert [answered[flag] for flag in flags] == [fresh[flag] for flag in flags]

    async def test_the_existing_account_is_left_alone_and_its_owner_is_told(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        outbox: list[EmailMessage],
    ) -> None:
        password_hash = test_user.password_hash

        response = await gql(
            REGISTER,
            {"input": {"email": test_user.email, "password": STRONG_PASSWORD, "fullName": "X"}},
        )

        assert response.errors == []
        assert await user_count(db_session) == 1
        await db_session.refresh(test_user)
        assert (test_user.password_hash, test_user.full_name) == (password_hash, None)
        [notice] = outbox
        assert notice["To"] == test_user.email
        assert notice["Subject"] == "Someone tried to sign up with your email address"
        assert "No new account was created" in notice.get_content()
        # Nothing in it works as a link to the account: no token travels.
        assert "token=" not in notice.get_content()

    async def test_a_new_address_still_registers_and_gets_its_verification_link(
        self, gql: GraphQLClient, db_session: AsyncSession, outbox: list[EmailMessage]
    ) -> None:
        response = await gql(
            REGISTER, {"input": {"email": "newcomer@example.com", "password": STRONG_PASSWORD}}
        )

        assert response.errors == []
        assert await user_count(db_session) == 1
        [message] = outbox
        assert message["Subject"] == "Confirm your email address"

    async def test_invalid_input_is_still_refused_as_input(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        response = await gql(REGISTER, {"input": {"email": test_user.email, "password": "short"}})

        error = response.single_error("BAD_USER_INPUT")
        assert error["extensions"]["fields"][0]["code"] == "TOO_SHORT"
