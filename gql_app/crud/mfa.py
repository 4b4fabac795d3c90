import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import MfaChallenge, RecoveryCode, TotpFactor


async def get_totp(*, session: AsyncSession, user_id: uuid.UUID) -> TotpFactor | None:
    return await session.get(TotpFactor, user_id)


async def put_unconfirmed_totp(
    *, session: AsyncSession, user_id: uuid.UUID, encrypted_secret: bytes, now: datetime
) -> TotpFactor:
    """The account's TOTP secret, replacing an unconfirmed one."""
    await session.execute(
        delete(TotpFactor).where(TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_(None))
    )
    factor = TotpFactor(user_id=user_id, encrypted_secret=encrypted_secret, created_at=now)
    session.add(factor)
    await session.flush()
    return factor


async def use_step(*, session: AsyncSession, user_id: uuid.UUID, step: int) -> bool:
    """Record ``step`` as used unless it, or a later one, already was; True only for the
    request that did. Two requests with one code: one of them."""
    query = (
        update(TotpFactor)
        .where(
            TotpFactor.user_id == user_id,
            (TotpFactor.last_used_step.is_(None)) | (TotpFactor.last_used_step < step),
        )
        .values(last_used_step=step)
    )
    result = await session.execute(query)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def confirm_totp(*, session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    query = update(TotpFactor).where(TotpFactor.user_id == user_id).values(confirmed_at=now)
    await session.execute(query)


async def delete_factors(*, session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    await delete_challenges(session=session, user_id=user_id)


async def delete_challenges(*, session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(MfaChallenge).where(MfaChallenge.user_id == user_id))


async def replace_recovery_codes(
    *, session: AsyncSession, user_id: uuid.UUID, code_hashes: Sequence[str], now: datetime
) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    session.add_all(
        RecoveryCode(user_id=user_id, code_hash=code_hash, created_at=now)
        for code_hash in code_hashes
    )
    await session.flush()


async def list_recovery_codes(
    *, session: AsyncSession, user_id: uuid.UUID
) -> Sequence[RecoveryCode]:
    query = (
        select(RecoveryCode)
        .where(RecoveryCode.user_id == user_id)
        .order_by(RecoveryCode.created_at, RecoveryCode.id)
    )
    return (await session.execute(query)).scalars().all()


async def count_unused_recovery_codes(*, session: AsyncSession, user_id: uuid.UUID) -> int:
    query = select(func.count()).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
    )
    return (await session.execute(query)).scalar_one()


async def spend_recovery_code(
    *, session: AsyncSession, user_id: uuid.UUID, code_hashes: Sequence[str], now: datetime
) -> bool:
    """Spend the code (by its hash under any of the keys) if it is the account's and
    unused; True only for the request that did, however many present it at once."""
    query = (
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash.in_(code_hashes),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    result = await session.execute(query)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def totp_enabled(*, session: AsyncSession, user_id: uuid.UUID) -> bool:
    query = select(TotpFactor.user_id).where(
        TotpFactor.user_id == user_id, TotpFactor.confirmed_at.is_not(None)
    )
    return (await session.execute(query)).first() is not None


async def create_challenge(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    token_hash: str,
    now: datetime,
    expires_at: datetime,
    first_factor_methods: list[str],
) -> MfaChallenge:
    challenge = MfaChallenge(
        user_id=user_id,
        token_hash=token_hash,
        created_at=now,
        expires_at=expires_at,
        first_factor_methods=first_factor_methods,
    )
    session.add(challenge)
    await session.flush()
    return challenge


async def get_challenge(*, session: AsyncSession, token_hash: str) -> MfaChallenge | None:
    query = select(MfaChallenge).where(MfaChallenge.token_hash == token_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def claim_attempt(
    *, session: AsyncSession, challenge_id: uuid.UUID, now: datetime, max_attempts: int
) -> bool:
    """Count one attempt on the challenge if it is still live: unspent, unexpired, under
    ``max_attempts``. Counted before the factor is checked, so concurrent guesses queue
    on the row and no more than ``max_attempts`` are ever checked."""
    query = (
        update(MfaChallenge)
        .where(
            MfaChallenge.id == challenge_id,
            MfaChallenge.consumed_at.is_(None),
            MfaChallenge.expires_at > now,
            MfaChallenge.failed_attempts < max_attempts,
        )
        .values(failed_attempts=MfaChallenge.failed_attempts + 1)
    )
    result = await session.execute(query)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def consume_challenge(
    *, session: AsyncSession, challenge_id: uuid.UUID, now: datetime
) -> bool:
    """Spend the challenge unless another request did; True only for the one that did."""
    query = (
        update(MfaChallenge)
        .where(MfaChallenge.id == challenge_id, MfaChallenge.consumed_at.is_(None))
        .values(consumed_at=now)
    )
    result = await session.execute(query)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def users_with_totp(
    *, session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    query = select(TotpFactor.user_id).where(
        TotpFactor.user_id.in_(user_ids), TotpFactor.confirmed_at.is_not(None)
    )
    return set((await session.execute(query)).scalars())
