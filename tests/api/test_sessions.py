"""refreshToken, logout, logoutAll, revokeSession and mySessions."""

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.models import AuthSession, RefreshToken, User
from tests.factories import ADMIN_PASSWORD, USER_PASSWORD, create_user
from tests.graphql import GraphQLClient, GraphQLResponse, Tokens, login_tokens
from tests.operations import (
    LOGOUT,
    LOGOUT_ALL,
    ME,
    MY_SESSIONS,
    REFRESH_TOKEN,
    REVOKE_SESSION,
)

T0 = datetime.fromisoformat("2030-01-01T12:00:00+00:00")


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    """Time stands still at T0 until the test moves it."""
    with freeze_time(T0, real_asyncio=True) as frozen:
        yield frozen


async def sign_in(gql: GraphQLClient, user: User, password: str = USER_PASSWORD) -> Tokens:
    return await login_tokens(gql, email=user.email, password=password)


async def refresh(gql: GraphQLClient, refresh_token: str) -> GraphQLResponse:
    return await gql(REFRESH_TOKEN, {"refreshToken": refresh_token})


def refreshed(response: GraphQLResponse) -> Tokens:
    assert response.errors == [], response.body
    payload = response.data["refreshToken"]
    return Tokens(access=payload["accessToken"], refresh=payload["refreshToken"])


async def assert_signed_in(gql: GraphQLClient, tokens: Tokens, user: User) -> None:
    response = await gql(ME, token=tokens.access)
    assert response.errors == [], response.body
    assert response.data["me"]["id"] == str(user.id)


async def assert_session_ended(gql: GraphQLClient, tokens: Tokens) -> None:
    me = await gql(ME, token=tokens.access)
    assert me.single_error("UNAUTHENTICATED")["message"] == "Session has ended"
    again = await refresh(gql, tokens.refresh)
    assert again.single_error("UNAUTHENTICATED")["message"] == "Session has ended"


async def session_of(db_session: AsyncSession, refresh_token: str) -> AuthSession:
    token_hash = hashlib.sha256(refresh_token.encode()).hexdigest()
    auth_session = await db_session.scalar(
        select(AuthSession)
        .join(RefreshToken, RefreshToken.session_id == AuthSession.id)
        .where(RefreshToken.token_hash == token_hash)
        .execution_options(populate_existing=True)
    )
    assert auth_session is not None
    return auth_session


class TestRefreshToken:
    async def test_returns_a_new_pair_for_the_same_session(
        self,
        gql: GraphQLClient,
        test_user: User,
        settings: Settings,
        db_session: AsyncSession,
    ) -> None:
        tokens = await sign_in(gql, test_user)

        response = await refresh(gql, tokens.refresh)

        assert response.errors == []
        payload = response.data["refreshToken"]
        assert payload["tokenType"] == "Bearer"
        assert payload["expiresIn"] == settings.access_token_expire_seconds
        assert payload["user"]["id"] == str(test_user.id)
        assert payload["refreshToken"] not in {tokens.refresh, tokens.access}
        assert payload["accessToken"] != tokens.access
        assert test_user.password_hash not in response.text
        new = refreshed(response)
        await assert_signed_in(gql, new, test_user)
        assert (await session_of(db_session, new.refresh)).id == (
            await session_of(db_session, tokens.refresh)
        ).id

    async def test_new_refresh_token_is_stored_only_as_a_hash(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        tokens = await sign_in(gql, test_user)

        new = refreshed(await refresh(gql, tokens.refresh))

        stored = (await db_session.scalars(select(RefreshToken.token_hash))).all()
        assert sorted(stored) == sorted(
            hashlib.sha256(token.encode()).hexdigest() for token in (tokens.refresh, new.refresh)
        )

    async def test_rotation_retires_the_presented_token(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        clock: FrozenDateTimeFactory,
    ) -> None:
        tokens = await sign_in(gql, test_user)
        clock.tick(timedelta(seconds=5))

        refreshed(await refresh(gql, tokens.refresh))

        token_hash = hashlib.sha256(tokens.refresh.encode()).hexdigest()
        retired = await db_session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        )
        assert retired is not None
        assert retired.rotated_at == T0 + timedelta(seconds=5)

    async def test_chain_of_rotations_keeps_the_session_alive(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        tokens = await sign_in(gql, test_user)
        for _ in range(3):
            # Each step is far outside the grace window of the previous token.
            clock.tick(timedelta(minutes=1))
            tokens = refreshed(await refresh(gql, tokens.refresh))

        await assert_signed_in(gql, tokens, test_user)

    async def test_reuse_after_the_grace_window_revokes_the_whole_session(
        self,
        gql: GraphQLClient,
        test_user: User,
        settings: Settings,
        clock: FrozenDateTimeFactory,
        db_session: AsyncSession,
    ) -> None:
        stolen = await sign_in(gql, test_user)
        legitimate = refreshed(await refresh(gql, stolen.refresh))
        clock.tick(timedelta(seconds=settings.refresh_reuse_grace_seconds + 1))

        replay = await refresh(gql, stolen.refresh)

        error = replay.single_error("UNAUTHENTICATED")
        assert error["message"] == ("Refresh token was already used; the session has been revoked")
        assert replay.data is None
        # Both holders are out: the access tokens and the newest refresh token are refused.
        await assert_session_ended(gql, legitimate)
        me = await gql(ME, token=stolen.access)
        me.single_error("UNAUTHENTICATED")
        auth_session = await session_of(db_session, stolen.refresh)
        assert auth_session.revoked_at == T0 + timedelta(
            seconds=settings.refresh_reuse_grace_seconds + 1
        )

    async def test_reuse_detection_leaves_other_sessions_alone(
        self,
        gql: GraphQLClient,
        test_user: User,
        settings: Settings,
        clock: FrozenDateTimeFactory,
    ) -> None:
        victim = await sign_in(gql, test_user)
        other = await sign_in(gql, test_user)
        refreshed(await refresh(gql, victim.refresh))
        clock.tick(timedelta(seconds=settings.refresh_reuse_grace_seconds + 1))

        (await refresh(gql, victim.refresh)).single_error("UNAUTHENTICATED")

        await assert_signed_in(gql, other, test_user)
        refreshed(await refresh(gql, other.refresh))

    @pytest.mark.parametrize("elapsed_seconds", [0, 1, 10])
    async def test_reuse_within_the_grace_window_succeeds(
        self,
        gql: GraphQLClient,
        test_user: User,
        settings: Settings,
        clock: FrozenDateTimeFactory,
        elapsed_seconds: int,
    ) -> None:
        assert settings.refresh_reuse_grace_seconds == 10
        tokens = await sign_in(gql, test_user)
        first = refreshed(await refresh(gql, tokens.refresh))
        clock.tick(timedelta(seconds=elapsed_seconds))

        second = refreshed(await refresh(gql, tokens.refresh))

        # The same successor again, with an access token of its own: one chain, no branch.
        assert second.refresh == first.refresh
        assert second.access != first.access
        for pair in (first, second):
            await assert_signed_in(gql, pair, test_user)

    async def test_grace_window_is_counted_from_the_first_rotation(
        self,
        gql: GraphQLClient,
        test_user: User,
        settings: Settings,
        clock: FrozenDateTimeFactory,
    ) -> None:
        tokens = await sign_in(gql, test_user)
        refreshed(await refresh(gql, tokens.refresh))
        clock.tick(timedelta(seconds=6))
        refreshed(await refresh(gql, tokens.refresh))
        clock.tick(timedelta(seconds=6))

        # 12 s after it was first retired: a replay, even though the last use was 6 s ago.
        late = await refresh(gql, tokens.refresh)

        late.single_error("UNAUTHENTICATED")

    async def test_two_concurrent_refreshes_of_one_token_both_succeed(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        tokens = await sign_in(gql, test_user)

        first, second = await asyncio.gather(
            refresh(gql, tokens.refresh), refresh(gql, tokens.refresh)
        )

        pairs = [refreshed(first), refreshed(second)]
        assert pairs[0].refresh == pairs[1].refresh
        for pair in pairs:
            await assert_signed_in(gql, pair, test_user)
        refreshed(await refresh(gql, pairs[0].refresh))
        auth_session = await session_of(db_session, tokens.refresh)
        assert auth_session.revoked_at is None

    async def test_a_token_whose_successor_moved_on_is_refused_but_the_session_stays(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        clock: FrozenDateTimeFactory,
    ) -> None:
        tokens = await sign_in(gql, test_user)
        successor = refreshed(await refresh(gql, tokens.refresh))
        newest = refreshed(await refresh(gql, successor.refresh))
        clock.tick(timedelta(seconds=2))

        stale = await refresh(gql, tokens.refresh)

        error = stale.single_error("UNAUTHENTICATED")
        assert "newest" in error["message"]
        await assert_signed_in(gql, newest, test_user)
        auth_session = await session_of(db_session, tokens.refresh)
        assert auth_session.revoked_at is None

    async def test_session_past_its_lifetime_is_ended(
        self,
        gql: GraphQLClient,
        test_user: User,
        settings: Settings,
        clock: FrozenDateTimeFactory,
    ) -> None:
        tokens = await sign_in(gql, test_user)
        clock.tick(timedelta(seconds=settings.refresh_token_expire_seconds + 1))

        response = await refresh(gql, tokens.refresh)

        assert response.single_error("UNAUTHENTICATED")["message"] == "Session has ended"

    async def test_rotation_does_not_extend_the_session(
        self,
        gql: GraphQLClient,
        test_user: User,
        settings: Settings,
        clock: FrozenDateTimeFactory,
    ) -> None:
        tokens = await sign_in(gql, test_user)
        clock.tick(timedelta(seconds=settings.refresh_token_expire_seconds - 60))
        tokens = refreshed(await refresh(gql, tokens.refresh))
        clock.tick(timedelta(seconds=61))

        response = await refresh(gql, tokens.refresh)

        response.single_error("UNAUTHENTICATED")

    @pytest.mark.parametrize("token", ["", "garbage", "x" * 10_000])
    async def test_unknown_token_is_unauthenticated(
        self, gql: GraphQLClient, test_user: User, token: str
    ) -> None:
        response = await refresh(gql, token)

        assert response.single_error("UNAUTHENTICATED")["message"] == "Invalid refresh token"
        assert response.data is None

    async def test_access_token_is_not_a_refresh_token(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        tokens = await sign_in(gql, test_user)

        response = await refresh(gql, tokens.access)

        assert response.single_error("UNAUTHENTICATED")["message"] == "Invalid refresh token"

    async def test_token_of_a_logged_out_session_is_unauthenticated(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        tokens = await sign_in(gql, test_user)
        assert (await gql(LOGOUT, {"refreshToken": tokens.refresh})).errors == []

        response = await refresh(gql, tokens.refresh)

        assert response.single_error("UNAUTHENTICATED")["message"] == "Session has ended"

    async def test_deactivated_account_is_forbidden(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        tokens = await sign_in(gql, test_user)
        # Deactivated behind the API's back: the session itself is still open.
        test_user.is_active = False
        await db_session.commit()

        response = await refresh(gql, tokens.refresh)

        assert response.single_error("FORBIDDEN")["message"] == "This account is disabled"

    async def test_missing_argument_without_the_cookie_mode_is_refresh_token_missing(
        self, gql: GraphQLClient
    ) -> None:
        # The argument is optional for browser session mode (tests/api/test_refresh_cookie.py);
        # without that mode there is nothing to fall back on.
        response = await gql("mutation { refreshToken { accessToken } }")

        error = response.single_error("UNAUTHENTICATED")
        assert error["extensions"]["reason"] == "REFRESH_TOKEN_MISSING"


class TestLogout:
    async def test_ends_the_session_of_the_token(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        tokens = await sign_in(gql, test_user)

        response = await gql(LOGOUT, {"refreshToken": tokens.refresh})

        assert response.errors == []
        assert response.data == {"logout": True}
        await assert_session_ended(gql, tokens)
        assert (await session_of(db_session, tokens.refresh)).revoked_at is not None

    async def test_other_sessions_stay_open(self, gql: GraphQLClient, test_user: User) -> None:
        leaving = await sign_in(gql, test_user)
        staying = await sign_in(gql, test_user)

        await gql(LOGOUT, {"refreshToken": leaving.refresh})

        await assert_signed_in(gql, staying, test_user)

    async def test_needs_no_access_token(self, gql: GraphQLClient, test_user: User) -> None:
        tokens = await sign_in(gql, test_user)

        response = await gql(LOGOUT, {"refreshToken": tokens.refresh}, token=None)

        assert response.data == {"logout": True}

    async def test_a_retired_token_still_ends_its_session(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        old = await sign_in(gql, test_user)
        new = refreshed(await refresh(gql, old.refresh))

        response = await gql(LOGOUT, {"refreshToken": old.refresh})

        assert response.data == {"logout": True}
        await assert_session_ended(gql, new)

    async def test_logging_out_twice_is_harmless(self, gql: GraphQLClient, test_user: User) -> None:
        tokens = await sign_in(gql, test_user)
        await gql(LOGOUT, {"refreshToken": tokens.refresh})

        response = await gql(LOGOUT, {"refreshToken": tokens.refresh})

        assert response.data == {"logout": True}

    @pytest.mark.parametrize("token", ["", "garbage"])
    async def test_unknown_token_is_unauthenticated(
        self, gql: GraphQLClient, test_user: User, token: str
    ) -> None:
        response = await gql(LOGOUT, {"refreshToken": token})

        assert response.single_error("UNAUTHENTICATED")["message"] == "Invalid refresh token"


class TestLogoutAll:
    async def test_ends_every_session_of_the_caller_this_one_included(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        sessions = [await sign_in(gql, test_user) for _ in range(3)]

        response = await gql(LOGOUT_ALL, token=sessions[0].access)

        assert response.errors == []
        assert response.data == {"logoutAll": True}
        for tokens in sessions:
            await assert_session_ended(gql, tokens)

    async def test_other_users_keep_their_sessions(
        self, gql: GraphQLClient, test_user: User, test_superuser: User
    ) -> None:
        mine = await sign_in(gql, test_user)
        theirs = await sign_in(gql, test_superuser, ADMIN_PASSWORD)

        await gql(LOGOUT_ALL, token=mine.access)

        await assert_signed_in(gql, theirs, test_superuser)

    async def test_can_sign_in_again_afterwards(self, gql: GraphQLClient, test_user: User) -> None:
        tokens = await sign_in(gql, test_user)
        await gql(LOGOUT_ALL, token=tokens.access)

        await assert_signed_in(gql, await sign_in(gql, test_user), test_user)

    async def test_anonymous_is_unauthenticated(self, gql: GraphQLClient) -> None:
        response = await gql(LOGOUT_ALL)

        response.single_error("UNAUTHENTICATED")
        assert response.data is None

    async def test_token_of_an_ended_session_is_unauthenticated(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        tokens = await sign_in(gql, test_user)
        await gql(LOGOUT_ALL, token=tokens.access)

        response = await gql(LOGOUT_ALL, token=tokens.access)

        assert response.single_error("UNAUTHENTICATED")["message"] == "Session has ended"


class TestRevokeSession:
    async def test_ends_another_session_of_the_caller(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        current = await sign_in(gql, test_user)
        other = await sign_in(gql, test_user)
        other_id = (await session_of(db_session, other.refresh)).id

        response = await gql(REVOKE_SESSION, {"id": str(other_id)}, token=current.access)

        assert response.errors == []
        assert response.data == {"revokeSession": True}
        await assert_session_ended(gql, other)
        await assert_signed_in(gql, current, test_user)

    async def test_can_end_the_current_session(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        current = await sign_in(gql, test_user)
        current_id = (await session_of(db_session, current.refresh)).id

        response = await gql(REVOKE_SESSION, {"id": str(current_id)}, token=current.access)

        assert response.data == {"revokeSession": True}
        await assert_session_ended(gql, current)

    async def test_someone_elses_session_is_not_found_and_stays_open(
        self,
        gql: GraphQLClient,
        test_user: User,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        mine = await sign_in(gql, test_user)
        theirs = await sign_in(gql, test_superuser, ADMIN_PASSWORD)
        their_id = (await session_of(db_session, theirs.refresh)).id

        response = await gql(REVOKE_SESSION, {"id": str(their_id)}, token=mine.access)
        unknown = await gql(REVOKE_SESSION, {"id": str(uuid.uuid4())}, token=mine.access)

        error = response.single_error("NOT_FOUND")
        assert error["message"] == "Session not found"
        assert error["path"] == ["revokeSession"]
        # Indistinguishable from a session that does not exist.
        assert unknown.errors[0]["message"] == error["message"]
        assert unknown.errors[0]["extensions"] == error["extensions"]
        await assert_signed_in(gql, theirs, test_superuser)

    async def test_superusers_cannot_end_other_users_sessions_either(
        self,
        gql: GraphQLClient,
        test_user: User,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        theirs = await sign_in(gql, test_user)
        admin = await sign_in(gql, test_superuser, ADMIN_PASSWORD)
        their_id = (await session_of(db_session, theirs.refresh)).id

        response = await gql(REVOKE_SESSION, {"id": str(their_id)}, token=admin.access)

        response.single_error("NOT_FOUND")
        await assert_signed_in(gql, theirs, test_user)

    @pytest.mark.parametrize("bad_id", ["not-a-uuid", "", "1"])
    async def test_malformed_id_is_bad_user_input(
        self, gql: GraphQLClient, user_token: str, bad_id: str
    ) -> None:
        response = await gql(REVOKE_SESSION, {"id": bad_id}, token=user_token)

        assert response.error_fields() == ["id"]

    async def test_anonymous_is_unauthenticated(self, gql: GraphQLClient) -> None:
        response = await gql(REVOKE_SESSION, {"id": str(uuid.uuid4())})

        response.single_error("UNAUTHENTICATED")


class TestMySessions:
    async def test_lists_active_sessions_newest_first_flagging_the_current_one(
        self,
        gql: GraphQLClient,
        test_user: User,
        settings: Settings,
        clock: FrozenDateTimeFactory,
        db_session: AsyncSession,
    ) -> None:
        oldest = await login_tokens(
            gql, email=test_user.email, password=USER_PASSWORD, headers={"User-Agent": "phone/1"}
        )
        clock.tick(timedelta(minutes=1))
        current = await login_tokens(
            gql, email=test_user.email, password=USER_PASSWORD, headers={"User-Agent": "laptop/2"}
        )
        clock.tick(timedelta(minutes=1))

        response = await gql(MY_SESSIONS, token=current.access)

        assert response.errors == []
        sessions = response.data["mySessions"]
        current_id = (await session_of(db_session, current.refresh)).id
        oldest_id = (await session_of(db_session, oldest.refresh)).id
        assert [s["id"] for s in sessions] == [str(current_id), str(oldest_id)]
        assert [s["current"] for s in sessions] == [True, False]
        assert [s["userAgent"] for s in sessions] == ["laptop/2", "phone/1"]
        newest = sessions[0]
        assert datetime.fromisoformat(newest["createdAt"]) == T0 + timedelta(minutes=1)
        assert datetime.fromisoformat(newest["lastUsedAt"]) == T0 + timedelta(minutes=1)
        assert datetime.fromisoformat(newest["expiresAt"]) == T0 + timedelta(
            minutes=1, seconds=settings.refresh_token_expire_seconds
        )
        assert newest["ipAddress"] == "127.0.0.1"
        for token in (current.access, current.refresh, oldest.refresh):
            assert token not in response.text

    async def test_a_new_session_is_not_created_after_it_was_last_used(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        # The real clock: nothing stands still between the login's reading and the flush.
        tokens = await sign_in(gql, test_user)

        response = await gql(MY_SESSIONS, token=tokens.access)

        [only] = response.data["mySessions"]
        assert only["createdAt"] == only["lastUsedAt"]

    async def test_last_used_moves_on_refresh(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        tokens = await sign_in(gql, test_user)
        clock.tick(timedelta(minutes=5))
        tokens = refreshed(await refresh(gql, tokens.refresh))

        response = await gql(MY_SESSIONS, token=tokens.access)

        [only] = response.data["mySessions"]
        assert datetime.fromisoformat(only["createdAt"]) == T0
        assert datetime.fromisoformat(only["lastUsedAt"]) == T0 + timedelta(minutes=5)
        assert only["current"] is True

    async def test_leaves_out_ended_sessions_and_other_users(
        self,
        gql: GraphQLClient,
        test_user: User,
        test_superuser: User,
        db_session: AsyncSession,
    ) -> None:
        current = await sign_in(gql, test_user)
        logged_out = await sign_in(gql, test_user)
        await gql(LOGOUT, {"refreshToken": logged_out.refresh})
        await sign_in(gql, test_superuser, ADMIN_PASSWORD)

        response = await gql(MY_SESSIONS, token=current.access)

        current_id = (await session_of(db_session, current.refresh)).id
        assert [s["id"] for s in response.data["mySessions"]] == [str(current_id)]

    async def test_leaves_out_expired_sessions(
        self,
        gql: GraphQLClient,
        test_user: User,
        settings: Settings,
        clock: FrozenDateTimeFactory,
        db_session: AsyncSession,
    ) -> None:
        expired = await sign_in(gql, test_user)
        clock.tick(timedelta(seconds=settings.refresh_token_expire_seconds + 1))
        current = await sign_in(gql, test_user)

        response = await gql(MY_SESSIONS, token=current.access)

        ids = [s["id"] for s in response.data["mySessions"]]
        assert str((await session_of(db_session, expired.refresh)).id) not in ids
        assert len(ids) == 1

    async def test_anonymous_is_unauthenticated(self, gql: GraphQLClient) -> None:
        response = await gql(MY_SESSIONS)

        response.single_error("UNAUTHENTICATED")
        assert response.data is None

    async def test_deactivated_account_is_forbidden(
        self, gql: GraphQLClient, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session, email="leaving@example.com")
        tokens = await sign_in(gql, user)
        user.is_active = False
        await db_session.commit()

        response = await gql(MY_SESSIONS, token=tokens.access)

        response.single_error("FORBIDDEN")
