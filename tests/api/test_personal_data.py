"""One's own data: a copy of all of it (exportMyData), and deleting the account (deleteMe)."""

import json
from datetime import timedelta
from email.message import EmailMessage

import pyotp
import pytest
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import AuthSession, Passkey, SecurityEvent, User
from gql_app.models.base import utc_now
from tests.factories import ADMIN_PASSWORD, USER_PASSWORD, create_user
from tests.graphql import GraphQLClient, login_tokens
from tests.passkey_flows import add_passkey, authenticator, data_of, reason_of

DELETE_ME = "mutation DeleteMe($password: String!) { deleteMe(password: $password) }"
EXPORT_MY_DATA = "mutation { exportMyData }"
REAUTH_MAX_AGE = timedelta(seconds=600)


async def token_of(gql: GraphQLClient, email: str, password: str = USER_PASSWORD) -> str:
    return (await login_tokens(gql, email=email, password=password)).access


async def count(db_session: AsyncSession, model: type[object]) -> int:
    query = select(func.count()).select_from(model)  # type: ignore[arg-type]
    return (await db_session.execute(query)).scalar_one()


class TestExportMyData:
    async def test_holds_everything_stored_about_the_caller_and_no_secret(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        token = await token_of(gql, test_user.email)
        await add_passkey(gql, token, authenticator(), name="Phone")

        exported = data_of(await gql(EXPORT_MY_DATA, token=token), "exportMyData")

        assert exported["format"] == 1
        assert exported["profile"]["email"] == test_user.email
        assert exported["profile"]["id"] == str(test_user.id)
        assert len(exported["sessions"]) == 1
        assert exported["sessions"][0]["auth_methods"] == ["pwd"]
        assert exported["second_factors"] == {"totp": None, "recovery_codes": []}
        [passkey] = exported["passkeys"]
        assert passkey["name"] == "Phone"
        assert [event["type"] for event in exported["security_events"]] == [
            "SIGNED_IN",
            "PASSKEY_ADDED",
        ]
        text = json.dumps(exported)
        stored = (
            await db_session.execute(select(User).where(User.id == test_user.id))
        ).scalar_one()
        assert stored.password_hash not in text
        assert "public_key" not in text
        assert "credential_id" not in text

    async def test_is_recorded_as_an_event(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        token = await token_of(gql, test_user.email)

        data_of(await gql(EXPORT_MY_DATA, token=token), "exportMyData")

        types = (await db_session.execute(select(SecurityEvent.type))).scalars().all()
        assert "DATA_EXPORTED" in types

    async def test_needs_a_recent_sign_in(self, gql: GraphQLClient, test_user: User) -> None:
        token = await token_of(gql, test_user.email)

        with freeze_time(utc_now() + REAUTH_MAX_AGE + timedelta(seconds=5), real_asyncio=True):
            response = await gql(EXPORT_MY_DATA, token=token)

        assert reason_of(response, "FORBIDDEN") == "REAUTHENTICATION_REQUIRED"


class TestDeleteMe:
    async def test_deletes_the_account_and_everything_of_it_and_confirms_by_mail(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        outbox: list[EmailMessage],
    ) -> None:
        token = await token_of(gql, test_user.email)
        await add_passkey(gql, token, authenticator())

        response = await gql(DELETE_ME, {"password": USER_PASSWORD}, token=token)

        assert data_of(response, "deleteMe") is True
        assert await count(db_session, User) == 0
        assert await count(db_session, AuthSession) == 0
        assert await count(db_session, Passkey) == 0
        # The trail stays, naming nobody.
        events = (await db_session.execute(select(SecurityEvent))).scalars().all()
        assert {event.type for event in events} >= {"SIGNED_IN", "ACCOUNT_DELETED"}
        assert all(event.user_id is None for event in events)
        assert all(event.ip_address is None and event.user_agent is None for event in events)
        assert test_user.email not in json.dumps([event.details for event in events])
        [confirmation] = [m for m in outbox if m["Subject"] == "Your account was deleted"]
        assert confirmation["To"] == test_user.email
        # Its session is gone with it.
        after = await gql("{ me { email } }", token=token)
        assert after.single_error("UNAUTHENTICATED")

    async def test_a_wrong_password_deletes_nothing(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        token = await token_of(gql, test_user.email)

        response = await gql(DELETE_ME, {"password": "not the password"}, token=token)

        fields = response.single_error("BAD_USER_INPUT")["extensions"]["fields"]
        assert [(entry["field"], entry["code"]) for entry in fields] == [
            ("password", "WRONG_PASSWORD")
        ]
        assert await count(db_session, User) == 1

    async def test_the_last_active_superuser_cannot_delete_itself(
        self, gql: GraphQLClient, test_superuser: User, db_session: AsyncSession
    ) -> None:
        token = await token_of(gql, test_superuser.email, ADMIN_PASSWORD)

        response = await gql(DELETE_ME, {"password": ADMIN_PASSWORD}, token=token)

        assert reason_of(response, "CONFLICT") == "LAST_SUPERUSER"
        assert await count(db_session, User) == 1

    async def test_a_superuser_with_another_may(
        self, gql: GraphQLClient, test_superuser: User, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="second@example.com", is_superuser=True)
        token = await token_of(gql, test_superuser.email, ADMIN_PASSWORD)

        response = await gql(DELETE_ME, {"password": ADMIN_PASSWORD}, token=token)

        assert data_of(response, "deleteMe") is True

    async def test_with_a_second_factor_needs_it_recently(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        token = await token_of(gql, test_user.email)
        secret = data_of(
            await gql("mutation { startTotpEnrollment { secret } }", token=token),
            "startTotpEnrollment",
        )["secret"]
        confirmed = await gql(
            "mutation C($code: String!) { confirmTotpEnrollment(code: $code) }",
            {"code": pyotp.TOTP(secret).now()},
            token=token,
        )
        data_of(confirmed, "confirmTotpEnrollment")

        # Signed in with the password alone: not proof enough for this account any more.
        response = await gql(DELETE_ME, {"password": USER_PASSWORD}, token=token)

        assert reason_of(response, "FORBIDDEN") == "REAUTHENTICATION_REQUIRED"
        assert await count(db_session, User) == 1


@pytest.mark.parametrize("operation", [EXPORT_MY_DATA, DELETE_ME])
async def test_each_needs_a_signed_in_session(gql: GraphQLClient, operation: str) -> None:
    variables = {"password": USER_PASSWORD} if operation == DELETE_ME else None

    response = await gql(operation, variables)

    assert reason_of(response, "UNAUTHENTICATED") == "TOKEN_MISSING"
