"""Password, email and admin journeys as a client of the deployed server goes through them:
the real `gql-app serve` on PostgreSQL, over HTTP, with its mail sent over SMTP, driven
through the project's own pytest plugin (gql_app.testing), as other teams' suites drive it.

The journeys that need the server in this process (a frozen clock, a look at the tables,
concurrent requests on one connection pool) stay in test_lifecycle_journeys.py.
"""

import uuid
from dataclasses import replace
from typing import Any

import pytest

from gql_app.testing import (
    Account,
    CreateUser,
    GqlAppError,
    GqlClient,
    LoginAs,
    MailOutbox,
    SentMail,
    Tokens,
)
from tests.mail import RESET_PATH, VERIFY_PATH
from tests.operations import (
    CHANGE_PASSWORD,
    DELETE_USER,
    ME,
    MY_SESSIONS,
    REFRESH_TOKEN,
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    UPDATE_ME,
    UPDATE_USER,
    VERIFY_EMAIL,
)

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "violet tangerine submarine 42"
OTHER_PASSWORD = "marble giraffe lantern 1987"


def refresh(gql_client: GqlClient, refresh_token: str) -> Tokens:
    payload = gql_client(REFRESH_TOKEN, {"refreshToken": refresh_token})["refreshToken"]
    return Tokens(
        access_token=payload["accessToken"],
        refresh_token=payload["refreshToken"],
        expires_in=payload["expiresIn"],
    )


def assert_signed_in(gql_client: GqlClient, tokens: Tokens, email: str) -> None:
    assert gql_client(ME, token=tokens.access_token)["me"]["email"] == email


def assert_session_ended(gql_client: GqlClient, tokens: Tokens) -> None:
    me = gql_client.refused(ME, token=tokens.access_token)
    assert (me.code, me.message) == ("UNAUTHENTICATED", "Session has ended")
    again = gql_client.refused(REFRESH_TOKEN, {"refreshToken": tokens.refresh_token})
    assert (again.code, again.message) == ("UNAUTHENTICATED", "Session has ended")


def assert_login_refused(login_as: LoginAs, user: Account, *, password: str, code: str) -> str:
    with pytest.raises(GqlAppError) as caught:
        login_as(user, password=password)
    assert caught.value.code == code
    return caught.value.message


def mail_to(mail_outbox: MailOutbox, address: str) -> list[SentMail]:
    # A mail an earlier test's request sent after its answer may still arrive during this one.
    return [mail for mail in mail_outbox if mail.to == address]


def action_token(mail: SentMail, path: str) -> str:
    assert mail.link is not None, mail.body
    assert mail.link.split("?")[0].endswith(path), mail.link
    assert mail.token is not None
    return mail.token


def reset_link_token(
    gql_client: GqlClient, mail_outbox: MailOutbox, user: Account, *, typed_as: str
) -> str:
    sent_before = len(mail_to(mail_outbox, user.email))
    assert gql_client(REQUEST_PASSWORD_RESET, {"email": typed_as}) == {"requestPasswordReset": True}
    mail = mail_outbox.wait_for(user.email)
    assert len(mail_to(mail_outbox, user.email)) == sent_before + 1
    assert mail.message["To"] == user.email
    return action_token(mail, RESET_PATH)


def reset_password(gql_client: GqlClient, token: str, password: str) -> Any:
    return gql_client(RESET_PASSWORD, {"input": {"token": token, "newPassword": password}})


class TestPasswordJourneys:
    def test_reset_password_ends_every_old_session(
        self,
        create_user: CreateUser,
        login_as: LoginAs,
        gql_client: GqlClient,
        mail_outbox: MailOutbox,
    ) -> None:
        user = create_user()
        laptop, phone = login_as(user), login_as(user)
        # The account owner forgot the password and asks for a link, signed out.
        token = reset_link_token(gql_client, mail_outbox, user, typed_as=f"  {user.email.upper()} ")

        assert reset_password(gql_client, token, NEW_PASSWORD) == {"resetPassword": True}

        for device in (laptop, phone):
            assert_session_ended(gql_client, device)
        assert_login_refused(login_as, user, password=user.password, code="UNAUTHENTICATED")
        fresh = login_as(user, password=NEW_PASSWORD)
        assert gql_client(ME, token=fresh.access_token)["me"]["isVerified"] is True
        sessions = gql_client(MY_SESSIONS, token=fresh.access_token)["mySessions"]
        assert [s["current"] for s in sessions] == [True]
        # The link was spent.
        reused = gql_client.refused(
            RESET_PASSWORD, {"input": {"token": token, "newPassword": OTHER_PASSWORD}}
        )
        assert (reused.code, list(reused.fields)) == ("BAD_USER_INPUT", ["token"])

    def test_change_password_ends_other_sessions_but_keeps_the_current_one(
        self, create_user: CreateUser, login_as: LoginAs, gql_client: GqlClient
    ) -> None:
        user = create_user()
        current, other = login_as(user), login_as(user)

        changed = gql_client(
            CHANGE_PASSWORD,
            {"input": {"currentPassword": user.password, "newPassword": NEW_PASSWORD}},
            token=current.access_token,
        )

        assert changed == {"changePassword": True}
        assert_session_ended(gql_client, other)
        assert_signed_in(gql_client, current, user.email)
        current = refresh(gql_client, current.refresh_token)
        assert_signed_in(gql_client, current, user.email)
        sessions = gql_client(MY_SESSIONS, token=current.access_token)["mySessions"]
        assert [s["current"] for s in sessions] == [True]
        assert_login_refused(login_as, user, password=user.password, code="UNAUTHENTICATED")
        assert login_as(user, password=NEW_PASSWORD).access_token


class TestEmailJourney:
    def test_email_change_is_confirmed_with_the_mailed_link(
        self,
        create_user: CreateUser,
        login_as: LoginAs,
        gql_client: GqlClient,
        mail_outbox: MailOutbox,
    ) -> None:
        user = create_user()
        tokens = login_as(user)
        typed = f"Moved-{uuid.uuid4().hex[:12]}@Example.COM"
        moved = typed.lower()

        changed = gql_client(
            UPDATE_ME,
            {"input": {"email": typed}},
            token=tokens.access_token,
        )["updateMe"]

        assert (changed["email"], changed["isVerified"]) == (moved, False)
        message = mail_outbox.wait_for(moved)
        assert mail_to(mail_outbox, moved) == [message]
        verified = gql_client(VERIFY_EMAIL, {"token": action_token(message, VERIFY_PATH)})
        assert verified["verifyEmail"]["isVerified"] is True
        # The same session keeps working; sign-in uses the new address.
        assert_signed_in(gql_client, tokens, moved)
        assert_login_refused(login_as, user, password=user.password, code="UNAUTHENTICATED")
        assert login_as(replace(user, email=moved)).access_token


class TestAdminJourneys:
    def test_deactivated_users_tokens_are_refused(
        self,
        create_user: CreateUser,
        superuser: Account,
        login_as: LoginAs,
        gql_client: GqlClient,
    ) -> None:
        admin = login_as(superuser).access_token
        user = create_user()
        tokens = login_as(user)
        assert_signed_in(gql_client, tokens, user.email)

        updated = gql_client(
            UPDATE_USER, {"id": user.id, "input": {"isActive": False}}, token=admin
        )

        assert updated["updateUser"]["isActive"] is False
        assert_session_ended(gql_client, tokens)
        message = assert_login_refused(login_as, user, password=user.password, code="FORBIDDEN")
        assert message == "This account is disabled"
        # Reactivation lets the user sign in again; the old session stays ended.
        gql_client(UPDATE_USER, {"id": user.id, "input": {"isActive": True}}, token=admin)
        assert_session_ended(gql_client, tokens)
        assert login_as(user).access_token

    def test_deleted_users_tokens_are_refused(
        self,
        create_user: CreateUser,
        superuser: Account,
        login_as: LoginAs,
        gql_client: GqlClient,
    ) -> None:
        user = create_user()
        tokens = login_as(user)

        deleted = gql_client(DELETE_USER, {"id": user.id}, token=login_as(superuser).access_token)

        assert deleted == {"deleteUser": True}
        assert gql_client.refused(ME, token=tokens.access_token).code == "UNAUTHENTICATED"
        gone = gql_client.refused(REFRESH_TOKEN, {"refreshToken": tokens.refresh_token})
        assert (gone.code, gone.message) == ("UNAUTHENTICATED", "Invalid refresh token")
        assert_login_refused(login_as, user, password=user.password, code="UNAUTHENTICATED")
