"""The keys that sign access tokens: created, rotated, retired, and read by every worker.

A key's state follows from its times (see ``SigningKey``), so activation needs no writer:
every worker reading the same rows agrees which key signs. How a worker reads them is
``services/key_ring.py``.
"""

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import signing_keys as signing_keys_crud
from gql_app.models import SigningKey
from gql_app.models.base import utc_now
from gql_app.security import signing_keys as key_material
from gql_app.security.signing_keys import (
    PRIVATE_JWK_MEMBERS,
    PUBLISHED_ALGORITHMS,
    SigningAlgorithm,
)

logger = logging.getLogger(__name__)

_INSTANT = timedelta(microseconds=1)


class KeyState(StrEnum):
    NEXT = "next"  # published, not signing yet
    CURRENT = "current"  # signing, published
    PREVIOUS = "previous"  # superseded; published and verifying until retired
    RETIRED = "retired"  # neither published nor verifying


class SigningKeyError(Exception):
    """A key change that cannot be made; the message says why."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A signing key's row, detached from the session that read it."""

    kid: str
    algorithm: str
    public_jwk: dict[str, Any]
    encrypted_private_key: bytes
    created_at: datetime
    activates_at: datetime
    retired_at: datetime | None

    @classmethod
    def of(cls, row: SigningKey) -> "StoredKey":
        return cls(
            kid=row.kid,
            algorithm=row.algorithm,
            public_jwk=dict(row.public_jwk),
            encrypted_private_key=row.encrypted_private_key,
            created_at=row.created_at,
            activates_at=row.activates_at,
            retired_at=row.retired_at,
        )

    @property
    def published(self) -> bool:
        return self.algorithm in PUBLISHED_ALGORITHMS

    def has_signed(self) -> bool:
        # Retired before its time came, a key never signed anything.
        return self.retired_at is None or self.retired_at > self.activates_at


@dataclass(frozen=True, slots=True)
class KeyStatus:
    kid: str
    algorithm: str
    state: KeyState
    created_at: datetime
    activates_at: datetime
    retired_at: datetime | None
    # When another key took over signing; None while it signs, or if it never did.
    signed_until: datetime | None


class KeySet:
    """Every stored key, as of one read."""

    def __init__(self, keys: Sequence[StoredKey]) -> None:
        # The kid last: keys made in the same instant are still in one order everywhere.
        self.keys = sorted(keys, key=lambda key: (key.activates_at, key.created_at, key.kid))
        self._by_kid = {key.kid: key for key in self.keys}

    def find(self, kid: str) -> StoredKey | None:
        return self._by_kid.get(kid)

    def current(self, now: datetime) -> StoredKey | None:
        """The key that signs: of the unretired keys whose time has come, the latest."""
        active = [k for k in self.keys if k.retired_at is None and k.activates_at <= now]
        return active[-1] if active else None

    def signer(self, now: datetime) -> StoredKey | None:
        """The key to sign with: the current one; with none yet (the only key was made by
        a host whose clock is a little ahead), the first that will be, already published."""
        current = self.current(now)
        if current is not None:
            return current
        pending = self.pending(now)
        return pending[0] if pending else None

    def state(self, key: StoredKey, now: datetime) -> KeyState:
        if key.retired_at is not None:
            return KeyState.RETIRED
        if key.activates_at > now:
            return KeyState.NEXT
        return KeyState.CURRENT if key is self.current(now) else KeyState.PREVIOUS

    def signed_until(self, key: StoredKey, now: datetime) -> datetime | None:
        if key.activates_at > now or not key.has_signed():
            return None
        position = self.keys.index(key)
        successors = [
            later.activates_at
            for later in self.keys[position + 1 :]
            if later.activates_at <= now and later.has_signed()
        ]
        return min(successors) if successors else None

    def pending(self, now: datetime) -> list[StoredKey]:
        return [k for k in self.keys if self.state(k, now) is KeyState.NEXT]

    def status(self, key: StoredKey, now: datetime) -> KeyStatus:
        return KeyStatus(
            kid=key.kid,
            algorithm=key.algorithm,
            state=self.state(key, now),
            created_at=key.created_at,
            activates_at=key.activates_at,
            retired_at=key.retired_at,
            signed_until=self.signed_until(key, now),
        )

    def published_jwks(self, now: datetime) -> list[dict[str, Any]]:
        """The public halves of the keys that verify: next, current and previous."""
        return [
            {
                name: value
                for name, value in key.public_jwk.items()
                if name not in PRIVATE_JWK_MEMBERS
            }
            for key in self.keys
            if key.published and self.state(key, now) is not KeyState.RETIRED
        ]


def private_key_of(key: StoredKey, settings: Settings) -> key_material.PrivateKey:
    """The key's private half, decrypted with the key-encryption key, or with the one
    derived from SECRET_KEY for keys stored before KEY_ENCRYPTION_KEY was set."""
    private_bytes = key_material.decrypt_private_key(
        key.encrypted_private_key, encryption_keys=settings.key_encryption_secrets, kid=key.kid
    )
    return key_material.load_private_key(private_bytes, algorithm=key.algorithm)


def _check_decryptable(keys: KeySet, settings: Settings) -> None:
    """Raises KeyDecryptionError unless every key still in use decrypts here: a process
    with the wrong SECRET_KEY must not add a key that no other worker could use."""
    for key in keys.keys:
        if key.retired_at is None:
            private_key_of(key, settings)


async def read_keys(*, session: AsyncSession) -> KeySet:
    rows = await signing_keys_crud.list_all(session=session)
    return KeySet([StoredKey.of(row) for row in rows])


async def _create_key(
    *,
    session: AsyncSession,
    settings: Settings,
    algorithm: SigningAlgorithm,
    now: datetime,
    activates_at: datetime,
) -> StoredKey:
    # An RSA key takes tens of milliseconds to make: not on the event loop.
    generated = await asyncio.to_thread(key_material.generate_key, algorithm)
    row = await signing_keys_crud.create(
        session=session,
        kid=generated.kid,
        algorithm=generated.algorithm,
        public_jwk=generated.public_jwk,
        encrypted_private_key=key_material.encrypt_private_key(
            generated.private_bytes,
            encryption_key=settings.key_encryption_secret,
            kid=generated.kid,
        ),
        created_at=now,
        activates_at=activates_at,
    )
    return StoredKey.of(row)


def _first_use(
    settings: Settings, *, replacing: StoredKey | None, algorithm: str, now: datetime
) -> datetime:
    """When a new key may sign: after the publish delay, so verifiers elsewhere fetch it
    first; at once when no key signs yet, or when it is an HMAC key no verifier can use."""
    if replacing is None or algorithm not in PUBLISHED_ALGORITHMS:
        return now
    return now + timedelta(seconds=settings.signing_key_publish_seconds)


async def ensure_signing_key(
    *, session: AsyncSession, settings: Settings, now: datetime | None = None
) -> str | None:
    """A key that signs, of ``JWT_ALGORITHM``: created on first start, and when the
    algorithm changed (a rotation to a key of the new algorithm, so no token is refused).

    Returns what it did, for the log, or None when nothing was needed. The caller commits.
    """
    now = now or utc_now()
    await signing_keys_crud.lock_for_changes(session=session)
    keys = await read_keys(session=session)
    _check_decryptable(keys, settings)
    # A key of another algorithm waiting to sign was made for a JWT_ALGORITHM since
    # changed back: it never signed, so it goes.
    signing = keys.signer(now)
    abandoned = [
        k.kid
        for k in keys.pending(now)
        if k.algorithm != settings.jwt_algorithm and k is not signing
    ]
    if abandoned:
        await signing_keys_crud.retire(session=session, kids=abandoned, now=now)
        keys = await read_keys(session=session)
    current = keys.current(now)
    if current is not None and current.algorithm == settings.jwt_algorithm:
        return None
    if keys.pending(now):
        return None
    activates_at = _first_use(
        settings, replacing=current, algorithm=settings.jwt_algorithm, now=now
    )
    created = await _create_key(
        session=session,
        settings=settings,
        algorithm=settings.jwt_algorithm,
        now=now,
        activates_at=activates_at,
    )
    if current is None:
        return f"created signing key {created.kid} ({created.algorithm})"
    return (
        f"JWT_ALGORITHM is {created.algorithm}: created signing key {created.kid}, which "
        f"signs from {activates_at.isoformat(timespec='seconds')}; {current.kid} "
        f"({current.algorithm}) signs until then and verifies until retired"
    )


async def rotate_signing_key(
    *, session: AsyncSession, settings: Settings, now: datetime | None = None
) -> KeyStatus:
    """A new key of ``JWT_ALGORITHM``, published at once, signing after the publish delay.

    Refused while another key waits to sign: its time would come after this one's and
    take signing back from it.
    """
    now = now or utc_now()
    await signing_keys_crud.lock_for_changes(session=session)
    keys = await read_keys(session=session)
    _check_decryptable(keys, settings)
    if pending := keys.pending(now):
        raise SigningKeyError(
            f"signing key {pending[0].kid} already waits to sign (from "
            f"{pending[0].activates_at.isoformat(timespec='seconds')}): activate or retire it "
            "first"
        )
    current = keys.current(now)
    created = await _create_key(
        session=session,
        settings=settings,
        algorithm=settings.jwt_algorithm,
        now=now,
        activates_at=_first_use(
            settings, replacing=current, algorithm=settings.jwt_algorithm, now=now
        ),
    )
    return KeySet([*keys.keys, created]).status(created, now)


async def _changeable(
    *, session: AsyncSession, kid: str, now: datetime
) -> tuple[KeySet, StoredKey, KeyState]:
    """The keys, locked for a change to ``kid``, and that key as it is now."""
    await signing_keys_crud.lock_for_changes(session=session)
    keys = await read_keys(session=session)
    key = keys.find(kid)
    if key is None:
        raise SigningKeyError(f"no signing key {kid!r} (gql-app keys list shows them)")
    state = keys.state(key, now)
    if state is KeyState.RETIRED:
        raise SigningKeyError(f"signing key {kid} is retired")
    return keys, key, state


async def activate_signing_key(
    *, session: AsyncSession, kid: str, now: datetime | None = None
) -> KeyStatus:
    """Make the key sign from now on; the key that signed until now goes on verifying."""
    now = now or utc_now()
    keys, _, state = await _changeable(session=session, kid=kid, now=now)
    if state is KeyState.CURRENT:
        raise SigningKeyError(f"signing key {kid} already signs")
    # Just after the key signing now, even if another host's clock put that one a moment
    # ahead of this one's: activated means signing, whatever the clocks say.
    signing = keys.signer(now)
    activates_at = now if signing is None else max(now, signing.activates_at + _INSTANT)
    await signing_keys_crud.set_activates_at(session=session, kid=kid, activates_at=activates_at)
    others = [other for other in keys.keys if other.kid != kid]
    activated = StoredKey.of(await _reloaded(session, kid))
    return KeySet([*others, activated]).status(activated, now)


async def _reloaded(session: AsyncSession, kid: str) -> SigningKey:
    row = await signing_keys_crud.get(session=session, kid=kid)
    assert row is not None, "locked for changes: it cannot have gone"
    await session.refresh(row)
    return row


def tokens_unexpired_until(settings: Settings, signed_until: datetime) -> datetime:
    """The last moment a token signed by a key that stopped signing at ``signed_until`` may
    be unexpired: a worker that has not yet seen the change signs with it a little longer."""
    return signed_until + timedelta(
        seconds=settings.access_token_expire_seconds + math.ceil(settings.signing_key_cache_seconds)
    )


async def retire_signing_key(
    *,
    session: AsyncSession,
    settings: Settings,
    kid: str,
    force: bool = False,
    now: datetime | None = None,
) -> KeyStatus:
    """Stop publishing the key and refuse the tokens it signed."""
    now = now or utc_now()
    keys, key, state = await _changeable(session=session, kid=kid, now=now)
    if state is KeyState.CURRENT or key is keys.signer(now):
        raise SigningKeyError(
            f"signing key {kid} signs new tokens: rotate and activate another key first"
        )
    signed_until = keys.signed_until(key, now)
    if signed_until is not None and not force:
        unexpired_until = tokens_unexpired_until(settings, signed_until)
        if now < unexpired_until:
            raise SigningKeyError(
                f"tokens signed by {kid} may be unexpired until "
                f"{unexpired_until.isoformat(timespec='seconds')}; retiring it now signs "
                "their holders out of services until they refresh (--force to do so anyway)"
            )
    await signing_keys_crud.retire(session=session, kids=[kid], now=now)
    retired = StoredKey.of(await _reloaded(session, kid))
    return KeySet([*(k for k in keys.keys if k.kid != kid), retired]).status(retired, now)


async def list_signing_keys(
    *, session: AsyncSession, now: datetime | None = None
) -> list[KeyStatus]:
    now = now or utc_now()
    keys = await read_keys(session=session)
    return [keys.status(key, now) for key in keys.keys]


async def rotate_when_due(
    *, session: AsyncSession, settings: Settings, now: datetime | None = None
) -> list[str]:
    """Automatic rotation (``SIGNING_KEY_ROTATION_DAYS``): a new key published early enough
    to sign when the current one has signed for that long, and superseded keys retired once
    no token they signed can be unexpired. Returns what it did. The caller commits."""
    if settings.signing_key_rotation_days is None:
        return []
    now = now or utc_now()
    await signing_keys_crud.lock_for_changes(session=session)
    keys = await read_keys(session=session)
    _check_decryptable(keys, settings)
    done: list[str] = []
    expired = [
        key.kid
        for key in keys.keys
        if keys.state(key, now) is KeyState.PREVIOUS
        and (signed_until := keys.signed_until(key, now)) is not None
        and now >= tokens_unexpired_until(settings, signed_until)
    ]
    if expired:
        await signing_keys_crud.retire(session=session, kids=expired, now=now)
        done.append(f"retired signing keys {', '.join(expired)}: every token they signed expired")
    current = keys.current(now)
    if current is None or keys.pending(now):
        return done
    publish = timedelta(seconds=settings.signing_key_publish_seconds)
    due = current.activates_at + timedelta(days=settings.signing_key_rotation_days) - publish
    if now >= due:
        created = await _create_key(
            session=session,
            settings=settings,
            algorithm=settings.jwt_algorithm,
            now=now,
            activates_at=max(now, current.activates_at) + publish,
        )
        done.append(
            f"rotated: signing key {created.kid} published, signs from "
            f"{created.activates_at.isoformat(timespec='seconds')}"
        )
    return done
