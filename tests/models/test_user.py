import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from freezegun import freeze_time
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.db import SessionFactory
from gql_app.models import User
from gql_app.models.base import UTCDateTime
from tests.factories import USER_PASSWORD, create_user, hashed, unique_email

FROZEN_AT = datetime(2030, 5, 17, 9, 30, tzinfo=UTC)


def new_user(email: str | None = None, **values: object) -> User:
    return User(email=email or unique_email(), password_hash=hashed(USER_PASSWORD), **values)


class TestUserDefaults:
    async def test_new_user_is_active_ordinary_and_unverified(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = new_user()
        db_session.add(user)
        await db_session.commit()

        async with session_factory() as other:
            stored = await other.get(User, user.id)

        assert stored is not None
        assert isinstance(stored.id, uuid.UUID)
        assert stored.is_active is True
        assert stored.is_superuser is False
        assert stored.is_verified is False
        assert stored.full_name is None

    async def test_each_user_gets_its_own_uuid(self, db_session: AsyncSession) -> None:
        first, second = new_user(), new_user()
        db_session.add_all([first, second])
        await db_session.flush()

        assert first.id != second.id

    async def test_timestamps_default_to_the_insert_time_in_utc(
        self, db_session: AsyncSession
    ) -> None:
        with freeze_time(FROZEN_AT):
            user = await create_user(db_session)

        assert user.created_at == FROZEN_AT
        assert user.updated_at == FROZEN_AT
        assert user.created_at.tzinfo is UTC

    async def test_update_moves_updated_at_but_not_created_at(
        self, db_session: AsyncSession
    ) -> None:
        with freeze_time(FROZEN_AT):
            user = await create_user(db_session)
        later = FROZEN_AT + timedelta(days=2)

        with freeze_time(later):
            user.full_name = "Renamed Person"
            await db_session.commit()
        await db_session.refresh(user)

        assert user.created_at == FROZEN_AT
        assert user.updated_at == later

    def test_repr_names_id_and_email_but_not_the_password_hash(self) -> None:
        user = new_user(email="repr@example.com", id=uuid.UUID(int=7))

        assert repr(user) == f"User(id={uuid.UUID(int=7)}, email='repr@example.com')"
        assert user.password_hash not in repr(user)


class TestUserEmailConstraints:
    @pytest.mark.parametrize("email", ["Mixed@example.com", "UPPER@EXAMPLE.COM", "a@Example.com"])
    async def test_database_rejects_an_email_that_is_not_lowercase(
        self, db_session: AsyncSession, email: str
    ) -> None:
        db_session.add(new_user(email=email))

        with pytest.raises(IntegrityError, match="email_lowercase"):
            await db_session.flush()

    async def test_lowercase_email_is_accepted(self, db_session: AsyncSession) -> None:
        db_session.add(new_user(email="lower.case+tag@example.com"))
        await db_session.commit()

        stored = await db_session.scalar(
            select(User.email).where(User.email == "lower.case+tag@example.com")
        )
        assert stored == "lower.case+tag@example.com"

    async def test_database_rejects_a_second_account_with_the_same_email(
        self, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="taken@example.com")
        db_session.add(new_user(email="taken@example.com"))

        with pytest.raises(IntegrityError, match=r"users\.email"):
            await db_session.flush()

    async def test_same_email_in_another_case_cannot_slip_past_uniqueness(
        self, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="taken@example.com")
        db_session.add(new_user(email="Taken@example.com"))

        # The lowercase check is what makes the plain unique constraint case-insensitive.
        with pytest.raises(IntegrityError):
            await db_session.flush()


class TestUTCDateTime:
    async def test_aware_datetime_in_another_zone_comes_back_as_the_same_instant_in_utc(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        plus_two = timezone(timedelta(hours=2))
        user = new_user(created_at=datetime(2024, 3, 1, 12, 0, tzinfo=plus_two))
        db_session.add(user)
        await db_session.commit()

        async with session_factory() as other:
            stored = await other.get(User, user.id)

        assert stored is not None
        assert stored.created_at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
        assert stored.created_at.tzinfo is UTC

    async def test_sqlite_column_holds_the_utc_wall_time(self, db_session: AsyncSession) -> None:
        minus_five = timezone(timedelta(hours=-5))
        user = new_user(created_at=datetime(2024, 3, 1, 20, 15, 30, 123456, tzinfo=minus_five))
        db_session.add(user)
        await db_session.commit()

        raw = await db_session.scalar(
            text("SELECT created_at FROM users WHERE email = :email"), {"email": user.email}
        )

        assert raw == "2024-03-02 01:15:30.123456"

    async def test_naive_datetime_is_refused(self, db_session: AsyncSession) -> None:
        db_session.add(new_user(created_at=datetime(2024, 3, 1, 12, 0)))

        with pytest.raises(StatementError, match="naive datetimes are not stored"):
            await db_session.flush()

    def test_none_is_passed_through_both_ways(self) -> None:
        column_type = UTCDateTime()

        assert column_type.process_bind_param(None, dialect=None) is None  # type: ignore[arg-type]
        assert column_type.process_result_value(None, dialect=None) is None  # type: ignore[arg-type]

    def test_aware_value_from_a_timezone_aware_driver_is_converted_to_utc(self) -> None:
        # PostgreSQL drivers hand back aware values in the session's zone.
        from_driver = datetime(2024, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=3)))

        result = UTCDateTime().process_result_value(from_driver, dialect=None)  # type: ignore[arg-type]

        assert result == datetime(2024, 6, 1, 5, 0, tzinfo=UTC)
        assert result is not None
        assert result.tzinfo is UTC
