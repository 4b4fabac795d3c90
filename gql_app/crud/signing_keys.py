from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import false, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import SigningKey

# Any constant shared by every process of the application; names the key-change lock.
SIGNING_KEY_LOCK_ID = 0x6471_6C61_6B65  # "gqlake"


async def lock_for_changes(*, session: AsyncSession) -> None:
    """Key changes one at a time, until the transaction ends: workers starting together
    create one first key, not one each, and each reads the keys after the last change."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": SIGNING_KEY_LOCK_ID}
        )
    else:
        # SQLite has no advisory locks, but a write statement takes the database's write
        # lock at once, even one that changes no row; the next writer waits for the commit.
        await session.execute(update(SigningKey).where(false()).values(kid=SigningKey.kid))


async def list_all(*, session: AsyncSession) -> Sequence[SigningKey]:
    query = select(SigningKey).order_by(SigningKey.activates_at, SigningKey.created_at)
    return (await session.execute(query)).scalars().all()


async def get(*, session: AsyncSession, kid: str) -> SigningKey | None:
    return await session.get(SigningKey, kid)


async def create(
    *,
    session: AsyncSession,
    kid: str,
    algorithm: str,
    public_jwk: dict[str, Any],
    encrypted_private_key: bytes,
    created_at: datetime,
    activates_at: datetime,
) -> SigningKey:
    key = SigningKey(
        kid=kid,
        algorithm=algorithm,
        public_jwk=public_jwk,
        encrypted_private_key=encrypted_private_key,
        created_at=created_at,
        activates_at=activates_at,
    )
    session.add(key)
    await session.flush()
    return key


async def set_activates_at(*, session: AsyncSession, kid: str, activates_at: datetime) -> None:
    query = update(SigningKey).where(SigningKey.kid == kid).values(activates_at=activates_at)
    await session.execute(query)


async def retire(*, session: AsyncSession, kids: Sequence[str], now: datetime) -> None:
    query = (
        update(SigningKey)
        .where(SigningKey.kid.in_(kids), SigningKey.retired_at.is_(None))
        .values(retired_at=now)
    )
    await session.execute(query)
