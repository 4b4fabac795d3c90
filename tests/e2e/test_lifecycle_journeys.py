"""Session and account lifecycles against the real application on PostgreSQL.

Each test is a journey a client goes through; the concurrent ones rely on PostgreSQL's
row locks and transaction isolation, which the SQLite API tests cannot show. Journeys a
client of the deployed server can go through alone are in test_account_journeys.py.
"""

import asyncio
from datetime import timedelta
from email.message import EmailMessage

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.models import User
from gql_app.models.base import utc_now
from tests.factories import ADMIN_PASSWORD, USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient, GraphQLResponse, Tokens, login_tokens
from tests.mail import RESET_PATH, action_token
from tests.operations import (
    DELETE_USER,
    ME,
    MY_SESSIONS,
    REFRESH_TOKEN,
    REQUEST_PASSWORD_RESET,
    RESET_PASSWORD,
    UPDATE_ME,
    UPDATE_USER,
)

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "violet tangerine submarine 42"
OTHER_PASSWORD = "marble giraffe lantern 1987"


async def sign_in(gql: GraphQLClient, email: str, password: str = USER_PASSWORD) -> Tokens:
    return await login_tokens(gql, email=email, password=password)


async def login(gql: GraphQLClient, email: str, password: str) -> GraphQLResponse:
    return await gql(LOGIN, {"input": {"email": email, "password": password}})


async def refresh(gql: GraphQLClient, refresh_token: str) -> GraphQLResponse:
    return await gql(REFRESH_TOKEN, {"refreshToken": refresh_token})


def refreshed(response: GraphQLResponse) -> Tokens:
    assert response.errors == [], response.body
    payload = response.data["refreshToken"]
    return Tokens(access=payload["accessToken"], refresh=payload["refreshToken"])


async def assert_signed_in(gql: GraphQLClient, tokens: Tokens, email: str) -> None:
    response = await gql(ME, token=tokens.access)
    assert response.errors == [], response.body
    assert response.data["me"]["email"] == email


async def assert_session_ended(gql: GraphQLClient, tokens: Tokens) -> None:
    me = await gql(ME, token=tokens.access)
    assert me.single_error("UNAUTHENTICATED")["message"] == "Session has ended"
    again = await refresh(gql, tokens.refresh)
    assert again.single_error("UNAUTHENTICATED")["message"] == "Session has ended"


async def reset_link_token(gql: GraphQLClient, outbox: list[EmailMessage], email: str) -> str:
    sent_before = len(outbox)
    response = await gql(REQUEST_PASSWORD_RESET, {"email": email})
    assert response.data == {"requestPasswordReset": True}, response.body
    assert len(outbox) == sent_before + 1
    assert outbox[-1]["To"] == email.strip().lower()
    return action_token(outbox[-1], RESET_PATH)


async def reset_password(gql: GraphQLClient, token: str, password: str) -> GraphQLResponse:
    return await gql(RESET_PASSWORD, {"input": {"token": token, "newPassword": password}})


class TestPasswordJourneys:
    async def test_concurrent_resets_with_one_link_let_only_one_through(
        self,
        gql: GraphQLClient,
        test_user: User,
        outbox: list[EmailMessage],
        db_session: AsyncSession,
    ) -> None:
        token = await reset_link_token(gql, outbox, test_user.email)

        first, second = await asyncio.gather(
            reset_password(gql, token, NEW_PASSWORD),
            reset_password(gql, token, OTHER_PASSWORD),
        )

        # The link works once, however close together the two uses come.
        outcomes = sorted(
            ("ok" if response.errors == [] else response.error_fields()[0])
            for response in (first, second)
        )
        assert outcomes == ["ok", "token"], (first.body, second.body)


class TestEmailJourney:
    async def test_two_accounts_racing_for_one_address_get_one_conflict(
        self, gql: GraphQLClient, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="alice@example.com")
        await create_user(db_session, email="bob@example.com")
        alice = await sign_in(gql, "alice@example.com")
        bob = await sign_in(gql, "bob@example.com")

        responses = await asyncio.gather(
            *(
                gql(UPDATE_ME, {"input": {"email": "shared@example.com"}}, token=t.access)
                for t in (alice, bob)
            )
        )

        codes = sorted(tuple(response.error_codes) for response in responses)
        assert codes == [(), ("CONFLICT",)], [response.body for response in responses]
        owners = (
            await db_session.scalars(select(User).where(User.email == "shared@example.com"))
        ).all()
        assert len(owners) == 1


class TestAdminJourneys:
    async def test_two_superusers_demoting_each_other_at_once_leave_one(
        self, gql: GraphQLClient, test_superuser: User, db_session: AsyncSession
    ) -> None:
        other = await create_user(db_session, email="admin2@example.com", is_superuser=True)
        first = await sign_in(gql, test_superuser.email, ADMIN_PASSWORD)
        second = await sign_in(gql, other.email)

        responses = await asyncio.gather(
            gql(
                UPDATE_USER,
                {"id": str(other.id), "input": {"isSuperuser": False}},
                token=first.access,
            ),
            gql(
                UPDATE_USER,
                {"id": str(test_superuser.id), "input": {"isSuperuser": False}},
                token=second.access,
            ),
        )

        # The loser either lost the race for the lock (CONFLICT: it would remove the last
        # superuser) or started after the winner had committed (FORBIDDEN: no longer one).
        codes = sorted(tuple(response.error_codes) for response in responses)
        assert codes in ([(), ("CONFLICT",)], [(), ("FORBIDDEN",)]), [r.body for r in responses]
        superusers = (
            await db_session.scalars(
                select(User.email)
                .where(User.is_superuser.is_(True), User.is_active.is_(True))
                .execution_options(populate_existing=True)
            )
        ).all()
        assert len(superusers) == 1

    async def test_two_superusers_deleting_each_other_at_once_leave_one(
        self, gql: GraphQLClient, test_superuser: User, db_session: AsyncSession
    ) -> None:
        other = await create_user(db_session, email="admin2@example.com", is_superuser=True)
        first = await sign_in(gql, test_superuser.email, ADMIN_PASSWORD)
        second = await sign_in(gql, other.email)

        responses = await asyncio.gather(
            gql(DELETE_USER, {"id": str(other.id)}, token=first.access),
            gql(DELETE_USER, {"id": str(test_superuser.id)}, token=second.access),
        )

        # The loser either waited for the winner's lock (CONFLICT: it would delete the last
        # superuser) or started after the winner had committed (its own session is gone).
        codes = sorted(tuple(response.error_codes) for response in responses)
        assert codes in ([(), ("CONFLICT",)], [(), ("UNAUTHENTICATED",)]), [
            r.body for r in responses
        ]
        superusers = (
            await db_session.scalars(
                select(User.email)
                .where(User.is_superuser.is_(True), User.is_active.is_(True))
                .execution_options(populate_existing=True)
            )
        ).all()
        assert len(superusers) == 1


class TestRefreshJourneys:
    async def test_rotation_then_reuse_revokes_the_session(
        self, gql: GraphQLClient, test_user: User, settings: Settings
    ) -> None:
        # Frozen at the real present, so the tokens minted here stay valid for the database.
        with freeze_time(utc_now(), real_asyncio=True) as clock:
            original = await sign_in(gql, test_user.email)
            bystander = await sign_in(gql, test_user.email)
            clock.tick(timedelta(seconds=1))
            rotated = refreshed(await refresh(gql, original.refresh))
            clock.tick(timedelta(seconds=1))
            rotated = refreshed(await refresh(gql, rotated.refresh))
            await assert_signed_in(gql, rotated, test_user.email)

            # A copy of the first token shows up after the grace window: stolen.
            clock.tick(timedelta(seconds=settings.refresh_reuse_grace_seconds + 1))
            replay = await refresh(gql, original.refresh)

            assert replay.single_error("UNAUTHENTICATED")["message"] == (
                "Refresh token was already used; the session has been revoked"
            )
            await assert_session_ended(gql, rotated)
            (await gql(ME, token=original.access)).single_error("UNAUTHENTICATED")
            # Only that session: the user's other device is unaffected.
            await assert_signed_in(gql, bystander, test_user.email)
            refreshed(await refresh(gql, bystander.refresh))

    async def test_reuse_within_the_grace_window_is_tolerated(
        self, gql: GraphQLClient, test_user: User, settings: Settings
    ) -> None:
        with freeze_time(utc_now(), real_asyncio=True) as clock:
            original = await sign_in(gql, test_user.email)
            first = refreshed(await refresh(gql, original.refresh))
            clock.tick(timedelta(seconds=settings.refresh_reuse_grace_seconds))

            second = refreshed(await refresh(gql, original.refresh))

            for pair in (first, second):
                await assert_signed_in(gql, pair, test_user.email)

    async def test_two_concurrent_refreshes_of_one_token_both_succeed(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        original = await sign_in(gql, test_user.email)

        responses = await asyncio.gather(
            refresh(gql, original.refresh), refresh(gql, original.refresh)
        )

        pairs = [refreshed(response) for response in responses]
        # One successor for both: the session's tokens stay one chain (tests/e2e/test_races.py
        # presents one token twenty times at once).
        assert pairs[0].refresh == pairs[1].refresh
        for pair in pairs:
            await assert_signed_in(gql, pair, test_user.email)
        sessions = await gql(MY_SESSIONS, token=pairs[0].access)
        assert len(sessions.data["mySessions"]) == 1
        refreshed(await refresh(gql, pairs[0].refresh))
