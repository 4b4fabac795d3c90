import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.db import SessionFactory
from gql_app.errors import InputValidationError
from gql_app.models import User
from gql_app.security.passwords import verify_password
from gql_app.services import seeding
from gql_app.services.seeding import SeedAccount
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user

OTHER_PASSWORD = "marble giraffe lantern 1987"


async def stored_users(session_factory: SessionFactory) -> list[User]:
    async with session_factory() as other:
        return list((await other.scalars(select(User).order_by(User.email))).all())


async def count_users(session: AsyncSession) -> int:
    return (await session.scalar(select(func.count()).select_from(User))) or 0


class TestSeedAccounts:
    async def test_creates_the_accounts_with_their_flags(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        seeded = await seeding.seed_accounts(
            session=db_session,
            accounts=[
                SeedAccount(
                    email=" Admin@Example.COM ",
                    password=STRONG_PASSWORD,
                    full_name="  Ada   Admin ",
                    is_superuser=True,
                    is_verified=True,
                ),
                SeedAccount(email="off@example.com", password=OTHER_PASSWORD, is_active=False),
            ],
        )

        assert [(s.user.email, s.created) for s in seeded] == [
            ("admin@example.com", True),
            ("off@example.com", True),
        ]
        admin, off = await stored_users(session_factory)
        assert admin.full_name == "Ada Admin"
        assert (admin.is_superuser, admin.is_verified, admin.is_active) == (True, True, True)
        assert (off.is_superuser, off.is_verified, off.is_active) == (False, False, False)
        assert off.full_name is None
        assert admin.password_hash.startswith("$argon2id$")
        assert (await verify_password(STRONG_PASSWORD, admin.password_hash)).valid is True
        assert (await verify_password(OTHER_PASSWORD, off.password_hash)).valid is True

    async def test_an_existing_account_is_left_as_it_is(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        existing = await create_user(db_session, email="taken@example.com", full_name="Original")
        before = existing.password_hash

        seeded = await seeding.seed_accounts(
            session=db_session,
            accounts=[
                SeedAccount(
                    email="TAKEN@example.com",
                    password=STRONG_PASSWORD,
                    full_name="Someone Else",
                    is_superuser=True,
                )
            ],
        )

        assert [(s.user.id, s.created) for s in seeded] == [(existing.id, False)]
        [stored] = await stored_users(session_factory)
        assert (stored.full_name, stored.is_superuser, stored.password_hash) == (
            "Original",
            False,
            before,
        )

    async def test_seeding_twice_changes_nothing(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        accounts = [
            SeedAccount(email="one@example.com", password=STRONG_PASSWORD),
            SeedAccount(email="two@example.com", password=OTHER_PASSWORD, is_verified=True),
        ]
        await seeding.seed_accounts(session=db_session, accounts=accounts)
        first = [
            (u.id, u.email, u.password_hash, u.updated_at)
            for u in await stored_users(session_factory)
        ]

        again = await seeding.seed_accounts(session=db_session, accounts=accounts)

        assert [s.created for s in again] == [False, False]
        assert [
            (u.id, u.email, u.password_hash, u.updated_at)
            for u in await stored_users(session_factory)
        ] == first

    async def test_nothing_is_written_when_a_later_account_is_bad(
        self, db_session: AsyncSession
    ) -> None:
        accounts = [
            SeedAccount(email="good@example.com", password=STRONG_PASSWORD),
            SeedAccount(email="weak@example.com", password="password1234"),
        ]

        with pytest.raises(InputValidationError) as caught:
            await seeding.seed_accounts(session=db_session, accounts=accounts)

        assert caught.value.message.startswith(
            "account 2 (weak@example.com): Password is too common or too easy to guess. "
        )
        assert [(problem.field, problem.code) for problem in caught.value.fields] == [
            ("password", "TOO_COMMON")
        ]
        assert "password1234" not in caught.value.message
        assert await count_users(db_session) == 0

    @pytest.mark.parametrize(
        ("account", "field", "message"),
        [
            (
                SeedAccount(email="not-an-email", password=STRONG_PASSWORD),
                "email",
                "account 1: Invalid email address: ",
            ),
            (
                SeedAccount(email="a@example.com", password="short"),
                "password",
                "account 1 (a@example.com): Password must be at least 12 characters long",
            ),
            (
                SeedAccount(email="ada.lovelace@example.com", password="ada.lovelace@example.com"),
                "password",
                "account 1 (ada.lovelace@example.com): Password must not be the same as the email",
            ),
            (
                SeedAccount(email="a@example.com", password=STRONG_PASSWORD, full_name="x" * 300),
                "full_name",
                "account 1 (a@example.com): Full name must be at most",
            ),
        ],
        ids=["email", "short password", "password is the email", "long name"],
    )
    async def test_register_rules_apply(
        self, db_session: AsyncSession, account: SeedAccount, field: str, message: str
    ) -> None:
        with pytest.raises(InputValidationError) as caught:
            await seeding.seed_accounts(session=db_session, accounts=[account])

        assert caught.value.message.startswith(message)
        assert [problem.field for problem in caught.value.fields] == [field]
        assert await count_users(db_session) == 0

    async def test_one_email_twice_is_refused(self, db_session: AsyncSession) -> None:
        accounts = [
            SeedAccount(email="twice@example.com", password=STRONG_PASSWORD),
            SeedAccount(email="other@example.com", password=STRONG_PASSWORD),
            SeedAccount(email="Twice@Example.com", password=OTHER_PASSWORD),
        ]

        with pytest.raises(InputValidationError) as caught:
            await seeding.seed_accounts(session=db_session, accounts=accounts)

        assert caught.value.message == "account 3: twice@example.com is also account 1"
        assert await count_users(db_session) == 0

    async def test_an_account_created_meanwhile_is_kept(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        real_hash = seeding.hash_password

        async def another_process_registers_first(password: str) -> str:
            # Between the seeder's lookup and its insert, someone else takes the email.
            async with session_factory() as other:
                await create_user(other, email="raced@example.com", password=USER_PASSWORD)
            return await real_hash(password)

        monkeypatch.setattr(seeding, "hash_password", another_process_registers_first)

        [seeded] = await seeding.seed_accounts(
            session=db_session,
            accounts=[SeedAccount(email="raced@example.com", password=STRONG_PASSWORD)],
        )

        assert seeded.created is False
        [stored] = await stored_users(session_factory)
        assert stored.id == seeded.user.id
        assert (await verify_password(USER_PASSWORD, stored.password_hash)).valid is True
