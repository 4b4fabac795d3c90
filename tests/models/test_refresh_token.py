import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.db import SessionFactory
from gql_app.models import AuthSession, RefreshToken, User
from tests.factories import create_user

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def token_hash(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


async def add_session(session: AsyncSession, user: User) -> AuthSession:
    auth_session = AuthSession(user_id=user.id, expires_at=NOW + timedelta(days=30))
    session.add(auth_session)
    await session.commit()
    return auth_session


def new_token(auth_session: AuthSession, *, label: str | None = None) -> RefreshToken:
    return RefreshToken(
        session_id=auth_session.id, token_hash=token_hash(label or uuid.uuid4().hex)
    )


async def count_tokens(session: AsyncSession, session_id: uuid.UUID | None = None) -> int:
    query = select(func.count()).select_from(RefreshToken)
    if session_id is not None:
        query = query.where(RefreshToken.session_id == session_id)
    result = await session.scalar(query)
    assert result is not None
    return result


class TestRefreshTokenDefaults:
    async def test_new_token_is_stamped_now_and_not_rotated(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        auth_session = await add_session(db_session, user)
        with freeze_time(NOW):
            token = new_token(auth_session, label="fresh")
            db_session.add(token)
            await db_session.commit()

        async with session_factory() as other:
            stored = await other.get(RefreshToken, token.id)

        assert stored is not None
        assert isinstance(stored.id, uuid.UUID)
        assert stored.session_id == auth_session.id
        assert stored.token_hash == token_hash("fresh")
        assert stored.created_at == NOW
        assert stored.created_at.tzinfo is UTC
        assert stored.rotated_at is None

    async def test_a_session_holds_its_tokens(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await add_session(db_session, user)
        db_session.add_all([new_token(auth_session), new_token(auth_session)])
        await db_session.commit()

        await db_session.refresh(auth_session, ["refresh_tokens"])

        assert len(auth_session.refresh_tokens) == 2
        assert {token.auth_session.id for token in auth_session.refresh_tokens} == {auth_session.id}


class TestRefreshTokenConstraints:
    async def test_token_hash_is_unique(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await add_session(db_session, user)
        db_session.add(new_token(auth_session, label="same-token"))
        await db_session.flush()
        db_session.add(new_token(auth_session, label="same-token"))

        with pytest.raises(IntegrityError, match="token_hash"):
            await db_session.flush()

    async def test_token_hash_is_unique_across_sessions(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        first = await add_session(db_session, user)
        second = await add_session(db_session, user)
        db_session.add(new_token(first, label="same-token"))
        await db_session.flush()
        db_session.add(new_token(second, label="same-token"))

        with pytest.raises(IntegrityError, match="token_hash"):
            await db_session.flush()

    async def test_token_must_belong_to_an_existing_session(self, db_session: AsyncSession) -> None:
        db_session.add(RefreshToken(session_id=uuid.uuid4(), token_hash=token_hash("orphan")))

        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            await db_session.flush()


class TestCascadeDeleteOfRefreshTokens:
    async def test_deleting_a_session_row_deletes_its_tokens(
        self, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session)
        doomed = await add_session(db_session, user)
        survivor = await add_session(db_session, user)
        db_session.add_all([new_token(doomed), new_token(doomed), new_token(survivor)])
        await db_session.commit()

        await db_session.execute(delete(AuthSession).where(AuthSession.id == doomed.id))
        await db_session.commit()

        assert await count_tokens(db_session, doomed.id) == 0
        assert await count_tokens(db_session, survivor.id) == 1

    async def test_deleting_a_session_through_the_orm_deletes_its_tokens(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        auth_session = await add_session(db_session, user)
        db_session.add_all([new_token(auth_session), new_token(auth_session)])
        await db_session.commit()

        async with session_factory() as other:
            doomed = await other.get(AuthSession, auth_session.id)
            assert doomed is not None
            await other.delete(doomed)
            await other.commit()

        assert await count_tokens(db_session) == 0

    async def test_deleting_the_user_deletes_the_tokens_of_all_its_sessions(
        self, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session)
        bystander = await create_user(db_session)
        kept_session = await add_session(db_session, bystander)
        for auth_session in (
            await add_session(db_session, user),
            await add_session(db_session, user),
        ):
            db_session.add(new_token(auth_session))
        db_session.add(new_token(kept_session))
        await db_session.commit()

        await db_session.execute(delete(User).where(User.id == user.id))
        await db_session.commit()

        assert await count_tokens(db_session) == 1
        assert await count_tokens(db_session, kept_session.id) == 1
