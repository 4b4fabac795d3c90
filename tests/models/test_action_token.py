import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.db import SessionFactory
from gql_app.models import ActionToken, ActionTokenPurpose, User
from tests.factories import create_user

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def token_hash(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def new_token(
    user: User,
    *,
    label: str | None = None,
    purpose: ActionTokenPurpose = ActionTokenPurpose.PASSWORD_RESET,
    **values: object,
) -> ActionToken:
    values.setdefault("expires_at", NOW + timedelta(hours=1))
    values.setdefault("email", user.email)
    return ActionToken(
        user_id=user.id,
        purpose=purpose,
        token_hash=token_hash(label or uuid.uuid4().hex),
        **values,
    )


async def count_tokens(session: AsyncSession, user_id: uuid.UUID | None = None) -> int:
    query = select(func.count()).select_from(ActionToken)
    if user_id is not None:
        query = query.where(ActionToken.user_id == user_id)
    result = await session.scalar(query)
    assert result is not None
    return result


class TestActionTokenDefaults:
    async def test_new_token_is_stamped_now_and_unused(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        with freeze_time(NOW):
            token = new_token(user, label="mailed", purpose=ActionTokenPurpose.EMAIL_VERIFICATION)
            db_session.add(token)
            await db_session.commit()

        async with session_factory() as other:
            stored = await other.get(ActionToken, token.id)

        assert stored is not None
        assert isinstance(stored.id, uuid.UUID)
        assert stored.user_id == user.id
        assert stored.purpose is ActionTokenPurpose.EMAIL_VERIFICATION
        assert stored.token_hash == token_hash("mailed")
        assert stored.email == user.email
        assert stored.created_at == NOW
        assert stored.expires_at == NOW + timedelta(hours=1)
        assert stored.expires_at.tzinfo is UTC
        assert stored.used_at is None

    @pytest.mark.parametrize(
        ("purpose", "stored_as"),
        [
            (ActionTokenPurpose.PASSWORD_RESET, "password_reset"),
            (ActionTokenPurpose.EMAIL_VERIFICATION, "email_verification"),
        ],
    )
    async def test_purpose_is_stored_by_its_value(
        self, db_session: AsyncSession, purpose: ActionTokenPurpose, stored_as: str
    ) -> None:
        user = await create_user(db_session)
        token = new_token(user, purpose=purpose)
        db_session.add(token)
        await db_session.commit()

        raw = await db_session.scalar(
            text("SELECT purpose FROM action_tokens WHERE id = :id"), {"id": token.id.hex}
        )

        assert raw == stored_as


class TestActionTokenConstraints:
    async def test_token_hash_is_unique(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        db_session.add(new_token(user, label="same-token"))
        await db_session.flush()
        db_session.add(
            new_token(user, label="same-token", purpose=ActionTokenPurpose.EMAIL_VERIFICATION)
        )

        with pytest.raises(IntegrityError, match="token_hash"):
            await db_session.flush()

    async def test_token_must_belong_to_an_existing_user(self, db_session: AsyncSession) -> None:
        db_session.add(
            ActionToken(
                user_id=uuid.uuid4(),
                purpose=ActionTokenPurpose.PASSWORD_RESET,
                token_hash=token_hash("orphan"),
                email="orphan@example.com",
                expires_at=NOW,
            )
        )

        with pytest.raises(IntegrityError, match="FOREIGN KEY"):
            await db_session.flush()


class TestCascadeDeleteOfActionTokens:
    async def test_deleting_a_user_row_deletes_its_tokens(self, db_session: AsyncSession) -> None:
        doomed = await create_user(db_session)
        survivor = await create_user(db_session)
        db_session.add_all(
            [
                new_token(doomed),
                new_token(doomed, purpose=ActionTokenPurpose.EMAIL_VERIFICATION),
                new_token(survivor),
            ]
        )
        await db_session.commit()

        await db_session.execute(delete(User).where(User.id == doomed.id))
        await db_session.commit()

        assert await count_tokens(db_session, doomed.id) == 0
        assert await count_tokens(db_session, survivor.id) == 1

    async def test_deleting_a_user_through_the_orm_deletes_its_tokens(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        db_session.add_all([new_token(user), new_token(user)])
        await db_session.commit()

        async with session_factory() as other:
            doomed = await other.get(User, user.id)
            assert doomed is not None
            await other.delete(doomed)
            await other.commit()

        assert await count_tokens(db_session) == 0


class TestIsUsable:
    @pytest.mark.parametrize(
        ("expires_at", "used_at", "usable"),
        [
            pytest.param(NOW + timedelta(seconds=1), None, True, id="live"),
            pytest.param(NOW, None, False, id="expires-exactly-now"),
            pytest.param(NOW - timedelta(seconds=1), None, False, id="expired"),
            pytest.param(NOW + timedelta(hours=1), NOW - timedelta(minutes=1), False, id="used"),
            pytest.param(
                NOW - timedelta(hours=1), NOW - timedelta(hours=2), False, id="used-and-expired"
            ),
        ],
    )
    def test_usable_only_while_unused_and_unexpired(
        self, expires_at: datetime, used_at: datetime | None, usable: bool
    ) -> None:
        token = ActionToken(
            user_id=uuid.uuid4(),
            purpose=ActionTokenPurpose.PASSWORD_RESET,
            token_hash=token_hash("x"),
            email="someone@example.com",
            expires_at=expires_at,
            used_at=used_at,
        )

        assert token.is_usable(now=NOW) is usable
