"""A user's own sessions: listing, signing out everywhere, ending one (services/sessions.py)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.db import SessionFactory
from gql_app.errors import InputValidationError, NotFoundError
from gql_app.models import User
from gql_app.services import sessions as sessions_service
from tests.auth_factories import create_auth_session
from tests.factories import create_user
from tests.fixtures.database import revoked_at
from tests.services.support import viewer_for

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)


class TestListSessions:
    async def test_lists_the_viewers_live_sessions_newest_first(
        self, db_session: AsyncSession, test_user: User
    ) -> None:
        older = await create_auth_session(db_session, test_user, created_at=NOW - timedelta(days=2))
        newer = await create_auth_session(
            db_session, test_user, created_at=NOW - timedelta(hours=1)
        )
        viewer = await viewer_for(
            db_session,
            test_user,
            auth_session=await create_auth_session(
                db_session, test_user, created_at=NOW - timedelta(days=1)
            ),
        )

        with freeze_time(NOW):
            listed = await sessions_service.list_sessions(session=db_session, viewer=viewer)

        assert [auth_session.id for auth_session in listed] == [
            newer.id,
            viewer.auth_session.id,
            older.id,
        ]

    async def test_leaves_out_ended_sessions_and_other_users_sessions(
        self, db_session: AsyncSession, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        await create_auth_session(db_session, test_user, revoked_at=NOW - timedelta(minutes=1))
        await create_auth_session(db_session, test_user, expires_at=NOW - timedelta(minutes=1))
        await create_auth_session(db_session, await create_user(db_session))

        with freeze_time(NOW):
            listed = await sessions_service.list_sessions(session=db_session, viewer=viewer)

        assert [auth_session.id for auth_session in listed] == [viewer.auth_session.id]

    async def test_a_session_expiring_later_drops_out_once_the_clock_passes_it(
        self, db_session: AsyncSession, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        expiring = await create_auth_session(
            db_session, test_user, expires_at=NOW + timedelta(hours=1)
        )

        with freeze_time(NOW):
            before = await sessions_service.list_sessions(session=db_session, viewer=viewer)
        with freeze_time(NOW + timedelta(hours=1)):
            after = await sessions_service.list_sessions(session=db_session, viewer=viewer)

        assert expiring.id in {auth_session.id for auth_session in before}
        assert [auth_session.id for auth_session in after] == [viewer.auth_session.id]


class TestLogoutAll:
    async def test_revokes_every_session_of_the_viewer_including_the_current_one(
        self, db_session: AsyncSession, session_factory: SessionFactory, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        other = await create_auth_session(db_session, test_user)

        with freeze_time(NOW):
            await sessions_service.logout_all(session=db_session, viewer=viewer)

        assert await revoked_at(session_factory, viewer.auth_session.id) == NOW
        assert await revoked_at(session_factory, other.id) == NOW

    async def test_other_users_stay_signed_in(
        self, db_session: AsyncSession, session_factory: SessionFactory, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        bystander = await create_auth_session(db_session, await create_user(db_session))

        await sessions_service.logout_all(session=db_session, viewer=viewer)

        assert await revoked_at(session_factory, bystander.id) is None


class TestRevokeSession:
    async def test_revokes_one_of_the_viewers_sessions(
        self, db_session: AsyncSession, session_factory: SessionFactory, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        target = await create_auth_session(db_session, test_user)

        with freeze_time(NOW):
            await sessions_service.revoke_session(
                session=db_session, viewer=viewer, session_id=str(target.id)
            )

        assert await revoked_at(session_factory, target.id) == NOW
        assert await revoked_at(session_factory, viewer.auth_session.id) is None

    async def test_the_viewer_may_end_the_current_session(
        self, db_session: AsyncSession, session_factory: SessionFactory, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)

        await sessions_service.revoke_session(
            session=db_session, viewer=viewer, session_id=str(viewer.auth_session.id)
        )

        assert await revoked_at(session_factory, viewer.auth_session.id) is not None

    async def test_revoking_an_already_revoked_session_keeps_its_time(
        self, db_session: AsyncSession, session_factory: SessionFactory, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        earlier = NOW - timedelta(days=1)
        target = await create_auth_session(db_session, test_user, revoked_at=earlier)

        with freeze_time(NOW):
            await sessions_service.revoke_session(
                session=db_session, viewer=viewer, session_id=str(target.id)
            )

        assert await revoked_at(session_factory, target.id) == earlier

    async def test_another_users_session_is_not_found_and_stays_live(
        self, db_session: AsyncSession, session_factory: SessionFactory, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        foreign = await create_auth_session(db_session, await create_user(db_session))

        with pytest.raises(NotFoundError) as caught:
            await sessions_service.revoke_session(
                session=db_session, viewer=viewer, session_id=str(foreign.id)
            )

        assert caught.value.message == "Session not found"
        assert await revoked_at(session_factory, foreign.id) is None

    async def test_unknown_session_is_not_found(
        self, db_session: AsyncSession, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)

        with pytest.raises(NotFoundError, match=r"^Session not found$"):
            await sessions_service.revoke_session(
                session=db_session, viewer=viewer, session_id=str(uuid.uuid4())
            )

    @pytest.mark.parametrize("session_id", ["", "not-a-uuid", "1234", "g" * 32])
    async def test_malformed_id_is_refused_on_the_id_field(
        self, db_session: AsyncSession, test_user: User, session_id: str
    ) -> None:
        viewer = await viewer_for(db_session, test_user)

        with pytest.raises(InputValidationError) as caught:
            await sessions_service.revoke_session(
                session=db_session, viewer=viewer, session_id=session_id
            )

        assert [problem.field for problem in caught.value.fields] == ["id"]
        assert caught.value.message == "Invalid session id"
