import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import action_tokens as action_tokens_crud
from gql_app.crud.action_tokens import NewActionToken
from gql_app.db import SessionFactory
from gql_app.models import ActionToken, ActionTokenPurpose, User
from tests.factories import create_user

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
RESET = ActionTokenPurpose.PASSWORD_RESET
VERIFY = ActionTokenPurpose.EMAIL_VERIFICATION


def token_hash(label: str | None = None) -> str:
    return hashlib.sha256((label or uuid.uuid4().hex).encode()).hexdigest()


def token_data(
    user: User, *, purpose: ActionTokenPurpose = RESET, label: str | None = None
) -> NewActionToken:
    return NewActionToken(
        user_id=user.id,
        purpose=purpose,
        token_hash=token_hash(label),
        email=user.email,
        expires_at=NOW + timedelta(hours=1),
    )


async def used_at(session_factory: SessionFactory, token_id: uuid.UUID) -> datetime | None:
    async with session_factory() as other:
        return await other.scalar(select(ActionToken.used_at).where(ActionToken.id == token_id))


class TestCreate:
    async def test_flushes_a_token_with_the_given_details(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        data = token_data(user, purpose=VERIFY)

        created = await action_tokens_crud.create(session=db_session, data=data)

        assert isinstance(created.id, uuid.UUID)
        with db_session.no_autoflush:
            row = (
                await db_session.execute(
                    select(
                        ActionToken.user_id,
                        ActionToken.purpose,
                        ActionToken.token_hash,
                        ActionToken.email,
                        ActionToken.expires_at,
                        ActionToken.used_at,
                    ).where(ActionToken.id == created.id)
                )
            ).one()
        assert tuple(row) == (
            user.id,
            VERIFY,
            data.token_hash,
            user.email,
            NOW + timedelta(hours=1),
            None,
        )

    async def test_does_not_commit(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        data = token_data(user)
        await action_tokens_crud.create(session=db_session, data=data)

        await db_session.rollback()

        found = await action_tokens_crud.get_by_hash(
            session=db_session, token_hash=data.token_hash, purpose=RESET
        )
        assert found is None

    async def test_duplicate_hash_raises_integrity_error(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        await action_tokens_crud.create(session=db_session, data=token_data(user, label="dup"))

        with pytest.raises(IntegrityError):
            await action_tokens_crud.create(
                session=db_session, data=token_data(user, label="dup", purpose=VERIFY)
            )


class TestGetByHash:
    async def test_returns_the_token_with_that_hash_and_purpose(
        self, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session)
        await action_tokens_crud.create(session=db_session, data=token_data(user))
        data = token_data(user)
        created = await action_tokens_crud.create(session=db_session, data=data)

        found = await action_tokens_crud.get_by_hash(
            session=db_session, token_hash=data.token_hash, purpose=RESET
        )

        assert found is not None
        assert found.id == created.id

    async def test_a_token_of_another_purpose_is_not_found(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        data = token_data(user, purpose=VERIFY)
        await action_tokens_crud.create(session=db_session, data=data)

        found = await action_tokens_crud.get_by_hash(
            session=db_session, token_hash=data.token_hash, purpose=RESET
        )

        assert found is None

    async def test_unknown_hash_gives_none(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        await action_tokens_crud.create(session=db_session, data=token_data(user))

        found = await action_tokens_crud.get_by_hash(
            session=db_session, token_hash=token_hash("never-issued"), purpose=RESET
        )

        assert found is None

    async def test_used_and_expired_tokens_are_still_found(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        # Usability is the caller's question (ActionToken.is_usable), not the lookup's.
        user = await create_user(db_session)
        data = token_data(user)
        created = await action_tokens_crud.create(session=db_session, data=data)
        await action_tokens_crud.use_all_for_user(
            session=db_session, user_id=user.id, purpose=RESET, now=NOW
        )
        await db_session.commit()

        async with session_factory() as other:
            found = await action_tokens_crud.get_by_hash(
                session=other, token_hash=data.token_hash, purpose=RESET
            )

        assert found is not None
        assert found.id == created.id
        assert found.used_at == NOW
        assert found.is_usable(now=NOW + timedelta(hours=2)) is False


class TestUseAllForUser:
    async def test_spends_every_unused_token_of_that_purpose(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        first = await action_tokens_crud.create(session=db_session, data=token_data(user))
        second = await action_tokens_crud.create(session=db_session, data=token_data(user))
        await db_session.commit()

        await action_tokens_crud.use_all_for_user(
            session=db_session, user_id=user.id, purpose=RESET, now=NOW
        )
        await db_session.commit()

        assert await used_at(session_factory, first.id) == NOW
        assert await used_at(session_factory, second.id) == NOW

    async def test_tokens_of_another_purpose_stay_usable(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        verification = await action_tokens_crud.create(
            session=db_session, data=token_data(user, purpose=VERIFY)
        )
        await db_session.commit()

        await action_tokens_crud.use_all_for_user(
            session=db_session, user_id=user.id, purpose=RESET, now=NOW
        )
        await db_session.commit()

        assert await used_at(session_factory, verification.id) is None

    async def test_other_users_tokens_stay_usable(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        other = await create_user(db_session)
        bystander = await action_tokens_crud.create(session=db_session, data=token_data(other))
        await db_session.commit()

        await action_tokens_crud.use_all_for_user(
            session=db_session, user_id=user.id, purpose=RESET, now=NOW
        )
        await db_session.commit()

        assert await used_at(session_factory, bystander.id) is None

    async def test_an_earlier_use_keeps_its_time(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        created = await action_tokens_crud.create(session=db_session, data=token_data(user))
        earlier = NOW - timedelta(minutes=30)
        await action_tokens_crud.use_all_for_user(
            session=db_session, user_id=user.id, purpose=RESET, now=earlier
        )
        await db_session.commit()

        await action_tokens_crud.use_all_for_user(
            session=db_session, user_id=user.id, purpose=RESET, now=NOW
        )
        await db_session.commit()

        assert await used_at(session_factory, created.id) == earlier

    async def test_does_not_commit(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        created = await action_tokens_crud.create(session=db_session, data=token_data(user))
        await db_session.commit()
        token_id = created.id

        await action_tokens_crud.use_all_for_user(
            session=db_session, user_id=user.id, purpose=RESET, now=NOW
        )
        await db_session.rollback()

        assert await used_at(session_factory, token_id) is None
