"""The challenges passkey ceremonies answer: random, single-use, 5 minutes, and bound to
what they were handed out for. Kept in the database, or in Redis when REDIS_URL is set (so
any worker can finish a ceremony another began)."""

import base64
import json
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.availability import OUTAGE_RETRY_AFTER_SECONDS, Availability, Dependency
from gql_app.config import Settings
from gql_app.crud import passkeys as passkeys_crud
from gql_app.error_reasons import ErrorReason
from gql_app.errors import AuthenticationError, ServiceUnavailableError, Unavailable
from gql_app.redis_pool import redis_connection_pool
from gql_app.security import passkeys, tokens

CHALLENGE_SECONDS = 300

_T = TypeVar("_T")


class CeremonyPurpose(StrEnum):
    REGISTRATION = "registration"
    # A passkey alone, from a page that knows no account yet.
    SIGN_IN = "sign_in"
    # A passkey after the account's password: the second step of one sign-in.
    SECOND_FACTOR = "second_factor"


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    challenge: bytes
    purpose: CeremonyPurpose
    # The account it was handed to: none for a sign-in, which knows no account yet.
    user_id: uuid.UUID | None
    expires_at: datetime


class PasskeyChallengeStore(Protocol):
    async def put(
        self, *, session: AsyncSession, id_hash: str, issued: IssuedChallenge, now: datetime
    ) -> None: ...

    async def take(
        self, *, session: AsyncSession, id_hash: str, now: datetime
    ) -> IssuedChallenge | None:
        """Remove the challenge, answering it if it was live: one request gets it."""
        ...

    async def aclose(self) -> None: ...


class DatabaseChallengeStore:
    async def put(
        self, *, session: AsyncSession, id_hash: str, issued: IssuedChallenge, now: datetime
    ) -> None:
        await passkeys_crud.put_challenge(
            session=session,
            id_hash=id_hash,
            challenge=issued.challenge,
            purpose=issued.purpose,
            user_id=issued.user_id,
            expires_at=issued.expires_at,
            now=now,
        )

    async def take(
        self, *, session: AsyncSession, id_hash: str, now: datetime
    ) -> IssuedChallenge | None:
        taken = await passkeys_crud.take_challenge(session=session, id_hash=id_hash, now=now)
        if taken is None:
            return None
        return IssuedChallenge(
            challenge=taken.challenge,
            purpose=CeremonyPurpose(taken.purpose),
            user_id=taken.user_id,
            expires_at=taken.expires_at,
        )

    async def aclose(self) -> None:
        return None


class RedisChallengeStore:
    """Each challenge a key that expires with it; GETDEL takes it once."""

    def __init__(self, *, settings: Settings, availability: Availability) -> None:
        import coredis  # noqa: PLC0415 - loaded already with REDIS_URL (redis_pool)

        self._pool = redis_connection_pool(settings)
        self._redis = coredis.Redis(connection_pool=self._pool)
        self._prefix = f"{settings.rate_limit_key_prefix}:passkey-challenge:"
        self._availability = availability

    async def put(
        self, *, session: AsyncSession, id_hash: str, issued: IssuedChallenge, now: datetime
    ) -> None:
        stored = {
            "challenge": base64.b64encode(issued.challenge).decode(),
            "purpose": issued.purpose.value,
            "user_id": str(issued.user_id) if issued.user_id else None,
            "expires_at": issued.expires_at.timestamp(),
        }
        lifetime = max(1, int((issued.expires_at - now).total_seconds()))
        await self._call(self._redis.set(self._prefix + id_hash, json.dumps(stored), ex=lifetime))

    async def take(
        self, *, session: AsyncSession, id_hash: str, now: datetime
    ) -> IssuedChallenge | None:
        raw = await self._call(self._redis.getdel(self._prefix + id_hash))
        if raw is None:
            return None
        stored = json.loads(raw)
        issued = IssuedChallenge(
            challenge=base64.b64decode(stored["challenge"]),
            purpose=CeremonyPurpose(stored["purpose"]),
            user_id=uuid.UUID(stored["user_id"]) if stored["user_id"] else None,
            expires_at=datetime.fromtimestamp(stored["expires_at"], UTC),
        )
        # Redis expires keys to the second; the challenge's lifetime is exact.
        return issued if issued.expires_at > now else None

    async def _call(self, command: Awaitable[_T]) -> _T:
        from coredis.exceptions import RedisError  # noqa: PLC0415

        try:
            answer = await command
        except (RedisError, OSError) as error:  # OSError: asyncio's TimeoutError too
            self._availability.failed(Dependency.REDIS, error)
            raise ServiceUnavailableError(
                Unavailable.PASSKEY_CHALLENGES, retry_after=OUTAGE_RETRY_AFTER_SECONDS
            ) from error
        self._availability.answered(Dependency.REDIS)
        return answer

    async def aclose(self) -> None:
        self._pool.disconnect()


def passkey_challenge_store(
    settings: Settings, *, availability: Availability
) -> PasskeyChallengeStore:
    if settings.redis_url is None:
        return DatabaseChallengeStore()
    return RedisChallengeStore(settings=settings, availability=availability)


async def issue_challenge(
    *,
    session: AsyncSession,
    store: PasskeyChallengeStore,
    purpose: CeremonyPurpose,
    user_id: uuid.UUID | None,
    now: datetime,
) -> tuple[str, bytes]:
    """A new challenge, kept; its id (for the client to send back) and its bytes (for the
    options). The caller commits."""
    challenge_id = tokens.new_opaque_token()
    challenge = passkeys.new_challenge()
    await store.put(
        session=session,
        id_hash=tokens.hash_opaque_token(challenge_id),
        issued=IssuedChallenge(
            challenge=challenge,
            purpose=purpose,
            user_id=user_id,
            expires_at=now + timedelta(seconds=CHALLENGE_SECONDS),
        ),
        now=now,
    )
    return challenge_id, challenge


async def take_challenge(
    *,
    session: AsyncSession,
    store: PasskeyChallengeStore,
    challenge_id: str,
    purpose: CeremonyPurpose,
    user_id: uuid.UUID | None,
    now: datetime,
) -> bytes:
    """The challenge's bytes, spent now whatever the ceremony's outcome: a challenge is
    good for one answer, right or wrong."""
    issued = await store.take(
        session=session, id_hash=tokens.hash_opaque_token(challenge_id), now=now
    )
    # Committed now: a challenge taken stays taken, though an error may follow.
    await session.commit()
    if issued is None or issued.purpose is not purpose or issued.user_id != user_id:
        raise AuthenticationError(ErrorReason.PASSKEY_CHALLENGE_INVALID)
    return issued.challenge
