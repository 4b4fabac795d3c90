import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud.keyset import KeysetPosition
from gql_app.crud.users import UserFilter
from gql_app.db import SessionFactory
from gql_app.errors import InputValidationError, NotFoundError
from gql_app.models import User
from gql_app.security.passwords import verify_password
from gql_app.services import users as users_service
from gql_app.services.pagination import decode_cursor, encode_cursor
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user, hashed, unique_email

T0 = datetime(2030, 2, 1, tzinfo=UTC)
NO_FILTER = UserFilter()


async def add_users(session: AsyncSession, count: int, **values: object) -> list[User]:
    """Users created one second apart, returned in listing order."""
    users = [
        User(
            email=unique_email(),
            password_hash=hashed(USER_PASSWORD),
            created_at=T0 + timedelta(seconds=offset),
            **values,
        )
        for offset in range(count)
    ]
    session.add_all(users)
    await session.commit()
    return users


async def count_users(session: AsyncSession) -> int:
    result = await session.scalar(select(func.count()).select_from(User))
    assert result is not None
    return result


async def total(session: AsyncSession, page: users_service.UserPage) -> int:
    return await users_service.count_users(session=session, user_filter=page.user_filter)


def ids(page: users_service.UserPage) -> list[uuid.UUID]:
    return [edge.user.id for edge in page.edges]


class TestListUsersArguments:
    @pytest.mark.parametrize("first", [0, -1, 101])
    async def test_first_outside_1_to_100_is_refused(
        self, db_session: AsyncSession, first: int
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await users_service.list_users(
                session=db_session, first=first, after=None, user_filter=NO_FILTER
            )

        assert [problem.field for problem in caught.value.fields] == ["first"]
        assert caught.value.message == "first must be between 1 and 100"

    @pytest.mark.parametrize("first", [1, 100])
    async def test_first_at_the_bounds_is_accepted(
        self, db_session: AsyncSession, first: int
    ) -> None:
        await add_users(db_session, 2)

        page = await users_service.list_users(
            session=db_session, first=first, after=None, user_filter=NO_FILTER
        )

        assert len(page.edges) == min(first, 2)

    async def test_malformed_cursor_is_refused_on_after(self, db_session: AsyncSession) -> None:
        with pytest.raises(InputValidationError) as caught:
            await users_service.list_users(
                session=db_session, first=10, after="%%%garbage%%%", user_filter=NO_FILTER
            )

        assert [problem.field for problem in caught.value.fields] == ["after"]
        assert caught.value.message == "Invalid cursor"


class TestListUsersPagination:
    async def test_pages_through_everyone_in_creation_order(self, db_session: AsyncSession) -> None:
        users = await add_users(db_session, 5)

        first_page = await users_service.list_users(
            session=db_session, first=2, after=None, user_filter=NO_FILTER
        )
        second_page = await users_service.list_users(
            session=db_session, first=2, after=first_page.edges[-1].cursor, user_filter=NO_FILTER
        )
        last_page = await users_service.list_users(
            session=db_session, first=2, after=second_page.edges[-1].cursor, user_filter=NO_FILTER
        )

        assert ids(first_page) + ids(second_page) + ids(last_page) == [user.id for user in users]
        assert (first_page.has_next_page, first_page.has_previous_page) == (True, False)
        assert (second_page.has_next_page, second_page.has_previous_page) == (True, True)
        assert (last_page.has_next_page, last_page.has_previous_page) == (False, True)
        assert [await total(db_session, page) for page in (first_page, second_page, last_page)] == [
            5,
            5,
            5,
        ]

    async def test_last_full_page_reports_no_next_page(self, db_session: AsyncSession) -> None:
        await add_users(db_session, 4)
        first_page = await users_service.list_users(
            session=db_session, first=2, after=None, user_filter=NO_FILTER
        )

        second_page = await users_service.list_users(
            session=db_session, first=2, after=first_page.edges[-1].cursor, user_filter=NO_FILTER
        )

        assert len(second_page.edges) == 2
        assert second_page.has_next_page is False

    async def test_each_edge_cursor_points_at_its_user(self, db_session: AsyncSession) -> None:
        users = await add_users(db_session, 3)

        page = await users_service.list_users(
            session=db_session, first=10, after=None, user_filter=NO_FILTER
        )

        assert [decode_cursor(edge.cursor) for edge in page.edges] == [
            KeysetPosition(at=user.created_at, id=user.id) for user in users
        ]

    async def test_cursor_after_the_last_user_gives_an_empty_page(
        self, db_session: AsyncSession
    ) -> None:
        users = await add_users(db_session, 2)
        after_last = encode_cursor(KeysetPosition(at=users[-1].created_at, id=users[-1].id))

        page = await users_service.list_users(
            session=db_session, first=10, after=after_last, user_filter=NO_FILTER
        )

        assert page.edges == []
        assert (page.has_next_page, page.has_previous_page) == (False, True)
        assert await total(db_session, page) == 2

    async def test_no_users_gives_an_empty_first_page(self, db_session: AsyncSession) -> None:
        page = await users_service.list_users(
            session=db_session, first=10, after=None, user_filter=NO_FILTER
        )

        assert page.edges == []
        assert (page.has_next_page, page.has_previous_page) == (False, False)
        assert await total(db_session, page) == 0


class TestListUsersFilters:
    async def test_filter_limits_edges_and_total_count(self, db_session: AsyncSession) -> None:
        admins = await add_users(db_session, 3, is_superuser=True)
        await add_users(db_session, 4)

        page = await users_service.list_users(
            session=db_session, first=2, after=None, user_filter=UserFilter(is_superuser=True)
        )

        assert ids(page) == [admins[0].id, admins[1].id]
        assert await total(db_session, page) == 3
        assert page.has_next_page is True

    async def test_search_and_active_filters_apply(self, db_session: AsyncSession) -> None:
        match = await create_user(db_session, email="findme@example.com")
        await create_user(db_session, email="findme.too@example.com", is_active=False)
        await create_user(db_session, email="other@example.com")

        page = await users_service.list_users(
            session=db_session,
            first=10,
            after=None,
            user_filter=UserFilter(search="FINDME", is_active=True),
        )

        assert ids(page) == [match.id]
        assert await total(db_session, page) == 1

    async def test_search_is_trimmed_before_matching(self, db_session: AsyncSession) -> None:
        match = await create_user(db_session, email="trimmed@example.com")
        await create_user(db_session, email="other@example.com")

        page = await users_service.list_users(
            session=db_session, first=10, after=None, user_filter=UserFilter(search="  trimmed  ")
        )

        assert ids(page) == [match.id]

    async def test_blank_search_lists_everyone(self, db_session: AsyncSession) -> None:
        await add_users(db_session, 2)

        page = await users_service.list_users(
            session=db_session, first=10, after=None, user_filter=UserFilter(search="   ")
        )

        assert await total(db_session, page) == 2

    @pytest.mark.parametrize(
        ("search", "message"),
        [
            pytest.param("x" * 321, "at most 320 characters", id="too-long"),
            pytest.param("bad\x00search", "invalid characters", id="control-character"),
        ],
    )
    async def test_unusable_search_is_refused_on_search(
        self, db_session: AsyncSession, search: str, message: str
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await users_service.list_users(
                session=db_session, first=10, after=None, user_filter=UserFilter(search=search)
            )

        assert [problem.field for problem in caught.value.fields] == ["search"]
        assert message in caught.value.message


class TestGetUser:
    async def test_returns_the_user_for_its_id(self, db_session: AsyncSession) -> None:
        user = await create_user(db_session)

        found = await users_service.get_user(session=db_session, user_id=str(user.id))

        assert found.id == user.id

    @pytest.mark.parametrize("user_id", ["not-a-uuid", "", "1234", "g" * 32])
    async def test_malformed_id_is_refused_on_id(
        self, db_session: AsyncSession, user_id: str
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await users_service.get_user(session=db_session, user_id=user_id)

        assert [problem.field for problem in caught.value.fields] == ["id"]
        assert caught.value.message == "Invalid user id"

    async def test_unknown_id_is_not_found(self, db_session: AsyncSession) -> None:
        await create_user(db_session)

        with pytest.raises(NotFoundError, match=r"^User not found$"):
            await users_service.get_user(session=db_session, user_id=str(uuid.uuid4()))


class TestEnsureSuperuser:
    async def test_creates_a_verified_superuser(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        ensured = await users_service.ensure_superuser(
            session=db_session, email=" Root@Example.com ", password=STRONG_PASSWORD
        )
        user = ensured.user

        async with session_factory() as other:
            stored = await other.get(User, user.id)
        assert stored is not None
        assert stored.email == "root@example.com"
        assert (stored.is_superuser, stored.is_verified, stored.is_active) == (True, True, True)
        assert stored.password_hash.startswith("$argon2id$")
        assert (await verify_password(STRONG_PASSWORD, stored.password_hash)).valid is True
        assert ensured.created is True

    async def test_running_twice_keeps_the_first_account(self, db_session: AsyncSession) -> None:
        first = await users_service.ensure_superuser(
            session=db_session, email="root@example.com", password=STRONG_PASSWORD
        )
        original_hash = first.user.password_hash

        again = await users_service.ensure_superuser(
            session=db_session, email="ROOT@example.com", password="another strong passphrase 42"
        )

        assert again.user.id == first.user.id
        assert again.created is False
        assert again.user.password_hash == original_hash
        assert await count_users(db_session) == 1

    async def test_existing_ordinary_account_is_left_unchanged(
        self, db_session: AsyncSession
    ) -> None:
        ordinary = await create_user(db_session, email="taken@example.com")
        original_hash = ordinary.password_hash

        result = await users_service.ensure_superuser(
            session=db_session, email="taken@example.com", password=STRONG_PASSWORD
        )
        await db_session.refresh(ordinary)

        assert (result.user.id, result.created) == (ordinary.id, False)
        assert ordinary.is_superuser is False
        assert ordinary.password_hash == original_hash
        assert await count_users(db_session) == 1

    @pytest.mark.parametrize(
        ("password", "message"),
        [
            ("short", "at least 12 characters"),
            ("password1234", "too common"),
            ("root@example.com", "same as the email"),
        ],
    )
    async def test_weak_password_is_refused_and_nothing_is_created(
        self, db_session: AsyncSession, password: str, message: str
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await users_service.ensure_superuser(
                session=db_session, email="root@example.com", password=password
            )

        assert [problem.field for problem in caught.value.fields] == ["password"]
        assert message in caught.value.message
        assert await count_users(db_session) == 0

    @pytest.mark.parametrize("email", ["", "root", "root@", "@example.com"])
    async def test_bad_email_is_refused(self, db_session: AsyncSession, email: str) -> None:
        with pytest.raises(InputValidationError) as caught:
            await users_service.ensure_superuser(
                session=db_session, email=email, password=STRONG_PASSWORD
            )

        assert [problem.field for problem in caught.value.fields] == ["email"]
        assert await count_users(db_session) == 0
