import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import auth_sessions as sessions_crud
from gql_app.crud.auth_sessions import NewAuthSession
from gql_app.models import AuthSession, User
from tests.factories import create_user

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def session_data(user: User, **values: object) -> NewAuthSession:
    return NewAuthSession(
        user_id=user.id,
        refresh_token_hash=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
        expires_at=NOW + timedelta(days=30),
        **values,  # type: ignore[arg-type]
    )


class TestCreate:
    async def test_flushes_a_session_with_the_given_details(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        data = session_data(user, user_agent="pytest-agent/1.0", ip_address="2001:db8::1")

        auth_session = await sessions_crud.create(session=db_session, data=data)

        assert isinstance(auth_session.id, uuid.UUID)
        with db_session.no_autoflush:
            row = (
                await db_session.execute(
                    select(
                        AuthSession.user_id,
                        AuthSession.refresh_token_hash,
                        AuthSession.expires_at,
                        AuthSession.user_agent,
                        AuthSession.ip_address,
                        AuthSession.revoked_at,
                    ).where(AuthSession.id == auth_session.id)
                )
            ).one()
        assert tuple(row) == (
            user.id,
            data.refresh_token_hash,
            NOW + timedelta(days=30),
            "pytest-agent/1.0",
            "2001:db8::1",
            None,
        )

    async def test_client_details_are_optional(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)

        auth_session = await sessions_crud.create(session=db_session, data=session_data(user))

        assert auth_session.user_agent is None
        assert auth_session.ip_address is None
        assert auth_session.is_usable(now=NOW) is True

    async def test_does_not_commit(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await sessions_crud.create(session=db_session, data=session_data(user))
        session_id = auth_session.id

        await db_session.rollback()

        assert await sessions_crud.get_with_user(session=db_session, session_id=session_id) is None


class TestGetWithUser:
    async def test_returns_the_session_and_its_user(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        created = await sessions_crud.create(session=db_session, data=session_data(user))
        await db_session.commit()

        found = await sessions_crud.get_with_user(session=db_session, session_id=created.id)

        assert found is not None
        auth_session, owner = found
        assert isinstance(auth_session, AuthSession)
        assert isinstance(owner, User)
        assert auth_session.id == created.id
        assert owner.id == user.id

    async def test_picks_the_owner_among_several_users(self, db_session: AsyncSession) -> None:
        await create_user(db_session)
        owner = await create_user(db_session)
        await create_user(db_session)
        created = await sessions_crud.create(session=db_session, data=session_data(owner))

        found = await sessions_crud.get_with_user(session=db_session, session_id=created.id)

        assert found is not None
        assert found[1].email == owner.email

    async def test_unknown_session_id_gives_none(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        await sessions_crud.create(session=db_session, data=session_data(user))

        assert (
            await sessions_crud.get_with_user(session=db_session, session_id=uuid.uuid4()) is None
        )


class TestRevoke:
    async def test_stamps_revoked_at_and_flushes(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await sessions_crud.create(session=db_session, data=session_data(user))

        await sessions_crud.revoke(session=db_session, auth_session=auth_session, now=NOW)

        with db_session.no_autoflush:
            stored = await db_session.scalar(
                select(AuthSession.revoked_at).where(AuthSession.id == auth_session.id)
            )
        assert stored == NOW
        assert auth_session.is_usable(now=NOW - timedelta(days=1)) is False

    async def test_revoking_again_keeps_the_first_revocation_time(
        self, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session)
        auth_session = await sessions_crud.create(session=db_session, data=session_data(user))
        await sessions_crud.revoke(session=db_session, auth_session=auth_session, now=NOW)

        await sessions_crud.revoke(
            session=db_session, auth_session=auth_session, now=NOW + timedelta(hours=1)
        )

        assert auth_session.revoked_at == NOW
        stored = await db_session.scalar(
            select(AuthSession.revoked_at).where(AuthSession.id == auth_session.id)
        )
        assert stored == NOW

    async def test_revokes_only_the_given_session(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        revoked = await sessions_crud.create(session=db_session, data=session_data(user))
        kept = await sessions_crud.create(session=db_session, data=session_data(user))

        await sessions_crud.revoke(session=db_session, auth_session=revoked, now=NOW)

        assert kept.revoked_at is None
        assert kept.is_usable(now=NOW) is True
