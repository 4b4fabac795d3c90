"""Refresh token rotation, reuse detection and logout (gql_app.services.auth.refresh/logout)."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import pytest_asyncio
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.db import SessionFactory, create_engine, create_session_factory
from gql_app.error_reasons import ErrorReason
from gql_app.errors import MESSAGES, AuthenticationError, PermissionDeniedError
from gql_app.models import AuthSession, Base, RefreshToken, User
from gql_app.security import tokens
from gql_app.services import auth as auth_service
from gql_app.services.auth import (
    ClientInfo,
    Credentials,
    IssuedTokens,
)
from gql_app.services.key_ring import KeyRing
from gql_app.services.passkey_challenges import DatabaseChallengeStore
from tests.factories import USER_PASSWORD, create_user

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
AUTH_LOGGER = "gql_app.services.auth"


async def login(session: AsyncSession, settings: Settings, user: User) -> IssuedTokens:
    return await auth_service.login(
        challenges=DatabaseChallengeStore(),
        session=session,
        settings=settings,
        keys=KeyRing(settings),
        credentials=Credentials(email=user.email, password=USER_PASSWORD),
        client=ClientInfo(),
    )


async def refresh(session: AsyncSession, settings: Settings, token: str) -> IssuedTokens:
    return await auth_service.refresh(
        session=session, settings=settings, keys=KeyRing(settings), refresh_token=token
    )


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def session_id_of(issued: IssuedTokens, settings: Settings) -> uuid.UUID:
    # Only the claim: the signature and times are tested in tests/security/test_tokens.py.
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    return uuid.UUID(claims["sid"])


async def stored_session(session_factory: SessionFactory, issued: IssuedTokens) -> AuthSession:
    async with session_factory() as other:
        return (
            await other.execute(
                select(AuthSession)
                .join(RefreshToken, RefreshToken.session_id == AuthSession.id)
                .where(RefreshToken.token_hash == tokens.hash_opaque_token(issued.refresh_token))
            )
        ).scalar_one()


async def stored_token(session_factory: SessionFactory, token: str) -> RefreshToken:
    async with session_factory() as other:
        row = await other.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == tokens.hash_opaque_token(token))
        )
    assert row is not None
    return row


async def token_rows(session_factory: SessionFactory) -> list[RefreshToken]:
    async with session_factory() as other:
        return list((await other.scalars(select(RefreshToken))).all())


@pytest.fixture
def auth_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = ListHandler(level=logging.DEBUG)
    logger = logging.getLogger(AUTH_LOGGER)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(previous_level)


class TestRotation:
    async def test_returns_a_new_pair_for_the_same_session(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        with freeze_time(NOW):
            first = await login(db_session, settings, test_user)
        with freeze_time(at(60)):
            second = await refresh(db_session, settings, first.refresh_token)

        assert second.refresh_token != first.refresh_token
        assert second.access_token != first.access_token
        assert second.user.id == test_user.id
        assert second.expires_in == settings.access_token_expire_seconds
        assert session_id_of(second, settings) == session_id_of(first, settings)
        with freeze_time(at(60)):
            viewer = await auth_service.authenticate(
                session=db_session,
                settings=settings,
                keys=KeyRing(settings),
                access_token=second.access_token,
            )
        assert viewer.user.id == test_user.id

    async def test_marks_the_presented_token_rotated_and_stores_the_new_one(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        with freeze_time(NOW):
            first = await login(db_session, settings, test_user)
        with freeze_time(at(60)):
            second = await refresh(db_session, settings, first.refresh_token)

        old = await stored_token(session_factory, first.refresh_token)
        new = await stored_token(session_factory, second.refresh_token)
        assert old.rotated_at == at(60)
        assert (new.created_at, new.rotated_at) == (at(60), None)
        assert new.session_id == old.session_id
        assert len(await token_rows(session_factory)) == 2

    async def test_records_the_use_but_keeps_the_sessions_expiry(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        with freeze_time(NOW):
            first = await login(db_session, settings, test_user)
        with freeze_time(at(3600)):
            second = await refresh(db_session, settings, first.refresh_token)

        auth_session = await stored_session(session_factory, second)
        assert auth_session.last_used_at == at(3600)
        assert auth_session.expires_at == NOW + timedelta(
            seconds=settings.refresh_token_expire_seconds
        )
        assert auth_session.revoked_at is None

    async def test_the_new_refresh_token_rotates_in_turn(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        with freeze_time(NOW):
            issued = await login(db_session, settings, test_user)
        for step in range(1, 4):
            with freeze_time(at(step * 600)):
                issued = await refresh(db_session, settings, issued.refresh_token)

        rows = await token_rows(session_factory)
        assert len(rows) == 4
        assert [row.rotated_at is None for row in rows].count(True) == 1
        assert (await stored_token(session_factory, issued.refresh_token)).rotated_at is None


class TestReuseDetection:
    async def test_reuse_after_the_grace_window_revokes_the_session(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        grace = settings.refresh_reuse_grace_seconds
        with freeze_time(NOW):
            first = await login(db_session, settings, test_user)
        with freeze_time(at(1)):
            second = await refresh(db_session, settings, first.refresh_token)

        with (
            freeze_time(at(1 + grace + 1)),
            pytest.raises(AuthenticationError) as caught,
        ):
            await refresh(db_session, settings, first.refresh_token)

        assert caught.value.reason is ErrorReason.REFRESH_TOKEN_REUSED
        auth_session = await stored_session(session_factory, first)
        assert auth_session.revoked_at == at(1 + grace + 1)
        assert (await stored_session(session_factory, second)).id == auth_session.id

    async def test_after_reuse_every_token_of_the_session_is_refused(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        grace = settings.refresh_reuse_grace_seconds
        with freeze_time(NOW):
            first = await login(db_session, settings, test_user)
        with freeze_time(at(1)):
            second = await refresh(db_session, settings, first.refresh_token)
        with freeze_time(at(grace + 2)), pytest.raises(AuthenticationError):
            await refresh(db_session, settings, first.refresh_token)

        with freeze_time(at(grace + 3)):
            for access_token in (first.access_token, second.access_token):
                with pytest.raises(
                    AuthenticationError, match=f"^{MESSAGES[ErrorReason.SESSION_ENDED]}$"
                ):
                    await auth_service.authenticate(
                        session=db_session,
                        settings=settings,
                        keys=KeyRing(settings),
                        access_token=access_token,
                    )
            # The legitimate holder's newest refresh token is dead too.
            with pytest.raises(
                AuthenticationError, match=f"^{MESSAGES[ErrorReason.SESSION_ENDED]}$"
            ):
                await refresh(db_session, settings, second.refresh_token)

    async def test_reuse_revokes_only_that_session(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        grace = settings.refresh_reuse_grace_seconds
        with freeze_time(NOW):
            stolen = await login(db_session, settings, test_user)
            other_device = await login(db_session, settings, test_user)
        with freeze_time(at(1)):
            await refresh(db_session, settings, stolen.refresh_token)
        with freeze_time(at(grace + 2)), pytest.raises(AuthenticationError):
            await refresh(db_session, settings, stolen.refresh_token)

        with freeze_time(at(grace + 3)):
            viewer = await auth_service.authenticate(
                session=db_session,
                settings=settings,
                keys=KeyRing(settings),
                access_token=other_device.access_token,
            )
            renewed = await refresh(db_session, settings, other_device.refresh_token)
        assert viewer.user.id == test_user.id
        assert renewed.user.id == test_user.id

    async def test_reuse_is_logged_as_a_warning(
        self,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        auth_log: list[logging.LogRecord],
    ) -> None:
        grace = settings.refresh_reuse_grace_seconds
        with freeze_time(NOW):
            first = await login(db_session, settings, test_user)
        with freeze_time(at(1)):
            await refresh(db_session, settings, first.refresh_token)
        with freeze_time(at(grace + 2)), pytest.raises(AuthenticationError):
            await refresh(db_session, settings, first.refresh_token)

        warnings = [record for record in auth_log if record.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "reuse" in warnings[0].getMessage()
        assert str(session_id_of(first, settings)) in warnings[0].getMessage()
        assert first.refresh_token not in warnings[0].getMessage()

    async def test_reuse_inside_the_grace_window_succeeds_and_keeps_the_session(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        grace = settings.refresh_reuse_grace_seconds
        assert grace > 1
        with freeze_time(NOW):
            first = await login(db_session, settings, test_user)
        with freeze_time(at(1)):
            second = await refresh(db_session, settings, first.refresh_token)

        with freeze_time(at(1 + grace - 1)):
            again = await refresh(db_session, settings, first.refresh_token)

        assert again.refresh_token == second.refresh_token
        assert again.access_token != second.access_token
        assert session_id_of(again, settings) == session_id_of(first, settings)
        assert (await stored_session(session_factory, first)).revoked_at is None
        # The first rotation time stands: the window is not stretched by each reuse.
        assert (await stored_token(session_factory, first.refresh_token)).rotated_at == at(1)
        with freeze_time(at(1 + grace)):
            for issued in (second, again):
                viewer = await auth_service.authenticate(
                    session=db_session,
                    settings=settings,
                    keys=KeyRing(settings),
                    access_token=issued.access_token,
                )
                assert viewer.user.id == test_user.id

    @pytest.mark.parametrize(
        ("after_rotation", "accepted"),
        [
            pytest.param(timedelta(seconds=10), True, id="exactly-the-grace"),
            pytest.param(timedelta(seconds=10, microseconds=1), False, id="just-past-the-grace"),
        ],
    )
    async def test_the_grace_window_is_inclusive(
        self,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        after_rotation: timedelta,
        accepted: bool,
    ) -> None:
        settings = settings.model_copy(update={"refresh_reuse_grace_seconds": 10})
        with freeze_time(NOW):
            first = await login(db_session, settings, test_user)
        with freeze_time(at(1)):
            await refresh(db_session, settings, first.refresh_token)

        with freeze_time(at(1) + after_rotation):
            if accepted:
                assert (await refresh(db_session, settings, first.refresh_token)).user
            else:
                with pytest.raises(
                    AuthenticationError, match=MESSAGES[ErrorReason.REFRESH_TOKEN_REUSED]
                ):
                    await refresh(db_session, settings, first.refresh_token)

    async def test_a_zero_grace_window_refuses_any_later_reuse(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        settings = settings.model_copy(update={"refresh_reuse_grace_seconds": 0})
        with freeze_time(NOW):
            first = await login(db_session, settings, test_user)
        with freeze_time(at(1)):
            await refresh(db_session, settings, first.refresh_token)

        with (
            freeze_time(at(1) + timedelta(microseconds=1)),
            pytest.raises(AuthenticationError, match=MESSAGES[ErrorReason.REFRESH_TOKEN_REUSED]),
        ):
            await refresh(db_session, settings, first.refresh_token)


@pytest_asyncio.fixture
async def file_session_factory(tmp_path: Path) -> AsyncIterator[SessionFactory]:
    """A SQLite file database: each session gets a connection of its own, as on a server."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'concurrent.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield create_session_factory(engine)
    await engine.dispose()


class TestConcurrentRefresh:
    async def test_two_tabs_refreshing_the_same_token_at_once_both_succeed(
        self, file_session_factory: SessionFactory, settings: Settings
    ) -> None:
        async with file_session_factory() as setup:
            user = await create_user(setup)
            first = await login(setup, settings, user)

        async def refresh_in_own_session() -> IssuedTokens:
            async with file_session_factory() as session:
                return await refresh(session, settings, first.refresh_token)

        results = await asyncio.gather(refresh_in_own_session(), refresh_in_own_session())

        # Both tabs hold the same successor: the session's tokens stay one chain.
        assert len({issued.refresh_token for issued in results}) == 1
        assert {session_id_of(issued, settings) for issued in results} == {
            session_id_of(first, settings)
        }
        assert (await stored_session(file_session_factory, first)).revoked_at is None
        async with file_session_factory() as session:
            for issued in results:
                viewer = await auth_service.authenticate(
                    session=session,
                    settings=settings,
                    keys=KeyRing(settings),
                    access_token=issued.access_token,
                )
                assert viewer.user.id == user.id
                # Each tab can carry on with the token it received (the same one, in grace).
                assert (await refresh(session, settings, issued.refresh_token)).user.id == user.id


class TestRefreshRefused:
    async def test_unknown_token_is_refused(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        await login(db_session, settings, test_user)

        with pytest.raises(AuthenticationError) as caught:
            await refresh(db_session, settings, tokens.new_opaque_token())

        assert caught.value.reason is ErrorReason.REFRESH_TOKEN_INVALID

    async def test_empty_token_is_refused(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        with pytest.raises(
            AuthenticationError, match=f"^{MESSAGES[ErrorReason.REFRESH_TOKEN_INVALID]}$"
        ):
            await refresh(db_session, settings, "")

    async def test_expired_session_is_refused(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        lifetime = settings.refresh_token_expire_seconds
        with freeze_time(NOW):
            issued = await login(db_session, settings, test_user)

        with freeze_time(at(lifetime - 1)):
            issued = await refresh(db_session, settings, issued.refresh_token)
        with freeze_time(at(lifetime)), pytest.raises(AuthenticationError) as caught:
            await refresh(db_session, settings, issued.refresh_token)

        assert caught.value.reason is ErrorReason.SESSION_ENDED
        assert (await stored_token(session_factory, issued.refresh_token)).rotated_at is None

    async def test_revoked_session_is_refused(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        issued = await login(db_session, settings, test_user)
        await auth_service.logout(session=db_session, refresh_token=issued.refresh_token)

        with pytest.raises(AuthenticationError, match=f"^{MESSAGES[ErrorReason.SESSION_ENDED]}$"):
            await refresh(db_session, settings, issued.refresh_token)

    async def test_inactive_user_is_forbidden_and_nothing_is_rotated(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
    ) -> None:
        user = await create_user(db_session)
        issued = await login(db_session, settings, user)
        user.is_active = False
        await db_session.commit()

        with pytest.raises(PermissionDeniedError, match=r"^This account is disabled$"):
            await refresh(db_session, settings, issued.refresh_token)

        rows = await token_rows(session_factory)
        assert len(rows) == 1
        assert rows[0].rotated_at is None


class TestLogout:
    async def test_revokes_the_session_of_the_token(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        with freeze_time(NOW):
            issued = await login(db_session, settings, test_user)
        with freeze_time(at(30)):
            await auth_service.logout(session=db_session, refresh_token=issued.refresh_token)

        assert (await stored_session(session_factory, issued)).revoked_at == at(30)
        with (
            freeze_time(at(31)),
            pytest.raises(AuthenticationError, match=MESSAGES[ErrorReason.SESSION_ENDED]),
        ):
            await auth_service.authenticate(
                session=db_session,
                settings=settings,
                keys=KeyRing(settings),
                access_token=issued.access_token,
            )

    async def test_other_sessions_stay_signed_in(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        leaving = await login(db_session, settings, test_user)
        staying = await login(db_session, settings, test_user)

        await auth_service.logout(session=db_session, refresh_token=leaving.refresh_token)

        viewer = await auth_service.authenticate(
            session=db_session,
            settings=settings,
            keys=KeyRing(settings),
            access_token=staying.access_token,
        )
        assert viewer.user.id == test_user.id

    async def test_a_rotated_token_of_the_session_also_logs_it_out(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        first = await login(db_session, settings, test_user)
        second = await refresh(db_session, settings, first.refresh_token)

        await auth_service.logout(session=db_session, refresh_token=first.refresh_token)

        assert (await stored_session(session_factory, second)).revoked_at is not None

    async def test_logging_out_twice_keeps_the_first_time(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        issued = await login(db_session, settings, test_user)
        with freeze_time(NOW):
            await auth_service.logout(session=db_session, refresh_token=issued.refresh_token)
        with freeze_time(at(60)):
            await auth_service.logout(session=db_session, refresh_token=issued.refresh_token)

        assert (await stored_session(session_factory, issued)).revoked_at == NOW

    async def test_unknown_token_is_refused(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        issued = await login(db_session, settings, test_user)

        with pytest.raises(AuthenticationError) as caught:
            await auth_service.logout(session=db_session, refresh_token="not-a-token")

        assert caught.value.reason is ErrorReason.REFRESH_TOKEN_INVALID
        assert (await stored_session(session_factory, issued)).revoked_at is None
