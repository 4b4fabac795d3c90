import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import AuthSession, User


@dataclass(frozen=True, slots=True)
class NewAuthSession:
    user_id: uuid.UUID
    # The instant the caller signs the session in: its tokens' and lastUsedAt's "now". The
    # model's default would be read later, at flush, and put createdAt after lastUsedAt.
    created_at: datetime
    expires_at: datetime
    user_agent: str | None = None
    ip_address: str | None = None
    auth_methods: list[str] = field(default_factory=lambda: ["pwd"])
    authenticated_at: datetime | None = None


async def create(*, session: AsyncSession, data: NewAuthSession) -> AuthSession:
    values = asdict(data)
    values["authenticated_at"] = data.authenticated_at or data.created_at
    auth_session = AuthSession(**values)
    session.add(auth_session)
    await session.flush()
    return auth_session


async def get_with_user(
    *, session: AsyncSession, session_id: uuid.UUID
) -> tuple[AuthSession, User] | None:
    query = (
        select(AuthSession, User)
        .join(User, AuthSession.user_id == User.id)
        .where(AuthSession.id == session_id)
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    return row[0], row[1]


async def get_for_user(
    *, session: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID
) -> AuthSession | None:
    query = select(AuthSession).where(AuthSession.id == session_id, AuthSession.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


async def list_active_for_user(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> Sequence[AuthSession]:
    query = (
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        .order_by(AuthSession.created_at.desc(), AuthSession.id)
    )
    return (await session.execute(query)).scalars().all()


async def list_all_for_user(*, session: AsyncSession, user_id: uuid.UUID) -> Sequence[AuthSession]:
    """Every session the account has, ended ones too, oldest first."""
    query = (
        select(AuthSession)
        .where(AuthSession.user_id == user_id)
        .order_by(AuthSession.created_at, AuthSession.id)
    )
    return (await session.execute(query)).scalars().all()


async def revoke(*, session: AsyncSession, auth_session: AuthSession, now: datetime) -> None:
    if auth_session.revoked_at is None:
        auth_session.revoked_at = now
        await session.flush()


async def revoke_all_for_user(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    now: datetime,
    except_session_id: uuid.UUID | None = None,
) -> None:
    statement = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if except_session_id is not None:
        statement = statement.where(AuthSession.id != except_session_id)
    await session.execute(statement)


async def mark_used(*, session: AsyncSession, auth_session: AuthSession, now: datetime) -> None:
    auth_session.last_used_at = now
    await session.flush()


async def mark_authenticated(
    *, session: AsyncSession, auth_session: AuthSession, auth_methods: list[str], now: datetime
) -> None:
    auth_session.auth_methods = auth_methods
    auth_session.authenticated_at = now
    await session.flush()
