import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import ActionToken, ActionTokenPurpose


@dataclass(frozen=True, slots=True)
class NewActionToken:
    user_id: uuid.UUID
    purpose: ActionTokenPurpose
    token_hash: str
    email: str
    expires_at: datetime


async def create(*, session: AsyncSession, data: NewActionToken) -> ActionToken:
    action_token = ActionToken(**asdict(data))
    session.add(action_token)
    await session.flush()
    return action_token


async def get_by_hash(
    *, session: AsyncSession, token_hash: str, purpose: ActionTokenPurpose
) -> ActionToken | None:
    query = select(ActionToken).where(
        ActionToken.token_hash == token_hash, ActionToken.purpose == purpose
    )
    return (await session.execute(query)).scalar_one_or_none()


async def spend(*, session: AsyncSession, action_token: ActionToken, now: datetime) -> bool:
    """Mark the token used unless someone already did; True only for the one who did."""
    result = await session.execute(
        update(ActionToken)
        .where(ActionToken.id == action_token.id, ActionToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def use_all_for_user(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    purpose: ActionTokenPurpose,
    now: datetime,
    created_before: datetime | None = None,
) -> None:
    """Spend every outstanding token of this purpose (made before ``created_before``, if
    given): only the newest counts."""
    statement = (
        update(ActionToken)
        .where(
            ActionToken.user_id == user_id,
            ActionToken.purpose == purpose,
            ActionToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if created_before is not None:
        statement = statement.where(ActionToken.created_at < created_before)
    await session.execute(statement)
