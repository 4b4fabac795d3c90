import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import users as users_crud
from gql_app.crud.keyset import KeysetPosition
from gql_app.crud.users import NewUser, UserFilter
from gql_app.db import SessionFactory
from gql_app.models import ActionToken, AuthSession, RefreshToken, User
from tests.auth_factories import create_action_token, create_auth_session, create_refresh_token
from tests.factories import USER_PASSWORD, create_user, hashed, unique_email
from tests.fixtures.database import count_rows

T0 = datetime(2030, 1, 1, tzinfo=UTC)
NO_FILTER = UserFilter()


async def add_user(
    session: AsyncSession,
    *,
    created_at: datetime,
    email: str | None = None,
    user_id: uuid.UUID | None = None,
    full_name: str | None = None,
    is_active: bool = True,
    is_superuser: bool = False,
) -> User:
    user = User(
        id=user_id or uuid.uuid4(),
        email=email or unique_email(),
        password_hash=hashed(USER_PASSWORD),
        full_name=full_name,
        is_active=is_active,
        is_superuser=is_superuser,
        created_at=created_at,
    )
    session.add(user)
    await session.commit()
    return user


def emails(users: object) -> list[str]:
    return [user.email for user in users]  # type: ignore[attr-defined]


def position_of(user: User) -> KeysetPosition:
    return KeysetPosition(at=user.created_at, id=user.id)


class TestGetById:
    async def test_returns_the_user(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)

        found = await users_crud.get_by_id(session=db_session, user_id=user.id)

        assert found is not None
        assert found.id == user.id
        assert found.email == user.email

    async def test_unknown_id_gives_none(self, db_session: AsyncSession) -> None:
        await create_user(db_session)

        assert await users_crud.get_by_id(session=db_session, user_id=uuid.uuid4()) is None


class TestGetByEmail:
    async def test_returns_the_user_with_that_email(self, db_session: AsyncSession) -> None:
        await create_user(db_session, email="other@example.com")
        user = await create_user(db_session, email="wanted@example.com")

        found = await users_crud.get_by_email(session=db_session, email="wanted@example.com")

        assert found is not None
        assert found.id == user.id

    async def test_unknown_email_gives_none(self, db_session: AsyncSession) -> None:
        await create_user(db_session, email="someone@example.com")

        assert await users_crud.get_by_email(session=db_session, email="nobody@example.com") is None

    async def test_matches_exactly_because_callers_normalise_first(
        self, db_session: AsyncSession
    ) -> None:
        await create_user(db_session, email="exact@example.com")

        assert await users_crud.get_by_email(session=db_session, email="Exact@example.com") is None


class TestCreate:
    async def test_flushes_the_new_user_with_every_given_field(
        self, db_session: AsyncSession
    ) -> None:
        data = NewUser(
            email="created@example.com",
            password_hash="$argon2id$stored-as-given",
            full_name="Created Person",
            is_active=False,
            is_superuser=True,
            is_verified=True,
        )

        user = await users_crud.create(session=db_session, data=data)

        assert isinstance(user.id, uuid.UUID)
        with db_session.no_autoflush:
            row = (
                await db_session.execute(
                    select(
                        User.email,
                        User.password_hash,
                        User.full_name,
                        User.is_active,
                        User.is_superuser,
                        User.is_verified,
                    ).where(User.id == user.id)
                )
            ).one()
        assert tuple(row) == (
            "created@example.com",
            "$argon2id$stored-as-given",
            "Created Person",
            False,
            True,
            True,
        )

    async def test_new_user_defaults_to_an_active_unverified_ordinary_account(
        self, db_session: AsyncSession
    ) -> None:
        user = await users_crud.create(
            session=db_session, data=NewUser(email=unique_email(), password_hash="hash")
        )

        assert (user.is_active, user.is_superuser, user.is_verified) == (True, False, False)
        assert user.full_name is None
        assert user.created_at.tzinfo is UTC

    async def test_does_not_commit(self, db_session: AsyncSession) -> None:
        await users_crud.create(
            session=db_session, data=NewUser(email="uncommitted@example.com", password_hash="h")
        )

        await db_session.rollback()

        assert (
            await users_crud.get_by_email(session=db_session, email="uncommitted@example.com")
            is None
        )

    async def test_duplicate_email_raises_integrity_error(self, db_session: AsyncSession) -> None:
        await create_user(db_session, email="dupe@example.com")

        with pytest.raises(IntegrityError):
            await users_crud.create(
                session=db_session, data=NewUser(email="dupe@example.com", password_hash="h")
            )


class TestSetPasswordHash:
    async def test_stores_the_new_hash_and_flushes_it(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)

        await users_crud.set_password_hash(session=db_session, user=user, password_hash="new-hash")

        with db_session.no_autoflush:
            stored = await db_session.scalar(select(User.password_hash).where(User.id == user.id))
        assert stored == "new-hash"
        assert user.password_hash == "new-hash"

    async def test_does_not_commit(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        user_id, original = user.id, user.password_hash

        await users_crud.set_password_hash(session=db_session, user=user, password_hash="new-hash")
        await db_session.rollback()

        stored = await db_session.scalar(select(User.password_hash).where(User.id == user_id))
        assert stored == original

    async def test_moves_updated_at(self, db_session: AsyncSession) -> None:
        with freeze_time(T0):
            user = await create_user(db_session)

        with freeze_time(T0 + timedelta(hours=1)):
            await users_crud.set_password_hash(
                session=db_session, user=user, password_hash="new-hash"
            )
            await db_session.commit()
        await db_session.refresh(user)

        assert user.updated_at == T0 + timedelta(hours=1)
        assert user.created_at == T0


class TestListPageOrdering:
    async def test_orders_by_creation_time_then_id(self, db_session: AsyncSession) -> None:
        # Inserted out of order; two share a creation time, so the id breaks the tie.
        late = await add_user(
            db_session, created_at=T0 + timedelta(minutes=2), email="late@example.com"
        )
        tie_high = await add_user(
            db_session, created_at=T0, email="tie-high@example.com", user_id=uuid.UUID(int=2)
        )
        early = await add_user(
            db_session, created_at=T0 - timedelta(minutes=1), email="early@example.com"
        )
        tie_low = await add_user(
            db_session, created_at=T0, email="tie-low@example.com", user_id=uuid.UUID(int=1)
        )

        page = await users_crud.list_page(session=db_session, user_filter=NO_FILTER, limit=10)

        assert emails(page) == emails([early, tie_low, tie_high, late])

    async def test_limit_caps_the_page(self, db_session: AsyncSession) -> None:
        for minute in range(3):
            await add_user(db_session, created_at=T0 + timedelta(minutes=minute))

        page = await users_crud.list_page(session=db_session, user_filter=NO_FILTER, limit=2)

        assert len(page) == 2

    async def test_empty_table_gives_an_empty_page(self, db_session: AsyncSession) -> None:
        assert await users_crud.list_page(session=db_session, user_filter=NO_FILTER, limit=5) == []

    async def test_walking_pages_after_the_last_row_visits_everyone_once_in_order(
        self, db_session: AsyncSession
    ) -> None:
        users = [
            await add_user(db_session, created_at=T0 + timedelta(seconds=second))
            for second in (5, 1, 3, 3, 3, 0, 4)
        ]
        expected = sorted(users, key=lambda user: (user.created_at, user.id.hex))

        visited: list[User] = []
        after: KeysetPosition | None = None
        pages = 0
        while True:
            page = await users_crud.list_page(
                session=db_session, user_filter=NO_FILTER, limit=3, after=after
            )
            if not page:
                break
            pages += 1
            visited.extend(page)
            after = position_of(page[-1])

        assert pages == 3
        assert emails(visited) == emails(expected)

    async def test_after_a_row_continues_with_a_tied_row_of_higher_id(
        self, db_session: AsyncSession
    ) -> None:
        first = await add_user(db_session, created_at=T0, user_id=uuid.UUID(int=1))
        second = await add_user(db_session, created_at=T0, user_id=uuid.UUID(int=2))

        page = await users_crud.list_page(
            session=db_session, user_filter=NO_FILTER, limit=5, after=position_of(first)
        )

        assert emails(page) == [second.email]

    async def test_after_the_last_row_gives_an_empty_page(self, db_session: AsyncSession) -> None:
        await add_user(db_session, created_at=T0)
        last = await add_user(db_session, created_at=T0 + timedelta(seconds=1))

        page = await users_crud.list_page(
            session=db_session, user_filter=NO_FILTER, limit=5, after=position_of(last)
        )

        assert page == []

    # Regression: the keyset position was once bound as a plain DateTime, so on SQLite a
    # position in another zone compared by its wall time.
    async def test_a_position_in_another_timezone_means_the_same_instant(
        self, db_session: AsyncSession
    ) -> None:
        first = await add_user(db_session, created_at=T0)
        second = await add_user(db_session, created_at=T0 + timedelta(hours=1))
        in_plus_five = KeysetPosition(
            at=first.created_at.astimezone(timezone(timedelta(hours=5))), id=first.id
        )

        page = await users_crud.list_page(
            session=db_session, user_filter=NO_FILTER, limit=5, after=in_plus_five
        )

        assert emails(page) == [second.email]


class TestListPageFilters:
    async def test_search_matches_part_of_the_email_in_any_case(
        self, db_session: AsyncSession
    ) -> None:
        match = await add_user(db_session, created_at=T0, email="grace.hopper@navy.example")
        await add_user(db_session, created_at=T0, email="alan@example.com")

        page = await users_crud.list_page(
            session=db_session, user_filter=UserFilter(search="HOPPER@NAVY"), limit=10
        )

        assert emails(page) == [match.email]

    async def test_search_matches_part_of_the_full_name_in_any_case(
        self, db_session: AsyncSession
    ) -> None:
        match = await add_user(db_session, created_at=T0, full_name="Ada Lovelace")
        await add_user(db_session, created_at=T0, full_name="Charles Babbage")
        await add_user(db_session, created_at=T0, full_name=None)

        page = await users_crud.list_page(
            session=db_session, user_filter=UserFilter(search="lovel"), limit=10
        )

        assert emails(page) == [match.email]

    async def test_percent_sign_is_matched_literally(self, db_session: AsyncSession) -> None:
        match = await add_user(db_session, created_at=T0, full_name="100% Cotton")
        await add_user(db_session, created_at=T0, full_name="1000 Cotton")

        page = await users_crud.list_page(
            session=db_session, user_filter=UserFilter(search="0% C"), limit=10
        )

        assert emails(page) == [match.email]

    async def test_underscore_is_matched_literally(self, db_session: AsyncSession) -> None:
        match = await add_user(db_session, created_at=T0, email="snake_case@example.com")
        await add_user(db_session, created_at=T0, email="snakexcase@example.com")

        page = await users_crud.list_page(
            session=db_session, user_filter=UserFilter(search="e_c"), limit=10
        )

        assert emails(page) == [match.email]

    async def test_escape_character_itself_is_matched_literally(
        self, db_session: AsyncSession
    ) -> None:
        match = await add_user(db_session, created_at=T0, full_name="AC/DC Fan")
        await add_user(db_session, created_at=T0, full_name="ACDC Fan")

        page = await users_crud.list_page(
            session=db_session, user_filter=UserFilter(search="c/d"), limit=10
        )

        assert emails(page) == [match.email]

    async def test_empty_search_does_not_filter(self, db_session: AsyncSession) -> None:
        await add_user(db_session, created_at=T0)
        await add_user(db_session, created_at=T0, full_name="Named")

        page = await users_crud.list_page(
            session=db_session, user_filter=UserFilter(search=""), limit=10
        )

        assert len(page) == 2

    @pytest.mark.parametrize("is_active", [True, False])
    async def test_is_active_filter(self, db_session: AsyncSession, is_active: bool) -> None:
        active = await add_user(db_session, created_at=T0, is_active=True)
        inactive = await add_user(db_session, created_at=T0, is_active=False)

        page = await users_crud.list_page(
            session=db_session, user_filter=UserFilter(is_active=is_active), limit=10
        )

        assert emails(page) == [active.email if is_active else inactive.email]

    @pytest.mark.parametrize("is_superuser", [True, False])
    async def test_is_superuser_filter(self, db_session: AsyncSession, is_superuser: bool) -> None:
        admin = await add_user(db_session, created_at=T0, is_superuser=True)
        ordinary = await add_user(db_session, created_at=T0, is_superuser=False)

        page = await users_crud.list_page(
            session=db_session, user_filter=UserFilter(is_superuser=is_superuser), limit=10
        )

        assert emails(page) == [admin.email if is_superuser else ordinary.email]

    async def test_filters_combine(self, db_session: AsyncSession) -> None:
        match = await add_user(
            db_session, created_at=T0, full_name="Team Admin", is_superuser=True, is_active=True
        )
        await add_user(
            db_session,
            created_at=T0,
            full_name="Team Admin Old",
            is_superuser=True,
            is_active=False,
        )
        await add_user(db_session, created_at=T0, full_name="Team Member", is_active=True)
        await add_user(db_session, created_at=T0, full_name="Other Admin", is_superuser=True)

        page = await users_crud.list_page(
            session=db_session,
            user_filter=UserFilter(search="team", is_active=True, is_superuser=True),
            limit=10,
        )

        assert emails(page) == [match.email]

    async def test_filter_applies_on_later_pages_too(self, db_session: AsyncSession) -> None:
        admins = [
            await add_user(db_session, created_at=T0 + timedelta(seconds=s), is_superuser=True)
            for s in (0, 2, 4)
        ]
        for s in (1, 3, 5):
            await add_user(db_session, created_at=T0 + timedelta(seconds=s))
        admin_filter = UserFilter(is_superuser=True)

        first_page = await users_crud.list_page(
            session=db_session, user_filter=admin_filter, limit=2
        )
        second_page = await users_crud.list_page(
            session=db_session,
            user_filter=admin_filter,
            limit=2,
            after=position_of(first_page[-1]),
        )

        assert emails(first_page) == emails(admins[:2])
        assert emails(second_page) == emails(admins[2:])


class TestCount:
    async def test_counts_every_user_without_a_filter(self, db_session: AsyncSession) -> None:
        for _ in range(3):
            await add_user(db_session, created_at=T0)

        assert await users_crud.count(session=db_session, user_filter=NO_FILTER) == 3

    async def test_counts_zero_on_an_empty_table(self, db_session: AsyncSession) -> None:
        assert await users_crud.count(session=db_session, user_filter=NO_FILTER) == 0

    async def test_counts_only_matching_users(self, db_session: AsyncSession) -> None:
        await add_user(db_session, created_at=T0, full_name="Alpha One", is_active=True)
        await add_user(db_session, created_at=T0, full_name="Alpha Two", is_active=False)
        await add_user(db_session, created_at=T0, full_name="Beta", is_active=True)

        assert (
            await users_crud.count(session=db_session, user_filter=UserFilter(search="alpha")) == 2
        )
        assert (
            await users_crud.count(
                session=db_session, user_filter=UserFilter(search="alpha", is_active=True)
            )
            == 1
        )


class TestUpdate:
    async def test_sets_every_given_value_and_flushes(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session, full_name="Before")

        returned = await users_crud.update(
            session=db_session,
            user=user,
            values={"full_name": "After", "email": "after@example.com", "is_verified": True},
        )

        assert returned is user
        with db_session.no_autoflush:
            row = (
                await db_session.execute(
                    select(User.full_name, User.email, User.is_verified).where(User.id == user.id)
                )
            ).one()
        assert tuple(row) == ("After", "after@example.com", True)

    async def test_leaves_unnamed_fields_alone(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session, full_name="Kept", is_superuser=True)
        email, password_hash = user.email, user.password_hash

        await users_crud.update(session=db_session, user=user, values={"is_active": False})

        assert (user.email, user.password_hash, user.full_name) == (email, password_hash, "Kept")
        assert (user.is_active, user.is_superuser) == (False, True)

    async def test_can_clear_a_field_to_none(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session, full_name="Someone")

        await users_crud.update(session=db_session, user=user, values={"full_name": None})

        with db_session.no_autoflush:
            stored = await db_session.scalar(select(User.full_name).where(User.id == user.id))
        assert stored is None

    async def test_no_values_changes_nothing(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session, full_name="Same")

        await users_crud.update(session=db_session, user=user, values={})

        assert user.full_name == "Same"

    async def test_does_not_commit(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session, full_name="Original")
        user_id = user.id

        await users_crud.update(session=db_session, user=user, values={"full_name": "Changed"})
        await db_session.rollback()

        stored = await db_session.scalar(select(User.full_name).where(User.id == user_id))
        assert stored == "Original"

    async def test_taken_email_raises_integrity_error(self, db_session: AsyncSession) -> None:
        await create_user(db_session, email="taken@example.com")
        user = await create_user(db_session)

        with pytest.raises(IntegrityError):
            await users_crud.update(
                session=db_session, user=user, values={"email": "taken@example.com"}
            )

    async def test_moves_updated_at(self, db_session: AsyncSession) -> None:
        with freeze_time(T0):
            user = await create_user(db_session)

        with freeze_time(T0 + timedelta(minutes=30)):
            await users_crud.update(session=db_session, user=user, values={"full_name": "New"})
            await db_session.commit()
        await db_session.refresh(user)

        assert user.updated_at == T0 + timedelta(minutes=30)


class TestDelete:
    async def test_removes_the_user(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        user = await create_user(db_session)
        user_id = user.id

        await users_crud.delete(session=db_session, user=user)
        await db_session.commit()

        async with session_factory() as other:
            assert await users_crud.get_by_id(session=other, user_id=user_id) is None

    async def test_takes_sessions_refresh_and_action_tokens_with_it(
        self, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session)
        auth_session = await create_auth_session(db_session, user)
        await create_refresh_token(db_session, auth_session)
        await create_action_token(db_session, user)

        await users_crud.delete(session=db_session, user=user)
        await db_session.commit()

        for model in (AuthSession, RefreshToken, ActionToken):
            assert await count_rows(db_session, model) == 0, model.__name__

    async def test_other_users_and_their_rows_survive(self, db_session: AsyncSession) -> None:
        doomed = await create_user(db_session)
        survivor = await create_user(db_session)
        for user in (doomed, survivor):
            auth_session = await create_auth_session(db_session, user)
            await create_refresh_token(db_session, auth_session)
            await create_action_token(db_session, user)

        await users_crud.delete(session=db_session, user=doomed)
        await db_session.commit()

        assert await count_rows(db_session, User) == 1
        for model in (AuthSession, RefreshToken, ActionToken):
            assert await count_rows(db_session, model) == 1, model.__name__

    async def test_does_not_commit(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)
        user_id = user.id

        await users_crud.delete(session=db_session, user=user)
        await db_session.rollback()

        assert await users_crud.get_by_id(session=db_session, user_id=user_id) is not None


class TestLockActiveSuperusers:
    async def test_returns_the_ids_of_active_superusers_in_id_order(
        self, db_session: AsyncSession
    ) -> None:
        first = await create_user(db_session, is_superuser=True)
        second = await create_user(db_session, is_superuser=True)
        await create_user(db_session, is_superuser=True, is_active=False)
        await create_user(db_session)
        await create_user(db_session, is_active=False)

        locked = await users_crud.lock_active_superusers(session=db_session)

        assert list(locked) == sorted([first.id, second.id])

    async def test_no_active_superuser_gives_an_empty_list(self, db_session: AsyncSession) -> None:
        await create_user(db_session)
        await create_user(db_session, is_superuser=True, is_active=False)

        assert list(await users_crud.lock_active_superusers(session=db_session)) == []
