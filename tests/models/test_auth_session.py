import uuid
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.db import SessionFactory
from gql_app.models import AuthSession, User
from tests.factories import create_user

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def new_session(user: User, **values: object) -> AuthSession:
    values.setdefault("expires_at", NOW + timedelta(days=30))
    return AuthSession(user_id=user.id, **values)


async def count_sessions(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.scalar(
        select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user_id)
    )
    assert result is not None
    return result


class TestAuthSessionDefaults:
    async def test_new_session_is_stamped_now_and_has_no_optional_details(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        with freeze_time(NOW):
            auth_session = new_session(user)
            db_session.add(auth_session)
            await db_session.commit()

        async with session_factory() as other:
            stored = await other.get(AuthSession, auth_session.id)

        assert stored is not None
        assert isinstance(stored.id, uuid.UUID)
        assert stored.created_at == NOW
        assert stored.expires_at == NOW + timedelta(days=30)
        assert stored.expires_at.tzinfo is UTC
        assert stored.last_used_at is None
        assert stored.revoked_at is None
        assert stored.user_agent is None
        assert stored.ip_address is None


class TestAuthSessionConstraints:
    # The refresh token digest moved to its own table: its uniqueness is tested in
    # tests/models/test_refresh_token.py.

    async def test_session_must_belong_to_an_existing_user(self, db_session: AsyncSession) -> None:
        db_session.add(AuthSession(user_id=uuid.uuid4(), expires_at=NOW))

        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            await db_session.flush()


class TestCascadeDeleteOfSessions:
    async def test_deleting_a_user_through_the_orm_deletes_its_sessions(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        db_session.add_all([new_session(user), new_session(user)])
        await db_session.commit()

        async with session_factory() as other:
            doomed = await other.get(User, user.id)
            assert doomed is not None
            await other.delete(doomed)
            await other.commit()

        assert await count_sessions(db_session, user.id) == 0

    async def test_deleting_a_user_row_directly_cascades_in_the_database(
        self, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session)
        db_session.add(new_session(user))
        await db_session.commit()

        await db_session.execute(delete(User).where(User.id == user.id))
        await db_session.commit()

        assert await count_sessions(db_session, user.id) == 0

    async def test_other_users_sessions_survive(self, db_session: AsyncSession) -> None:
        doomed = await create_user(db_session)
        survivor = await create_user(db_session)
        db_session.add_all([new_session(doomed), new_session(survivor)])
        await db_session.commit()

        await db_session.execute(delete(User).where(User.id == doomed.id))
        await db_session.commit()

        assert await count_sessions(db_session, survivor.id) == 1


class TestIsUsable:
    @pytest.mark.parametrize(
        ("expires_at", "revoked_at", "usable"),
        [
            pytest.param(NOW + timedelta(seconds=1), None, True, id="live"),
            pytest.param(NOW, None, False, id="expires-exactly-now"),
            pytest.param(NOW - timedelta(seconds=1), None, False, id="expired"),
            pytest.param(NOW + timedelta(days=1), NOW - timedelta(hours=1), False, id="revoked"),
            pytest.param(
                NOW - timedelta(days=1), NOW - timedelta(days=2), False, id="revoked-and-expired"
            ),
        ],
    )
    def test_usable_only_while_unrevoked_and_unexpired(
        self, expires_at: datetime, revoked_at: datetime | None, usable: bool
    ) -> None:
        auth_session = AuthSession(
            user_id=uuid.uuid4(), expires_at=expires_at, revoked_at=revoked_at
        )

        assert auth_session.is_usable(now=NOW) is usable
