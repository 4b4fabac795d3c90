"""Accounts put straight into the database (`gql-app seed`, the pytest plugin's users): created
when their email is free, left as they are when it is taken, so seeding twice changes nothing.

Every account passes register's checks (email, name, password policy) before any is written.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import users as users_crud
from gql_app.db import release_connection
from gql_app.error_reasons import FieldErrorCode
from gql_app.errors import ConflictError, FieldError, InputValidationError
from gql_app.models import User
from gql_app.security.password_policy import assess_password
from gql_app.security.passwords import hash_password
from gql_app.services.accounts import create_user_or_conflict
from gql_app.services.validation import clean_full_name, normalize_email


@dataclass(frozen=True, slots=True)
class SeedAccount:
    email: str
    password: str
    full_name: str | None = None
    is_superuser: bool = False
    is_verified: bool = False
    is_active: bool = True


@dataclass(frozen=True, slots=True)
class SeededAccount:
    """The account behind the email, and whether seeding created it."""

    user: User
    created: bool


async def check_accounts(accounts: Sequence[SeedAccount]) -> list[SeedAccount]:
    """The accounts with email and name in stored form; refused at the first bad one.

    The refusal names the account by its position in ``accounts``, counted from 1.
    """
    checked: list[SeedAccount] = []
    positions: dict[str, int] = {}
    for position, account in enumerate(accounts, start=1):
        valid = await _checked(account, position=position)
        if valid.email in positions:
            raise InputValidationError.single(
                "email",
                FieldErrorCode.DUPLICATE,
                f"account {position}: {valid.email} is also account {positions[valid.email]}",
            )
        positions[valid.email] = position
        checked.append(valid)
    return checked


async def seed_accounts(
    *, session: AsyncSession, accounts: Sequence[SeedAccount]
) -> list[SeededAccount]:
    """Create each account whose email is free; nothing is written unless all are valid."""
    checked = await check_accounts(accounts)
    return [await _seed_one(session=session, account=account) for account in checked]


async def _checked(account: SeedAccount, *, position: int) -> SeedAccount:
    """The account with its email and name in stored form, or register's first objection."""
    email = normalize_email(account.email)
    if isinstance(email, FieldError):
        raise _refused(email, position=position)
    full_name = clean_full_name(account.full_name)
    if isinstance(full_name, FieldError):
        raise _refused(full_name, position=position, email=email)
    policy_problem = await assess_password(account.password, email=email, full_name=full_name)
    if policy_problem is not None:
        raise _refused(policy_problem.for_field("password"), position=position, email=email)
    return replace(account, email=email, full_name=full_name)


def _refused(
    problem: FieldError, *, position: int, email: str | None = None
) -> InputValidationError:
    where = f"account {position}" if email is None else f"account {position} ({email})"
    return InputValidationError([problem], message=f"{where}: {problem.message}")


async def _seed_one(*, session: AsyncSession, account: SeedAccount) -> SeededAccount:
    existing = await users_crud.get_by_email(session=session, email=account.email)
    if existing is not None:
        return SeededAccount(user=existing, created=False)
    # Hashing takes a while on a thread of its own; no connection waits on it.
    await release_connection(session)
    try:
        user = await create_user_or_conflict(
            session=session,
            data=users_crud.NewUser(
                email=account.email,
                password_hash=await hash_password(account.password),
                full_name=account.full_name,
                is_active=account.is_active,
                is_superuser=account.is_superuser,
                is_verified=account.is_verified,
            ),
        )
    except ConflictError:
        # Created by someone else between our read and our insert: theirs stays.
        found = await users_crud.get_by_email(session=session, email=account.email)
        if found is None:
            raise
        return SeededAccount(user=found, created=False)
    await session.commit()
    return SeededAccount(user=user, created=True)
