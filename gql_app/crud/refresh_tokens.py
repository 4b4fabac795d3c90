import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import AuthSession, RefreshToken, User


async def create(*, session: AsyncSession, session_id: uuid.UUID, token_hash: str) -> RefreshToken:
    refresh_token = RefreshToken(session_id=session_id, token_hash=token_hash)
    session.add(refresh_token)
    await session.flush()
    return refresh_token


async def get_with_session_and_user(
    *, session: AsyncSession, token_hash: str
) -> tuple[RefreshToken, AuthSession, User] | None:
    query = (
        select(RefreshToken, AuthSession, User)
        .join(AuthSession, RefreshToken.session_id == AuthSession.id)
        .join(User, AuthSession.user_id == User.id)
        .where(RefreshToken.token_hash == token_hash)
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    return row[0], row[1], row[2]


async def mark_rotated(
    *, session: AsyncSession, refresh_token: RefreshToken, now: datetime
) -> None:
    if refresh_token.rotated_at is None:
        refresh_token.rotated_at = now
        await session.flush()
