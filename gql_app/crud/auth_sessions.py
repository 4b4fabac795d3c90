import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import AuthSession, User


@dataclass(frozen=True, slots=True)
class NewAuthSession:
    user_id: uuid.UUID
    refresh_token_hash: str
    expires_at: datetime
    user_agent: str | None = None
    ip_address: str | None = None


async def create(*, session: AsyncSession, data: NewAuthSession) -> AuthSession:
    auth_session = AuthSession(**asdict(data))
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


async def revoke(*, session: AsyncSession, auth_session: AuthSession, now: datetime) -> None:
    if auth_session.revoked_at is None:
        auth_session.revoked_at = now
        await session.flush()
