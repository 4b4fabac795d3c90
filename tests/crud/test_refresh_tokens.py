import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import refresh_tokens as refresh_tokens_crud
from gql_app.db import SessionFactory
from gql_app.models import AuthSession, RefreshToken, User
from tests.auth_factories import create_auth_session
from tests.factories import create_user

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def token_hash(label: str | None = None) -> str:
    return hashlib.sha256((label or uuid.uuid4().hex).encode()).hexdigest()


class TestCreate:
    async def test_flushes_an_unrotated_token_of_the_session(
        self, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        digest = token_hash("issued")

        created = await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=digest
        )

        assert isinstance(created.id, uuid.UUID)
        with db_session.no_autoflush:
            row = (
                await db_session.execute(
                    select(
                        RefreshToken.session_id, RefreshToken.token_hash, RefreshToken.rotated_at
                    ).where(RefreshToken.id == created.id)
                )
            ).one()
        assert tuple(row) == (auth_session.id, digest, None)

    async def test_does_not_commit(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        digest = token_hash()

        await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=digest
        )
        await db_session.rollback()

        async with session_factory() as other:
            found = await refresh_tokens_crud.get_with_session_and_user(
                session=other, token_hash=digest
            )
        assert found is None

    async def test_duplicate_hash_raises_integrity_error(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=token_hash("dup")
        )

        with pytest.raises(IntegrityError):
            await refresh_tokens_crud.create(
                session=db_session, session_id=auth_session.id, token_hash=token_hash("dup")
            )


class TestGetWithSessionAndUser:
    async def test_returns_the_token_its_session_and_its_user(
        self, db_session: AsyncSession
    ) -> None:
        await create_user(db_session)
        owner = await create_user(db_session)
        auth_session = await create_auth_session(db_session, owner)
        other_session = await create_auth_session(db_session, owner)
        await refresh_tokens_crud.create(
            session=db_session, session_id=other_session.id, token_hash=token_hash()
        )
        digest = token_hash("wanted")
        created = await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=digest
        )
        await db_session.commit()

        found = await refresh_tokens_crud.get_with_session_and_user(
            session=db_session, token_hash=digest
        )

        assert found is not None
        refresh_token, found_session, user = found
        assert isinstance(refresh_token, RefreshToken)
        assert isinstance(found_session, AuthSession)
        assert isinstance(user, User)
        assert (refresh_token.id, found_session.id, user.id) == (
            created.id,
            auth_session.id,
            owner.id,
        )

    async def test_finds_rotated_tokens_too(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        digest = token_hash()
        created = await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=digest
        )
        await refresh_tokens_crud.retire(session=db_session, refresh_token=created, now=NOW)

        found = await refresh_tokens_crud.get_with_session_and_user(
            session=db_session, token_hash=digest
        )

        assert found is not None
        assert found[0].rotated_at == NOW

    async def test_finds_tokens_of_ended_sessions_too(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(
            db_session, user, expires_at=NOW - timedelta(days=1), revoked_at=NOW
        )
        digest = token_hash()
        await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=digest
        )

        found = await refresh_tokens_crud.get_with_session_and_user(
            session=db_session, token_hash=digest
        )

        assert found is not None
        assert found[1].revoked_at == NOW

    async def test_unknown_hash_gives_none(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=token_hash()
        )

        found = await refresh_tokens_crud.get_with_session_and_user(
            session=db_session, token_hash=token_hash("never-issued")
        )

        assert found is None


class TestRetire:
    async def test_stamps_rotated_at_and_says_so(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        created = await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=token_hash()
        )

        retired = await refresh_tokens_crud.retire(
            session=db_session, refresh_token=created, now=NOW
        )

        stored = await db_session.scalar(
            select(RefreshToken.rotated_at).where(RefreshToken.id == created.id)
        )
        assert (retired, stored) == (True, NOW)

    async def test_a_second_retirement_changes_nothing_and_says_so(
        self, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        created = await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=token_hash()
        )
        await refresh_tokens_crud.retire(session=db_session, refresh_token=created, now=NOW)

        again = await refresh_tokens_crud.retire(
            session=db_session, refresh_token=created, now=NOW + timedelta(minutes=1)
        )

        stored = await db_session.scalar(
            select(RefreshToken.rotated_at).where(RefreshToken.id == created.id)
        )
        assert (again, stored) == (False, NOW)

    async def test_other_tokens_of_the_session_are_untouched(
        self, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        rotated = await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=token_hash()
        )
        kept = await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=token_hash()
        )

        await refresh_tokens_crud.retire(session=db_session, refresh_token=rotated, now=NOW)

        stored = await db_session.scalar(
            select(RefreshToken.rotated_at).where(RefreshToken.id == kept.id)
        )
        assert stored is None


class TestGetByHash:
    async def test_finds_the_token_and_nothing_else(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        digest = token_hash()
        created = await refresh_tokens_crud.create(
            session=db_session, session_id=auth_session.id, token_hash=digest
        )

        found = await refresh_tokens_crud.get_by_hash(session=db_session, token_hash=digest)
        missing = await refresh_tokens_crud.get_by_hash(
            session=db_session, token_hash=token_hash("never-issued")
        )

        assert (found, missing) == (created, None)
