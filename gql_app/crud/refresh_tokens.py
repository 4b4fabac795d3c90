import uuid
from datetime import datetime

from sqlalchemy import select, update
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


async def get_by_hash(*, session: AsyncSession, token_hash: str) -> RefreshToken | None:
    query = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def retire(*, session: AsyncSession, refresh_token: RefreshToken, now: datetime) -> bool:
    """Mark the token rotated unless another request did; True only for the one that did.

    PostgreSQL makes concurrent retirements of one token wait for the first to commit, and
    then find it retired.
    """
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == refresh_token.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
