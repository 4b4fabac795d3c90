import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import Passkey, PasskeyChallenge


@dataclass(frozen=True, slots=True)
class NewPasskey:
    user_id: uuid.UUID
    credential_id: bytes
    public_key: bytes
    sign_count: int
    transports: list[str]
    aaguid: str
    backup_eligible: bool
    backed_up: bool
    name: str
    created_at: datetime


async def create_unless_registered(*, session: AsyncSession, data: NewPasskey) -> Passkey | None:
    """The new passkey; None when its credential id is registered already, also by a request
    that committed after the caller looked."""
    passkey = Passkey(
        user_id=data.user_id,
        credential_id=data.credential_id,
        public_key=data.public_key,
        sign_count=data.sign_count,
        transports=data.transports,
        aaguid=data.aaguid,
        backup_eligible=data.backup_eligible,
        backed_up=data.backed_up,
        name=data.name,
        created_at=data.created_at,
    )
    try:
        async with session.begin_nested():
            session.add(passkey)
    except IntegrityError:
        return None
    return passkey


async def list_for_user(*, session: AsyncSession, user_id: uuid.UUID) -> Sequence[Passkey]:
    query = (
        select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at, Passkey.id)
    )
    return (await session.execute(query)).scalars().all()


async def count_for_user(*, session: AsyncSession, user_id: uuid.UUID) -> int:
    query = select(func.count()).where(Passkey.user_id == user_id)
    return (await session.execute(query)).scalar_one()


async def get_for_user(
    *, session: AsyncSession, user_id: uuid.UUID, passkey_id: uuid.UUID
) -> Passkey | None:
    query = select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


async def get_by_credential_id(*, session: AsyncSession, credential_id: bytes) -> Passkey | None:
    query = select(Passkey).where(Passkey.credential_id == credential_id)
    return (await session.execute(query)).scalar_one_or_none()


async def rename(*, session: AsyncSession, passkey: Passkey, name: str) -> Passkey:
    passkey.name = name
    await session.flush()
    return passkey


async def delete_passkey(*, session: AsyncSession, passkey_id: uuid.UUID) -> None:
    await session.execute(delete(Passkey).where(Passkey.id == passkey_id))


async def delete_for_user(*, session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(Passkey).where(Passkey.user_id == user_id))


async def record_use(
    *,
    session: AsyncSession,
    passkey_id: uuid.UUID,
    sign_count: int,
    backed_up: bool,
    now: datetime,
) -> bool:
    """Note a sign-in whose counter went up (or that of an authenticator that keeps none, at
    zero on both sides); False, and nothing written, for a counter that did not: of two
    requests with one count, one."""
    counter_grew = (Passkey.sign_count < sign_count) if sign_count else (Passkey.sign_count == 0)
    query = (
        update(Passkey)
        .where(Passkey.id == passkey_id, counter_grew)
        .values(sign_count=sign_count, backed_up=backed_up, last_used_at=now)
    )
    result = await session.execute(query)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def put_challenge(
    *,
    session: AsyncSession,
    id_hash: str,
    challenge: bytes,
    purpose: str,
    user_id: uuid.UUID | None,
    expires_at: datetime,
    now: datetime,
) -> None:
    # Expired challenges go as new ones come, so the table holds the last few minutes only.
    await session.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at <= now))
    session.add(
        PasskeyChallenge(
            id_hash=id_hash,
            challenge=challenge,
            purpose=purpose,
            user_id=user_id,
            expires_at=expires_at,
        )
    )
    await session.flush()


async def take_challenge(
    *, session: AsyncSession, id_hash: str, now: datetime
) -> PasskeyChallenge | None:
    """Remove the challenge and answer it if it was still live; of two requests with one
    challenge, one gets it."""
    query = (
        delete(PasskeyChallenge)
        .where(PasskeyChallenge.id_hash == id_hash)
        .returning(
            PasskeyChallenge.challenge,
            PasskeyChallenge.purpose,
            PasskeyChallenge.user_id,
            PasskeyChallenge.expires_at,
        )
    )
    row = (await session.execute(query)).first()
    if row is None or row.expires_at <= now:
        return None
    return PasskeyChallenge(
        id_hash=id_hash,
        challenge=row.challenge,
        purpose=row.purpose,
        user_id=row.user_id,
        expires_at=row.expires_at,
    )
