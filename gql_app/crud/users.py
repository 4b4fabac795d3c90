import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, literal, or_, select, tuple_
from sqlalchemy import update as update_statement
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud.keyset import KeysetPosition
from gql_app.models import User


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str
    password_hash: str
    full_name: str | None = None
    is_active: bool = True
    is_superuser: bool = False
    is_verified: bool = False


@dataclass(frozen=True, slots=True)
class UserFilter:
    search: str | None = None
    is_active: bool | None = None
    is_superuser: bool | None = None


async def get_by_id(*, session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_for_update(*, session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user as stored now, locked until commit where the engine supports it."""
    query = (
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_by_email(*, session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def create(*, session: AsyncSession, data: NewUser) -> User:
    user = User(**asdict(data))
    session.add(user)
    await session.flush()
    return user


async def set_password_hash(*, session: AsyncSession, user: User, password_hash: str) -> None:
    user.password_hash = password_hash
    await session.flush()


async def replace_password_hash(
    *, session: AsyncSession, user: User, expected: str, password_hash: str
) -> bool:
    """Set the hash only if it is still ``expected``; True when it was.

    Of concurrent changes from the same password, the first to write wins; the others find
    the hash changed (PostgreSQL makes them wait for the first to commit, then look again).
    """
    result = await session.execute(
        update_statement(User)
        .where(User.id == user.id, User.password_hash == expected)
        .values(password_hash=password_hash)
        .execution_options(synchronize_session="fetch")
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def update(*, session: AsyncSession, user: User, values: Mapping[str, Any]) -> User:
    for name, value in values.items():
        setattr(user, name, value)
    await session.flush()
    return user


async def delete(*, session: AsyncSession, user: User) -> None:
    await session.delete(user)
    await session.flush()


async def lock_active_superusers(*, session: AsyncSession) -> Sequence[uuid.UUID]:
    """Ids of the active superusers, locked until commit where the engine supports it."""
    query = (
        select(User.id)
        .where(User.is_superuser.is_(True), User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    )
    return (await session.execute(query)).scalars().all()


def _filter_conditions(user_filter: UserFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if user_filter.search:
        conditions.append(
            or_(
                User.email.icontains(user_filter.search, autoescape=True),
                User.full_name.icontains(user_filter.search, autoescape=True),
            )
        )
    if user_filter.is_active is not None:
        conditions.append(User.is_active.is_(user_filter.is_active))
    if user_filter.is_superuser is not None:
        conditions.append(User.is_superuser.is_(user_filter.is_superuser))
    return conditions


async def list_page(
    *,
    session: AsyncSession,
    user_filter: UserFilter,
    limit: int,
    after: KeysetPosition | None = None,
) -> Sequence[User]:
    conditions = _filter_conditions(user_filter)
    if after is not None:
        # Bind the position with the columns' own types, so the timestamp is stored-form UTC.
        position = tuple_(literal(after.at, User.created_at.type), literal(after.id, User.id.type))
        conditions.append(tuple_(User.created_at, User.id) > position)
    query = select(User).where(*conditions).order_by(User.created_at, User.id).limit(limit)
    result = await session.execute(query)
    return result.scalars().all()


async def count(*, session: AsyncSession, user_filter: UserFilter) -> int:
    query = select(func.count()).select_from(User).where(*_filter_conditions(user_filter))
    result = await session.execute(query)
    return result.scalar_one()


async def get_many(*, session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> Sequence[User]:
    return (await session.execute(select(User).where(User.id.in_(user_ids)))).scalars().all()
