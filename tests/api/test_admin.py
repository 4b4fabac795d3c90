"""Superusers managing accounts: createUser, updateUser, deleteUser."""

import uuid
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import ActionToken, AuthSession, RefreshToken, User
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient, GraphQLResponse, login_tokens
from tests.operations import (
    CREATE_USER,
    DELETE_USER,
    ME,
    REFRESH_TOKEN,
    REQUEST_PASSWORD_RESET,
    UPDATE_USER,
)

NEW_PASSWORD = "violet tangerine submarine 42"
LAST_SUPERUSER = "The last active superuser must stay an active superuser"

WEAK_PASSWORDS = [
    pytest.param("Short1!", id="too-short"),
    pytest.param("x" * 129, id="too-long"),
    pytest.param("password1234", id="common"),
]


async def login(gql: GraphQLClient, email: str, password: str) -> GraphQLResponse:
    return await gql(LOGIN, {"input": {"email": email, "password": password}})


async def create(gql: GraphQLClient, token: str | None, **account: Any) -> GraphQLResponse:
    return await gql(CREATE_USER, {"input": account}, token=token)


async def update(
    gql: GraphQLClient, token: str | None, user_id: uuid.UUID | str, **changes: Any
) -> GraphQLResponse:
    return await gql(UPDATE_USER, {"id": str(user_id), "input": changes}, token=token)


async def delete(
    gql: GraphQLClient, token: str | None, user_id: uuid.UUID | str
) -> GraphQLResponse:
    return await gql(DELETE_USER, {"id": str(user_id)}, token=token)


async def count(db_session: AsyncSession, model: type[Any]) -> int:
    return (await db_session.scalar(select(func.count()).select_from(model))) or 0


class TestCreateUser:
    async def test_creates_an_ordinary_account_by_default(
        self, gql: GraphQLClient, superuser_token: str
    ) -> None:
        response = await create(
            gql, superuser_token, email="  New.Person@EXAMPLE.com", password=STRONG_PASSWORD
        )

        assert response.errors == []
        user = response.data["createUser"]
        uuid.UUID(user["id"])
        assert user["email"] == "new.person@example.com"
        assert (user["fullName"], user["isActive"], user["isSuperuser"], user["isVerified"]) == (
            None,
            True,
            False,
            False,
        )
        assert user["createdAt"].endswith("+00:00")
        assert STRONG_PASSWORD not in response.text
        assert "argon2" not in response.text
        assert (await login(gql, "new.person@example.com", STRONG_PASSWORD)).errors == []

    async def test_flags_are_honoured(
        self, gql: GraphQLClient, superuser_token: str, db_session: AsyncSession
    ) -> None:
        response = await create(
            gql,
            superuser_token,
            email="admin2@example.com",
            password=STRONG_PASSWORD,
            fullName=" Second   Admin ",
            isSuperuser=True,
            isVerified=True,
        )

        user = response.data["createUser"]
        assert (user["fullName"], user["isSuperuser"], user["isVerified"]) == (
            "Second Admin",
            True,
            True,
        )
        stored = await db_session.get(User, uuid.UUID(user["id"]))
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$")

    async def test_inactive_account_cannot_sign_in(
        self, gql: GraphQLClient, superuser_token: str
    ) -> None:
        await create(
            gql,
            superuser_token,
            email="dormant@example.com",
            password=STRONG_PASSWORD,
            isActive=False,
        )

        response = await login(gql, "dormant@example.com", STRONG_PASSWORD)

        assert response.single_error("FORBIDDEN")["message"] == "This account is disabled"

    async def test_null_flags_mean_the_defaults(
        self, gql: GraphQLClient, superuser_token: str
    ) -> None:
        response = await create(
            gql,
            superuser_token,
            email="nulls@example.com",
            password=STRONG_PASSWORD,
            isActive=None,
            isSuperuser=None,
            isVerified=None,
        )

        user = response.data["createUser"]
        assert (user["isActive"], user["isSuperuser"], user["isVerified"]) == (True, False, False)

    @pytest.mark.parametrize("email", ["testuser@example.com", "TESTUSER@example.com"])
    async def test_taken_email_is_a_conflict(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_user: User,
        db_session: AsyncSession,
        email: str,
    ) -> None:
        response = await create(gql, superuser_token, email=email, password=STRONG_PASSWORD)

        error = response.single_error("CONFLICT")
        assert error["message"] == "An account with this email already exists"
        assert await count(db_session, User) == 2

    @pytest.mark.parametrize(
        ("account", "fields"),
        [
            ({"email": "not-an-email", "password": STRONG_PASSWORD}, ["email"]),
            ({"email": "", "password": STRONG_PASSWORD}, ["email"]),
            ({"email": "ok@example.com", "password": "short"}, ["password"]),
            ({"email": "ok@example.com", "password": "password1234"}, ["password"]),
            ({"email": "ok@example.com", "password": "ok@example.com"}, ["password"]),
            (
                {"email": "ok@example.com", "password": STRONG_PASSWORD, "fullName": "x" * 256},
                ["fullName"],
            ),
            (
                {"email": "nope", "password": "short", "fullName": "a\x00"},
                [
                    "email",
                    "fullName",
                    "password",
                ],
            ),
        ],
    )
    async def test_malformed_input_is_bad_user_input(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        db_session: AsyncSession,
        account: dict[str, str],
        fields: list[str],
    ) -> None:
        response = await create(gql, superuser_token, **account)

        assert response.error_fields() == fields
        assert await count(db_session, User) == 1

    async def test_ordinary_user_is_forbidden(
        self, gql: GraphQLClient, user_token: str, db_session: AsyncSession
    ) -> None:
        response = await create(
            gql,
            user_token,
            email="sneaky@example.com",
            password=STRONG_PASSWORD,
            isSuperuser=True,
        )

        error = response.single_error("FORBIDDEN")
        assert error["message"] == "Superuser privileges required"
        assert response.data is None
        assert await count(db_session, User) == 1

    async def test_anonymous_is_unauthenticated(
        self, gql: GraphQLClient, db_session: AsyncSession
    ) -> None:
        response = await create(gql, None, email="anon@example.com", password=STRONG_PASSWORD)

        response.single_error("UNAUTHENTICATED")
        assert await count(db_session, User) == 0


class TestUpdateUser:
    async def test_changes_profile_fields(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        response = await update(
            gql, superuser_token, test_user.id, fullName="  Renamed   User ", isVerified=True
        )

        assert response.errors == []
        user = response.data["updateUser"]
        assert (user["id"], user["email"], user["fullName"], user["isVerified"]) == (
            str(test_user.id),
            test_user.email,
            "Renamed User",
            True,
        )
        assert test_user.password_hash not in response.text

    async def test_omitted_fields_stay_as_they_are(
        self, gql: GraphQLClient, superuser_token: str, db_session: AsyncSession
    ) -> None:
        user = await create_user(
            db_session, email="kept@example.com", full_name="Kept Name", is_verified=True
        )

        response = await update(gql, superuser_token, user.id)

        updated = response.data["updateUser"]
        assert (
            updated["email"],
            updated["fullName"],
            updated["isActive"],
            updated["isSuperuser"],
            updated["isVerified"],
        ) == ("kept@example.com", "Kept Name", True, False, True)
        assert (await login(gql, "kept@example.com", USER_PASSWORD)).errors == []

    async def test_empty_full_name_clears_it(
        self, gql: GraphQLClient, superuser_token: str, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session, email="named@example.com", full_name="Named")

        response = await update(gql, superuser_token, user.id, fullName="")

        assert response.data["updateUser"]["fullName"] is None

    async def test_new_email_becomes_unverified(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        db_session: AsyncSession,
        outbox: list[EmailMessage],
    ) -> None:
        user = await create_user(db_session, email="old@example.com", is_verified=True)

        response = await update(gql, superuser_token, user.id, email="NEW@example.com")

        updated = response.data["updateUser"]
        assert (updated["email"], updated["isVerified"]) == ("new@example.com", False)
        assert (await login(gql, "new@example.com", USER_PASSWORD)).errors == []

    async def test_new_email_stays_verified_when_said_so(
        self, gql: GraphQLClient, superuser_token: str, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session, email="old@example.com")

        response = await update(
            gql, superuser_token, user.id, email="new@example.com", isVerified=True
        )

        updated = response.data["updateUser"]
        assert (updated["email"], updated["isVerified"]) == ("new@example.com", True)

    @pytest.mark.parametrize("email", ["superuser@example.com", "SUPERUSER@example.com"])
    async def test_taken_email_is_a_conflict(
        self, gql: GraphQLClient, superuser_token: str, test_user: User, email: str
    ) -> None:
        response = await update(gql, superuser_token, test_user.id, email=email, fullName="X")

        response.single_error("CONFLICT")
        check = await login(gql, test_user.email, USER_PASSWORD)
        assert check.data["login"]["user"]["email"] == "testuser@example.com"

    async def test_deactivating_ends_the_users_sessions(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        sessions = [
            await login_tokens(gql, email=test_user.email, password=USER_PASSWORD) for _ in range(2)
        ]

        response = await update(gql, superuser_token, test_user.id, isActive=False)

        assert response.data["updateUser"]["isActive"] is False
        for tokens in sessions:
            # The session check comes first: the token is dead, not merely disabled.
            me = await gql(ME, token=tokens.access)
            assert me.single_error("UNAUTHENTICATED")["message"] == "Session has ended"
            refresh = await gql(REFRESH_TOKEN, {"refreshToken": tokens.refresh})
            assert refresh.single_error("UNAUTHENTICATED")["message"] == "Session has ended"
        relogin = await login(gql, test_user.email, USER_PASSWORD)
        assert relogin.single_error("FORBIDDEN")["message"] == "This account is disabled"

    async def test_reactivating_lets_the_user_sign_in_but_old_sessions_stay_dead(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        old = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)
        await update(gql, superuser_token, test_user.id, isActive=False)

        response = await update(gql, superuser_token, test_user.id, isActive=True)

        assert response.data["updateUser"]["isActive"] is True
        (await gql(ME, token=old.access)).single_error("UNAUTHENTICATED")
        assert (await login(gql, test_user.email, USER_PASSWORD)).errors == []

    async def test_setting_the_password_ends_the_users_sessions(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        old = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)

        response = await update(gql, superuser_token, test_user.id, password=NEW_PASSWORD)

        assert response.errors == []
        assert NEW_PASSWORD not in response.text
        (await gql(ME, token=old.access)).single_error("UNAUTHENTICATED")
        (await login(gql, test_user.email, USER_PASSWORD)).single_error("UNAUTHENTICATED")
        assert (await login(gql, test_user.email, NEW_PASSWORD)).errors == []

    async def test_profile_changes_leave_sessions_alone(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        tokens = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)

        await update(gql, superuser_token, test_user.id, fullName="Renamed", isVerified=True)

        assert (await gql(ME, token=tokens.access)).errors == []

    async def test_other_users_sessions_are_untouched(
        self, gql: GraphQLClient, superuser_token: str, test_user: User, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="bystander@example.com")
        bystander = await login_tokens(gql, email="bystander@example.com", password=USER_PASSWORD)

        await update(gql, superuser_token, test_user.id, isActive=False)

        assert (await gql(ME, token=bystander.access)).errors == []
        assert (await gql(ME, token=superuser_token)).errors == []

    async def test_promoting_grants_admin_rights(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        tokens = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)

        response = await update(gql, superuser_token, test_user.id, isSuperuser=True)

        assert response.data["updateUser"]["isSuperuser"] is True
        listing = await gql("query { users { totalCount } }", token=tokens.access)
        assert listing.errors == []

    async def test_demoting_a_superuser_with_another_left(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        other = await create_user(db_session, email="admin2@example.com", is_superuser=True)
        other_tokens = await login_tokens(gql, email="admin2@example.com", password=USER_PASSWORD)

        response = await update(gql, superuser_token, other.id, isSuperuser=False)

        assert response.data["updateUser"]["isSuperuser"] is False
        (await gql("query { users { totalCount } }", token=other_tokens.access)).single_error(
            "FORBIDDEN"
        )

    @pytest.mark.parametrize(
        "changes",
        [{"isActive": False}, {"isSuperuser": False}, {"isActive": False, "isSuperuser": False}],
    )
    async def test_last_active_superuser_cannot_be_deactivated_or_demoted(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_superuser: User,
        db_session: AsyncSession,
        changes: dict[str, bool],
    ) -> None:
        # An inactive superuser does not count.
        await create_user(
            db_session, email="retired@example.com", is_superuser=True, is_active=False
        )

        response = await update(gql, superuser_token, test_superuser.id, **changes)

        error = response.single_error("CONFLICT")
        assert error["message"] == LAST_SUPERUSER
        assert response.data is None
        me = await gql(ME, token=superuser_token)
        assert me.data["me"]["isSuperuser"] is True
        assert me.data["me"]["isActive"] is True

    async def test_superuser_may_step_down_when_another_remains(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        await create_user(db_session, email="admin2@example.com", is_superuser=True)

        response = await update(gql, superuser_token, test_superuser.id, isSuperuser=False)

        assert response.data["updateUser"]["isSuperuser"] is False
        (await gql("query { users { totalCount } }", token=superuser_token)).single_error(
            "FORBIDDEN"
        )

    async def test_superuser_may_deactivate_themselves_when_another_remains(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        await create_user(db_session, email="admin2@example.com", is_superuser=True)

        response = await update(gql, superuser_token, test_superuser.id, isActive=False)

        assert response.data["updateUser"]["isActive"] is False
        (await gql(ME, token=superuser_token)).single_error("UNAUTHENTICATED")

    async def test_changes_that_keep_power_need_no_other_superuser(
        self, gql: GraphQLClient, superuser_token: str, test_superuser: User
    ) -> None:
        response = await update(
            gql, superuser_token, test_superuser.id, isActive=True, isSuperuser=True, fullName="Me"
        )

        assert response.errors == []

    @pytest.mark.parametrize(
        ("changes", "fields"),
        [
            ({"email": "not-an-email"}, ["email"]),
            ({"email": ""}, ["email"]),
            ({"fullName": "x" * 256}, ["fullName"]),
            ({"fullName": "bell\x07"}, ["fullName"]),
            ({"email": "nope", "fullName": "a\x00b"}, ["email", "fullName"]),
            *[
                pytest.param({"password": weak.values[0]}, ["password"], id=f"password-{weak.id}")
                for weak in WEAK_PASSWORDS
            ],
            ({"password": "testuser@example.com"}, ["password"]),
        ],
    )
    async def test_malformed_input_is_bad_user_input(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_user: User,
        changes: dict[str, str],
        fields: list[str],
    ) -> None:
        tokens = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)

        response = await update(gql, superuser_token, test_user.id, **changes)

        assert sorted(response.error_fields()) == sorted(fields)
        assert (await gql(ME, token=tokens.access)).data["me"]["email"] == test_user.email

    async def test_unknown_id_is_not_found(self, gql: GraphQLClient, superuser_token: str) -> None:
        response = await update(gql, superuser_token, uuid.uuid4(), fullName="Ghost")

        error = response.single_error("NOT_FOUND")
        assert error["message"] == "User not found"
        assert error["path"] == ["updateUser"]

    @pytest.mark.parametrize("bad_id", ["not-a-uuid", "", "1"])
    async def test_malformed_id_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, bad_id: str
    ) -> None:
        response = await update(gql, superuser_token, bad_id, fullName="X")

        assert response.error_fields() == ["id"]

    async def test_ordinary_user_is_forbidden_even_for_themselves(
        self, gql: GraphQLClient, user_token: str, test_user: User
    ) -> None:
        response = await update(gql, user_token, test_user.id, isSuperuser=True)

        response.single_error("FORBIDDEN")
        assert (await gql(ME, token=user_token)).data["me"]["isSuperuser"] is False

    async def test_anonymous_is_unauthenticated(self, gql: GraphQLClient, test_user: User) -> None:
        response = await update(gql, None, test_user.id, isActive=False)

        response.single_error("UNAUTHENTICATED")


class TestDeleteUser:
    async def test_deletes_the_account_and_everything_it_owns(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_user: User,
        db_session: AsyncSession,
        outbox: list[EmailMessage],
    ) -> None:
        tokens = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)
        await gql(REQUEST_PASSWORD_RESET, {"email": test_user.email})
        assert len(outbox) == 1

        response = await delete(gql, superuser_token, test_user.id)

        assert response.errors == []
        assert response.data == {"deleteUser": True}
        me = await gql(ME, token=tokens.access)
        me.single_error("UNAUTHENTICATED")
        refresh = await gql(REFRESH_TOKEN, {"refreshToken": tokens.refresh})
        assert refresh.single_error("UNAUTHENTICATED")["message"] == "Invalid refresh token"
        relogin = await login(gql, test_user.email, USER_PASSWORD)
        assert relogin.single_error("UNAUTHENTICATED")["message"] == "Invalid credentials"
        assert await db_session.scalar(select(User.id).where(User.id == test_user.id)) is None
        user_sessions = select(func.count()).where(AuthSession.user_id == test_user.id)
        assert await db_session.scalar(user_sessions) == 0
        # Only the superuser's own session and refresh token are left.
        assert await count(db_session, AuthSession) == 1
        assert await count(db_session, RefreshToken) == 1
        assert await count(db_session, ActionToken) == 0

    async def test_email_can_be_registered_again(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        await delete(gql, superuser_token, test_user.id)

        response = await create(
            gql, superuser_token, email=test_user.email, password=STRONG_PASSWORD
        )

        assert response.errors == []
        assert response.data["createUser"]["id"] != str(test_user.id)

    async def test_deleting_another_superuser_is_allowed(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        other = await create_user(db_session, email="admin2@example.com", is_superuser=True)

        response = await delete(gql, superuser_token, other.id)

        assert response.data == {"deleteUser": True}

    async def test_deleting_yourself_is_forbidden(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        # Even with another superuser left to take over.
        await create_user(db_session, email="admin2@example.com", is_superuser=True)

        response = await delete(gql, superuser_token, test_superuser.id)

        error = response.single_error("FORBIDDEN")
        assert error["message"] == "You cannot delete your own account"
        assert (await gql(ME, token=superuser_token)).errors == []

    async def test_deleting_an_inactive_superuser_is_allowed(
        self,
        gql: GraphQLClient,
        superuser_token: str,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        retired = await create_user(
            db_session, email="retired@example.com", is_superuser=True, is_active=False
        )

        response = await delete(gql, superuser_token, retired.id)

        assert response.data == {"deleteUser": True}

    async def test_unknown_id_is_not_found(self, gql: GraphQLClient, superuser_token: str) -> None:
        response = await delete(gql, superuser_token, uuid.uuid4())

        assert response.single_error("NOT_FOUND")["message"] == "User not found"

    async def test_deleting_twice_is_not_found(
        self, gql: GraphQLClient, superuser_token: str, test_user: User
    ) -> None:
        await delete(gql, superuser_token, test_user.id)

        response = await delete(gql, superuser_token, test_user.id)

        response.single_error("NOT_FOUND")

    @pytest.mark.parametrize("bad_id", ["not-a-uuid", "", "1"])
    async def test_malformed_id_is_bad_user_input(
        self, gql: GraphQLClient, superuser_token: str, bad_id: str
    ) -> None:
        response = await delete(gql, superuser_token, bad_id)

        assert response.error_fields() == ["id"]

    async def test_ordinary_user_is_forbidden(
        self,
        gql: GraphQLClient,
        user_token: str,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        response = await delete(gql, user_token, test_superuser.id)

        response.single_error("FORBIDDEN")
        assert await count(db_session, User) == 2

    async def test_anonymous_is_unauthenticated(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        response = await delete(gql, None, test_user.id)

        response.single_error("UNAUTHENTICATED")
        assert await count(db_session, User) == 1
