"""Self-service account operations: profile, password change and reset, email verification."""

import hashlib
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.models import ActionToken, AuthSession, User
from tests.conftest import LogRecords
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user
from tests.fixtures.email import FailingEmailBackend
from tests.graphql import LOGIN, GraphQLClient, GraphQLResponse, Tokens, login_tokens
from tests.mail import RESET_PATH, VERIFY_PATH, action_link, action_token
from tests.operations import (
    CHANGE_PASSWORD,
    ME,
    REFRESH_TOKEN,
    REQUEST_EMAIL_VERIFICATION,
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    UPDATE_ME,
    VERIFY_EMAIL,
)

T0 = datetime.fromisoformat("2030-01-01T12:00:00+00:00")
NEW_PASSWORD = "violet tangerine submarine 42"
INVALID_LINK = "This link is invalid or has expired"

REGISTER = """
mutation Register($input: RegisterInput!) { register(input: $input) { id isVerified } }
"""

# Password policy violations, each refused wherever a new password is set.
WEAK_PASSWORDS = [
    pytest.param("Short1!", id="too-short"),
    pytest.param("x" * 129, id="too-long"),
    pytest.param("password1234", id="common"),
    pytest.param("testuser@example.com", id="the-email"),
]


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(T0, real_asyncio=True) as frozen:
        yield frozen


async def sign_in(gql: GraphQLClient, email: str, password: str = USER_PASSWORD) -> Tokens:
    return await login_tokens(gql, email=email, password=password)


async def login(gql: GraphQLClient, email: str, password: str) -> GraphQLResponse:
    return await gql(LOGIN, {"input": {"email": email, "password": password}})


async def assert_signed_in(gql: GraphQLClient, tokens: Tokens) -> None:
    response = await gql(ME, token=tokens.access)
    assert response.errors == [], response.body


async def assert_session_ended(gql: GraphQLClient, tokens: Tokens) -> None:
    me = await gql(ME, token=tokens.access)
    assert me.single_error("UNAUTHENTICATED")["message"] == "Session has ended"
    refresh = await gql(REFRESH_TOKEN, {"refreshToken": tokens.refresh})
    assert refresh.single_error("UNAUTHENTICATED")["message"] == "Session has ended"


async def request_reset(gql: GraphQLClient, email: str) -> GraphQLResponse:
    return await gql(REQUEST_PASSWORD_RESET, {"email": email})


async def reset_token(gql: GraphQLClient, outbox: list[EmailMessage], email: str) -> str:
    sent_before = len(outbox)
    response = await request_reset(gql, email)
    assert response.data == {"requestPasswordReset": True}, response.body
    assert len(outbox) == sent_before + 1
    return action_token(outbox[-1], RESET_PATH)


async def reset(gql: GraphQLClient, token: str, password: str = NEW_PASSWORD) -> GraphQLResponse:
    return await gql(RESET_PASSWORD, {"input": {"token": token, "newPassword": password}})


async def verification_token(
    gql: GraphQLClient, outbox: list[EmailMessage], access_token: str
) -> str:
    sent_before = len(outbox)
    response = await gql(REQUEST_EMAIL_VERIFICATION, token=access_token)
    assert response.data == {"requestEmailVerification": True}, response.body
    assert len(outbox) == sent_before + 1
    return action_token(outbox[-1], VERIFY_PATH)


async def verify(gql: GraphQLClient, token: str) -> GraphQLResponse:
    return await gql(VERIFY_EMAIL, {"token": token})


async def change_password(
    gql: GraphQLClient, access_token: str | None, current: str, new: str
) -> GraphQLResponse:
    return await gql(
        CHANGE_PASSWORD,
        {"input": {"currentPassword": current, "newPassword": new}},
        token=access_token,
    )


async def update_me(
    gql: GraphQLClient, access_token: str | None, **changes: str
) -> GraphQLResponse:
    return await gql(UPDATE_ME, {"input": changes}, token=access_token)


class TestUpdateMe:
    async def test_changes_the_full_name(
        self, gql: GraphQLClient, test_user: User, user_token: str, outbox: list[EmailMessage]
    ) -> None:
        response = await update_me(gql, user_token, fullName="  Ada   Lovelace ")

        assert response.errors == []
        me = response.data["updateMe"]
        assert me["fullName"] == "Ada Lovelace"
        assert me["email"] == test_user.email
        assert outbox == []
        assert test_user.password_hash not in response.text
        assert (await gql(ME, token=user_token)).data["me"]["fullName"] == "Ada Lovelace"

    @pytest.mark.parametrize("blank", ["", "   "])
    async def test_blank_full_name_clears_it(
        self, gql: GraphQLClient, db_session: AsyncSession, blank: str
    ) -> None:
        await create_user(db_session, email="named@example.com", full_name="Named Person")
        tokens = await sign_in(gql, "named@example.com")

        response = await update_me(gql, tokens.access, fullName=blank)

        assert response.data["updateMe"]["fullName"] is None

    async def test_omitted_and_null_fields_stay_as_they_are(
        self, gql: GraphQLClient, db_session: AsyncSession, outbox: list[EmailMessage]
    ) -> None:
        await create_user(
            db_session, email="named@example.com", full_name="Named Person", is_verified=True
        )
        tokens = await sign_in(gql, "named@example.com")

        omitted = await update_me(gql, tokens.access)
        nulls = await gql(
            UPDATE_ME, {"input": {"fullName": None, "email": None}}, token=tokens.access
        )

        for response in (omitted, nulls):
            me = response.data["updateMe"]
            assert (me["email"], me["fullName"], me["isVerified"]) == (
                "named@example.com",
                "Named Person",
                True,
            )
        assert outbox == []

    async def test_new_email_is_unverified_and_gets_a_confirmation_link(
        self,
        gql: GraphQLClient,
        db_session: AsyncSession,
        outbox: list[EmailMessage],
        settings: Settings,
    ) -> None:
        await create_user(db_session, email="old@example.com", is_verified=True)
        tokens = await sign_in(gql, "old@example.com")

        response = await update_me(gql, tokens.access, email="  New.Address@EXAMPLE.com ")

        assert response.errors == []
        me = response.data["updateMe"]
        assert me["email"] == "new.address@example.com"
        assert me["isVerified"] is False
        [message, notice] = outbox
        assert message["To"] == "new.address@example.com"
        assert message["Subject"] == "Confirm your email address"
        assert action_link(message).startswith(f"{settings.frontend_base_url}{VERIFY_PATH}?")
        # The address the account left hears where it went, partly masked.
        assert (notice["To"], notice["Subject"]) == (
            "old@example.com",
            "Your email address was changed",
        )
        assert "n***@example.com" in notice.get_content()
        verified = await verify(gql, action_token(message, VERIFY_PATH))
        assert verified.errors == []
        assert verified.data["verifyEmail"]["isVerified"] is True
        assert (await login(gql, "new.address@example.com", USER_PASSWORD)).errors == []
        (await login(gql, "old@example.com", USER_PASSWORD)).single_error("UNAUTHENTICATED")

    async def test_same_email_in_another_case_changes_nothing(
        self, gql: GraphQLClient, db_session: AsyncSession, outbox: list[EmailMessage]
    ) -> None:
        await create_user(db_session, email="same@example.com", is_verified=True)
        tokens = await sign_in(gql, "same@example.com")

        response = await update_me(gql, tokens.access, email="SAME@example.com")

        me = response.data["updateMe"]
        assert (me["email"], me["isVerified"]) == ("same@example.com", True)
        assert outbox == []

    async def test_link_sent_for_the_old_address_stops_working(
        self, gql: GraphQLClient, test_user: User, user_token: str, outbox: list[EmailMessage]
    ) -> None:
        old_link_token = await verification_token(gql, outbox, user_token)
        await update_me(gql, user_token, email="moved@example.com")

        response = await verify(gql, old_link_token)

        assert response.error_fields() == ["token"]
        assert (await gql(ME, token=user_token)).data["me"]["isVerified"] is False

    @pytest.mark.parametrize("taken", ["superuser@example.com", "SuperUser@Example.COM"])
    async def test_email_of_another_account_is_a_conflict(
        self,
        gql: GraphQLClient,
        test_superuser: User,
        user_token: str,
        outbox: list[EmailMessage],
        taken: str,
    ) -> None:
        response = await update_me(gql, user_token, email=taken, fullName="Changed Too")

        error = response.single_error("CONFLICT")
        assert error["message"] == "An account with this email already exists"
        assert response.data is None
        me = (await gql(ME, token=user_token)).data["me"]
        assert (me["email"], me["fullName"]) == ("testuser@example.com", None)
        assert outbox == []

    @pytest.mark.parametrize(
        ("changes", "fields"),
        [
            ({"email": "not-an-email"}, ["email"]),
            ({"email": ""}, ["email"]),
            ({"email": "a@"}, ["email"]),
            ({"email": "x" * 320 + "@example.com"}, ["email"]),
            ({"fullName": "x" * 256}, ["fullName"]),
            ({"fullName": "bell\x07"}, ["fullName"]),
            ({"fullName": "a\x00b", "email": "nope"}, ["fullName", "email"]),
        ],
    )
    async def test_malformed_input_is_bad_user_input(
        self,
        gql: GraphQLClient,
        test_user: User,
        user_token: str,
        changes: dict[str, str],
        fields: list[str],
    ) -> None:
        response = await update_me(gql, user_token, **changes)

        assert response.error_fields() == fields
        me = (await gql(ME, token=user_token)).data["me"]
        assert (me["email"], me["fullName"]) == ("testuser@example.com", None)

    async def test_anonymous_is_unauthenticated(self, gql: GraphQLClient) -> None:
        response = await update_me(gql, None, fullName="Nobody")

        response.single_error("UNAUTHENTICATED")
        assert response.data is None


class TestChangePassword:
    async def test_sets_the_new_password(
        self, gql: GraphQLClient, test_user: User, user_token: str
    ) -> None:
        response = await change_password(gql, user_token, USER_PASSWORD, NEW_PASSWORD)

        assert response.errors == []
        assert response.data == {"changePassword": True}
        assert (await login(gql, test_user.email, NEW_PASSWORD)).errors == []
        old = await login(gql, test_user.email, USER_PASSWORD)
        assert old.single_error("UNAUTHENTICATED")["message"] == "Invalid credentials"

    async def test_ends_every_other_session_and_keeps_this_one(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        current = await sign_in(gql, test_user.email)
        others = [await sign_in(gql, test_user.email) for _ in range(2)]

        await change_password(gql, current.access, USER_PASSWORD, NEW_PASSWORD)

        for tokens in others:
            await assert_session_ended(gql, tokens)
        await assert_signed_in(gql, current)
        refreshed = await gql(REFRESH_TOKEN, {"refreshToken": current.refresh})
        assert refreshed.errors == []

    async def test_other_users_keep_their_sessions(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="bystander@example.com")
        bystander = await sign_in(gql, "bystander@example.com")
        current = await sign_in(gql, test_user.email)

        await change_password(gql, current.access, USER_PASSWORD, NEW_PASSWORD)

        await assert_signed_in(gql, bystander)

    @pytest.mark.parametrize("wrong", ["WrongPassword123!", "", USER_PASSWORD.upper()])
    async def test_wrong_current_password_is_bad_user_input(
        self, gql: GraphQLClient, test_user: User, wrong: str
    ) -> None:
        current = await sign_in(gql, test_user.email)
        other = await sign_in(gql, test_user.email)

        response = await change_password(gql, current.access, wrong, NEW_PASSWORD)

        assert response.error_fields() == ["currentPassword"]
        assert response.errors[0]["message"] == "Current password is incorrect"
        assert (await login(gql, test_user.email, USER_PASSWORD)).errors == []
        await assert_signed_in(gql, other)

    @pytest.mark.parametrize("weak", WEAK_PASSWORDS)
    async def test_weak_new_password_is_bad_user_input(
        self, gql: GraphQLClient, test_user: User, weak: str
    ) -> None:
        current = await sign_in(gql, test_user.email)
        other = await sign_in(gql, test_user.email)

        response = await change_password(gql, current.access, USER_PASSWORD, weak)

        assert response.error_fields() == ["newPassword"]
        assert (await login(gql, test_user.email, USER_PASSWORD)).errors == []
        await assert_signed_in(gql, other)

    async def test_current_password_is_checked_first(
        self, gql: GraphQLClient, user_token: str
    ) -> None:
        response = await change_password(gql, user_token, "WrongPassword123!", "short")

        assert response.error_fields() == ["currentPassword"]

    async def test_anonymous_is_unauthenticated(self, gql: GraphQLClient) -> None:
        response = await change_password(gql, None, USER_PASSWORD, NEW_PASSWORD)

        response.single_error("UNAUTHENTICATED")


class TestRequestPasswordReset:
    async def test_mails_a_reset_link_to_the_account(
        self,
        gql: GraphQLClient,
        test_user: User,
        outbox: list[EmailMessage],
        settings: Settings,
        db_session: AsyncSession,
    ) -> None:
        response = await request_reset(gql, test_user.email)

        assert response.errors == []
        assert response.data == {"requestPasswordReset": True}
        [message] = outbox
        assert message["To"] == test_user.email
        assert message["Subject"] == "Reset your password"
        assert "60 minutes" in message.get_content()
        assert action_link(message).startswith(f"{settings.frontend_base_url}{RESET_PATH}?")
        token = action_token(message, RESET_PATH)
        stored = (await db_session.scalars(select(ActionToken.token_hash))).all()
        assert stored == [hashlib.sha256(token.encode()).hexdigest()]

    async def test_address_in_any_letter_case_is_matched(
        self, gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
    ) -> None:
        await request_reset(gql, "  TestUser@EXAMPLE.com ")

        assert [message["To"] for message in outbox] == [test_user.email]

    async def test_unknown_address_gets_the_same_answer_and_no_mail(
        self, gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
    ) -> None:
        unknown = await request_reset(gql, "nobody@example.com")
        known = await request_reset(gql, test_user.email)

        assert unknown.body == known.body == {"data": {"requestPasswordReset": True}}
        assert [message["To"] for message in outbox] == [test_user.email]

    async def test_deactivated_account_gets_no_mail(
        self, gql: GraphQLClient, db_session: AsyncSession, outbox: list[EmailMessage]
    ) -> None:
        await create_user(db_session, email="gone@example.com", is_active=False)

        response = await request_reset(gql, "gone@example.com")

        assert response.data == {"requestPasswordReset": True}
        assert outbox == []

    @pytest.mark.parametrize(
        "email", ["not-an-email", "", "   ", "a@", "@example.com", "x" * 320 + "@example.com"]
    )
    async def test_malformed_address_is_bad_user_input(
        self, gql: GraphQLClient, outbox: list[EmailMessage], email: str
    ) -> None:
        response = await request_reset(gql, email)

        assert response.error_fields() == ["email"]
        assert outbox == []

    async def test_delivery_failure_is_logged_not_revealed(
        self,
        gql: GraphQLClient,
        test_user: User,
        failing_email: FailingEmailBackend,
        app_log: LogRecords,
    ) -> None:
        response = await request_reset(gql, test_user.email)

        assert response.body == {"data": {"requestPasswordReset": True}}
        assert [message["To"] for message in failing_email.attempts] == [test_user.email]
        warnings = [r for r in app_log.records if r.levelno == logging.WARNING]
        assert [r.getMessage() for r in warnings] == [
            "Background job deliver_password_reset could not deliver its email"
        ]

    async def test_a_new_request_spends_the_previous_link(
        self, gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
    ) -> None:
        first = await reset_token(gql, outbox, test_user.email)
        second = await reset_token(gql, outbox, test_user.email)

        assert (await reset(gql, first)).error_fields() == ["token"]
        assert (await reset(gql, second)).data == {"resetPassword": True}

    async def test_works_for_a_signed_in_caller_too(
        self, gql: GraphQLClient, test_user: User, user_token: str, outbox: list[EmailMessage]
    ) -> None:
        response = await gql(REQUEST_PASSWORD_RESET, {"email": test_user.email}, token=user_token)

        assert response.data == {"requestPasswordReset": True}
        assert len(outbox) == 1


class TestResetPassword:
    async def test_sets_the_new_password(
        self, gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
    ) -> None:
        token = await reset_token(gql, outbox, test_user.email)

        response = await reset(gql, token)

        assert response.errors == []
        assert response.data == {"resetPassword": True}
        assert (await login(gql, test_user.email, NEW_PASSWORD)).errors == []
        (await login(gql, test_user.email, USER_PASSWORD)).single_error("UNAUTHENTICATED")

    async def test_ends_every_session(
        self, gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
    ) -> None:
        sessions = [await sign_in(gql, test_user.email) for _ in range(2)]
        token = await reset_token(gql, outbox, test_user.email)

        await reset(gql, token)

        for tokens in sessions:
            await assert_session_ended(gql, tokens)

    async def test_confirms_the_email_address(
        self,
        gql: GraphQLClient,
        test_user: User,
        outbox: list[EmailMessage],
        db_session: AsyncSession,
    ) -> None:
        assert test_user.is_verified is False
        token = await reset_token(gql, outbox, test_user.email)

        await reset(gql, token)

        await db_session.refresh(test_user)
        assert test_user.is_verified is True

    async def test_link_works_once(
        self, gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
    ) -> None:
        token = await reset_token(gql, outbox, test_user.email)
        await reset(gql, token)

        again = await reset(gql, token, "another fine password 77")

        error = again.single_error("BAD_USER_INPUT")
        assert error["extensions"]["fields"] == [
            {"field": "token", "code": "INVALID_TOKEN", "message": INVALID_LINK}
        ]
        assert (await login(gql, test_user.email, NEW_PASSWORD)).errors == []

    async def test_link_works_until_just_before_the_hour_is_up(
        self,
        gql: GraphQLClient,
        test_user: User,
        outbox: list[EmailMessage],
        clock: FrozenDateTimeFactory,
    ) -> None:
        token = await reset_token(gql, outbox, test_user.email)
        clock.tick(timedelta(minutes=59, seconds=59))

        response = await reset(gql, token)

        assert response.data == {"resetPassword": True}

    @pytest.mark.parametrize("elapsed", [timedelta(hours=1), timedelta(days=2)])
    async def test_link_expires_after_an_hour(
        self,
        gql: GraphQLClient,
        test_user: User,
        outbox: list[EmailMessage],
        clock: FrozenDateTimeFactory,
        elapsed: timedelta,
    ) -> None:
        token = await reset_token(gql, outbox, test_user.email)
        clock.tick(elapsed)

        response = await reset(gql, token)

        assert response.error_fields() == ["token"]
        (await login(gql, test_user.email, NEW_PASSWORD)).single_error("UNAUTHENTICATED")

    @pytest.mark.parametrize("weak", WEAK_PASSWORDS)
    async def test_weak_password_is_bad_user_input_and_keeps_the_link(
        self, gql: GraphQLClient, test_user: User, outbox: list[EmailMessage], weak: str
    ) -> None:
        session = await sign_in(gql, test_user.email)
        token = await reset_token(gql, outbox, test_user.email)

        response = await reset(gql, token, weak)

        assert response.error_fields() == ["newPassword"]
        await assert_signed_in(gql, session)
        assert (await reset(gql, token)).data == {"resetPassword": True}

    @pytest.mark.parametrize("token", ["", "garbage", "x" * 10_000])
    async def test_unknown_token_is_bad_user_input(
        self, gql: GraphQLClient, test_user: User, token: str
    ) -> None:
        response = await reset(gql, token)

        assert response.error_fields() == ["token"]

    async def test_email_verification_token_is_not_a_reset_token(
        self, gql: GraphQLClient, test_user: User, user_token: str, outbox: list[EmailMessage]
    ) -> None:
        token = await verification_token(gql, outbox, user_token)

        response = await reset(gql, token)

        assert response.error_fields() == ["token"]

    async def test_link_for_a_former_address_is_refused(
        self, gql: GraphQLClient, test_user: User, user_token: str, outbox: list[EmailMessage]
    ) -> None:
        token = await reset_token(gql, outbox, test_user.email)
        await update_me(gql, user_token, email="moved@example.com")

        response = await reset(gql, token)

        assert response.error_fields() == ["token"]

    async def test_link_of_a_since_deactivated_account_is_refused(
        self,
        gql: GraphQLClient,
        test_user: User,
        outbox: list[EmailMessage],
        db_session: AsyncSession,
    ) -> None:
        token = await reset_token(gql, outbox, test_user.email)
        test_user.is_active = False
        await db_session.commit()

        response = await reset(gql, token)

        assert response.error_fields() == ["token"]


class TestRequestEmailVerification:
    async def test_mails_a_confirmation_link(
        self,
        gql: GraphQLClient,
        test_user: User,
        user_token: str,
        outbox: list[EmailMessage],
        settings: Settings,
    ) -> None:
        response = await gql(REQUEST_EMAIL_VERIFICATION, token=user_token)

        assert response.errors == []
        assert response.data == {"requestEmailVerification": True}
        [message] = outbox
        assert message["To"] == test_user.email
        assert message["Subject"] == "Confirm your email address"
        assert "48 hours" in message.get_content()
        assert action_link(message).startswith(f"{settings.frontend_base_url}{VERIFY_PATH}?")

    async def test_confirmed_address_gets_no_mail(
        self, gql: GraphQLClient, db_session: AsyncSession, outbox: list[EmailMessage]
    ) -> None:
        await create_user(db_session, email="done@example.com", is_verified=True)
        tokens = await sign_in(gql, "done@example.com")

        response = await gql(REQUEST_EMAIL_VERIFICATION, token=tokens.access)

        assert response.data == {"requestEmailVerification": True}
        assert outbox == []

    async def test_a_new_request_spends_the_previous_link(
        self, gql: GraphQLClient, test_user: User, user_token: str, outbox: list[EmailMessage]
    ) -> None:
        first = await verification_token(gql, outbox, user_token)
        second = await verification_token(gql, outbox, user_token)

        assert (await verify(gql, first)).error_fields() == ["token"]
        assert (await verify(gql, second)).errors == []

    async def test_delivery_failure_is_reported(
        self,
        gql: GraphQLClient,
        test_user: User,
        user_token: str,
        failing_email: FailingEmailBackend,
    ) -> None:
        response = await gql(REQUEST_EMAIL_VERIFICATION, token=user_token)

        error = response.single_error("EMAIL_DELIVERY_FAILED")
        assert error["message"] == "The email could not be sent; try again later"
        assert error["path"] == ["requestEmailVerification"]
        assert response.data is None
        assert [message["To"] for message in failing_email.attempts] == [test_user.email]

    async def test_anonymous_is_unauthenticated(
        self, gql: GraphQLClient, outbox: list[EmailMessage]
    ) -> None:
        response = await gql(REQUEST_EMAIL_VERIFICATION)

        response.single_error("UNAUTHENTICATED")
        assert outbox == []


class TestVerifyEmail:
    async def test_confirms_the_address(
        self, gql: GraphQLClient, test_user: User, user_token: str, outbox: list[EmailMessage]
    ) -> None:
        token = await verification_token(gql, outbox, user_token)

        # No access token needed: the link may be opened on another device.
        response = await verify(gql, token)

        assert response.errors == []
        user = response.data["verifyEmail"]
        assert (user["id"], user["email"], user["isVerified"]) == (
            str(test_user.id),
            test_user.email,
            True,
        )
        assert test_user.password_hash not in response.text
        assert (await gql(ME, token=user_token)).data["me"]["isVerified"] is True

    async def test_link_works_once(
        self, gql: GraphQLClient, test_user: User, user_token: str, outbox: list[EmailMessage]
    ) -> None:
        token = await verification_token(gql, outbox, user_token)
        await verify(gql, token)

        again = await verify(gql, token)

        error = again.single_error("BAD_USER_INPUT")
        assert error["extensions"]["fields"] == [
            {"field": "token", "code": "INVALID_TOKEN", "message": INVALID_LINK}
        ]

    async def test_link_works_until_just_before_48_hours_are_up(
        self,
        gql: GraphQLClient,
        test_user: User,
        outbox: list[EmailMessage],
        clock: FrozenDateTimeFactory,
    ) -> None:
        tokens = await sign_in(gql, test_user.email)
        token = await verification_token(gql, outbox, tokens.access)
        clock.tick(timedelta(hours=47, minutes=59))

        response = await verify(gql, token)

        assert response.data["verifyEmail"]["isVerified"] is True

    @pytest.mark.parametrize("elapsed", [timedelta(hours=48), timedelta(days=30)])
    async def test_link_expires_after_48_hours(
        self,
        gql: GraphQLClient,
        test_user: User,
        outbox: list[EmailMessage],
        clock: FrozenDateTimeFactory,
        elapsed: timedelta,
    ) -> None:
        tokens = await sign_in(gql, test_user.email)
        token = await verification_token(gql, outbox, tokens.access)
        clock.tick(elapsed)

        response = await verify(gql, token)

        assert response.error_fields() == ["token"]

    @pytest.mark.parametrize("token", ["", "garbage"])
    async def test_unknown_token_is_bad_user_input(
        self, gql: GraphQLClient, test_user: User, token: str
    ) -> None:
        response = await verify(gql, token)

        assert response.error_fields() == ["token"]

    async def test_password_reset_token_is_not_a_verification_token(
        self, gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
    ) -> None:
        token = await reset_token(gql, outbox, test_user.email)

        response = await verify(gql, token)

        assert response.error_fields() == ["token"]


class TestRequireVerifiedEmail:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"require_verified_email": True})

    async def test_unverified_account_is_forbidden_after_a_correct_password(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        response = await login(gql, test_user.email, USER_PASSWORD)

        error = response.single_error("FORBIDDEN")
        assert error["message"] == "Confirm your email address before signing in"
        assert response.data is None
        assert await db_session.scalar(select(AuthSession)) is None

    async def test_wrong_password_does_not_reveal_the_state(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        response = await login(gql, test_user.email, "WrongPassword123!")

        assert response.single_error("UNAUTHENTICATED")["message"] == "Invalid credentials"

    async def test_verified_account_signs_in(
        self, gql: GraphQLClient, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="done@example.com", is_verified=True)

        response = await login(gql, "done@example.com", USER_PASSWORD)

        assert response.errors == []

    async def test_password_reset_confirms_the_address_and_lets_the_user_in(
        self, gql: GraphQLClient, test_user: User, outbox: list[EmailMessage]
    ) -> None:
        token = await reset_token(gql, outbox, test_user.email)
        await reset(gql, token)

        response = await login(gql, test_user.email, NEW_PASSWORD)

        assert response.errors == []

    async def test_a_new_account_can_confirm_its_address_and_sign_in(
        self, gql: GraphQLClient, outbox: list[EmailMessage]
    ) -> None:
        registered = await gql(
            REGISTER, {"input": {"email": "fresh@example.com", "password": STRONG_PASSWORD}}
        )
        assert registered.data["register"]["isVerified"] is False
        refused = await login(gql, "fresh@example.com", STRONG_PASSWORD)
        refused.single_error("FORBIDDEN")

        # requestEmailVerification needs a session, which this account cannot get, so
        # registration itself must mail the first link ("Email a *new* confirmation link").
        assert [message["To"] for message in outbox] == ["fresh@example.com"]
        assert (await verify(gql, action_token(outbox[0], VERIFY_PATH))).errors == []
        assert (await login(gql, "fresh@example.com", STRONG_PASSWORD)).errors == []
