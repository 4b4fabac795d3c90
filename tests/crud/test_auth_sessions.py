import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import auth_sessions as sessions_crud
from gql_app.crud.auth_sessions import NewAuthSession
from gql_app.db import SessionFactory
from gql_app.models import AuthSession, User
from tests.factories import create_user

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def session_data(user: User, **values: object) -> NewAuthSession:
    values.setdefault("created_at", NOW)
    values.setdefault("expires_at", NOW + timedelta(days=30))
    return NewAuthSession(user_id=user.id, **values)  # type: ignore[arg-type]


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
                        AuthSession.created_at,
                        AuthSession.expires_at,
                        AuthSession.user_agent,
                        AuthSession.ip_address,
                        AuthSession.revoked_at,
                    ).where(AuthSession.id == auth_session.id)
                )
            ).one()
        assert tuple(row) == (
            user.id,
            NOW,
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


async def stored_revoked_at(session_factory: SessionFactory, session_id: uuid.UUID) -> object:
    async with session_factory() as other:
        return await other.scalar(
            select(AuthSession.revoked_at).where(AuthSession.id == session_id)
        )


class TestGetForUser:
    async def test_returns_the_users_own_session(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        created = await sessions_crud.create(session=db_session, data=session_data(user))

        found = await sessions_crud.get_for_user(
            session=db_session, session_id=created.id, user_id=user.id
        )

        assert found is not None
        assert found.id == created.id

    async def test_another_users_session_gives_none(self, db_session: AsyncSession) -> None:
        owner = await create_user(db_session)
        stranger = await create_user(db_session)
        created = await sessions_crud.create(session=db_session, data=session_data(owner))

        found = await sessions_crud.get_for_user(
            session=db_session, session_id=created.id, user_id=stranger.id
        )

        assert found is None

    async def test_unknown_session_id_gives_none(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        await sessions_crud.create(session=db_session, data=session_data(user))

        found = await sessions_crud.get_for_user(
            session=db_session, session_id=uuid.uuid4(), user_id=user.id
        )

        assert found is None

    async def test_revoked_session_is_still_found(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        created = await sessions_crud.create(session=db_session, data=session_data(user))
        await sessions_crud.revoke(session=db_session, auth_session=created, now=NOW)

        found = await sessions_crud.get_for_user(
            session=db_session, session_id=created.id, user_id=user.id
        )

        assert found is not None
        assert found.revoked_at == NOW


class TestListActiveForUser:
    async def test_lists_live_sessions_newest_first(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        created = []
        for minutes in (0, 10, 5):
            data = session_data(user, created_at=NOW + timedelta(minutes=minutes))
            created.append(await sessions_crud.create(session=db_session, data=data))
        await db_session.commit()

        listed = await sessions_crud.list_active_for_user(
            session=db_session, user_id=user.id, now=NOW + timedelta(hours=1)
        )

        oldest, newest, middle = created
        assert [auth_session.id for auth_session in listed] == [newest.id, middle.id, oldest.id]

    async def test_excludes_revoked_and_expired_sessions(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        live = await sessions_crud.create(session=db_session, data=session_data(user))
        revoked = await sessions_crud.create(session=db_session, data=session_data(user))
        await sessions_crud.revoke(session=db_session, auth_session=revoked, now=NOW)
        await sessions_crud.create(
            session=db_session, data=session_data(user, expires_at=NOW - timedelta(seconds=1))
        )
        await sessions_crud.create(session=db_session, data=session_data(user, expires_at=NOW))
        await db_session.commit()

        listed = await sessions_crud.list_active_for_user(
            session=db_session, user_id=user.id, now=NOW
        )

        assert [auth_session.id for auth_session in listed] == [live.id]

    async def test_excludes_other_users_sessions(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        other = await create_user(db_session)
        mine = await sessions_crud.create(session=db_session, data=session_data(user))
        await sessions_crud.create(session=db_session, data=session_data(other))

        listed = await sessions_crud.list_active_for_user(
            session=db_session, user_id=user.id, now=NOW
        )

        assert [auth_session.id for auth_session in listed] == [mine.id]

    async def test_user_without_sessions_gets_an_empty_list(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)

        listed = await sessions_crud.list_active_for_user(
            session=db_session, user_id=user.id, now=NOW
        )

        assert list(listed) == []


class TestRevokeAllForUser:
    async def test_revokes_every_unrevoked_session_of_the_user(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        first = await sessions_crud.create(session=db_session, data=session_data(user))
        second = await sessions_crud.create(session=db_session, data=session_data(user))
        await db_session.commit()

        await sessions_crud.revoke_all_for_user(session=db_session, user_id=user.id, now=NOW)
        await db_session.commit()

        assert await stored_revoked_at(session_factory, first.id) == NOW
        assert await stored_revoked_at(session_factory, second.id) == NOW

    async def test_sessions_loaded_in_the_same_session_are_brought_in_line(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        created = await sessions_crud.create(session=db_session, data=session_data(user))
        await db_session.commit()
        async with session_factory() as request_session:
            loaded = await sessions_crud.get_for_user(
                session=request_session, session_id=created.id, user_id=user.id
            )
            assert loaded is not None

            await sessions_crud.revoke_all_for_user(
                session=request_session, user_id=user.id, now=NOW
            )

            assert loaded.revoked_at == NOW
            assert loaded.is_usable(now=NOW - timedelta(days=1)) is False

    async def test_an_earlier_revocation_keeps_its_time(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        earlier = await sessions_crud.create(session=db_session, data=session_data(user))
        await sessions_crud.revoke(
            session=db_session, auth_session=earlier, now=NOW - timedelta(days=1)
        )
        await db_session.commit()

        await sessions_crud.revoke_all_for_user(session=db_session, user_id=user.id, now=NOW)
        await db_session.commit()

        assert await stored_revoked_at(session_factory, earlier.id) == NOW - timedelta(days=1)

    async def test_other_users_sessions_are_untouched(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        other = await create_user(db_session)
        await sessions_crud.create(session=db_session, data=session_data(user))
        bystander = await sessions_crud.create(session=db_session, data=session_data(other))
        await db_session.commit()

        await sessions_crud.revoke_all_for_user(session=db_session, user_id=user.id, now=NOW)
        await db_session.commit()

        assert await stored_revoked_at(session_factory, bystander.id) is None

    async def test_except_session_id_keeps_that_one_session(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        kept = await sessions_crud.create(session=db_session, data=session_data(user))
        ended = [
            await sessions_crud.create(session=db_session, data=session_data(user))
            for _ in range(2)
        ]
        await db_session.commit()

        await sessions_crud.revoke_all_for_user(
            session=db_session, user_id=user.id, now=NOW, except_session_id=kept.id
        )
        await db_session.commit()

        assert await stored_revoked_at(session_factory, kept.id) is None
        for auth_session in ended:
            assert await stored_revoked_at(session_factory, auth_session.id) == NOW

    async def test_does_not_commit(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        auth_session = await sessions_crud.create(session=db_session, data=session_data(user))
        await db_session.commit()
        session_id = auth_session.id

        await sessions_crud.revoke_all_for_user(session=db_session, user_id=user.id, now=NOW)
        await db_session.rollback()

        assert await stored_revoked_at(session_factory, session_id) is None


class TestMarkUsed:
    async def test_stamps_last_used_at_and_flushes(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await sessions_crud.create(session=db_session, data=session_data(user))
        assert auth_session.last_used_at is None

        await sessions_crud.mark_used(session=db_session, auth_session=auth_session, now=NOW)

        with db_session.no_autoflush:
            stored = await db_session.scalar(
                select(AuthSession.last_used_at).where(AuthSession.id == auth_session.id)
            )
        assert stored == NOW

    async def test_a_later_use_moves_the_stamp(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await sessions_crud.create(session=db_session, data=session_data(user))
        await sessions_crud.mark_used(session=db_session, auth_session=auth_session, now=NOW)

        later = NOW + timedelta(minutes=5)
        await sessions_crud.mark_used(session=db_session, auth_session=auth_session, now=later)

        assert auth_session.last_used_at == later
