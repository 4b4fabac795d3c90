"""One worker's view of the signing keys (``KeyRing``): what it read is kept for
``SIGNING_KEY_CACHE_SECONDS``, the bound on how long a key activated or retired elsewhere
takes to be honoured here."""

import asyncio
import logging
import math
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.availability import OUTAGE_RETRY_AFTER_SECONDS
from gql_app.config import Settings
from gql_app.db import database_unreachable
from gql_app.errors import ServiceUnavailableError, Unavailable
from gql_app.models.base import utc_now
from gql_app.security import signing_keys as key_material
from gql_app.security.tokens import TokenSigner, TokenVerifier
from gql_app.services.signing_keys import (
    KeySet,
    KeyState,
    StoredKey,
    ensure_signing_key,
    private_key_of,
    read_keys,
)

logger = logging.getLogger(__name__)

# A token naming a kid this worker does not know makes it read the keys again, at most
# this often: a key activated elsewhere is trusted at once, and made-up kids cost nothing.
UNKNOWN_KID_RELOAD_SECONDS = 1.0
# After a read the database did not answer, how long the requests waiting on it are
# answered SERVICE_UNAVAILABLE without trying again.
READ_FAILURE_PAUSE_SECONDS = 1.0


class KeyRing:
    """One worker's view of the signing keys: read from the database, kept for
    ``SIGNING_KEY_CACHE_SECONDS``, with each key's cryptography object made once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys: KeySet | None = None
        self._read_at = -math.inf
        self._unknown_kid_read_at = -math.inf
        self._failed_at = -math.inf
        self._reading = asyncio.Lock()
        self._signers: dict[str, TokenSigner] = {}
        self._verifiers: dict[str, TokenVerifier] = {}

    def forget(self) -> None:
        """Read the keys again on next use."""
        self._keys = None
        self._read_at = -math.inf

    async def _fresh(self, session: AsyncSession) -> KeySet:
        if self._keys is not None and time.monotonic() - self._read_at < self._cache_seconds:
            return self._keys
        return await self._read(session, older_than=self._cache_seconds)

    @property
    def _cache_seconds(self) -> float:
        return self._settings.signing_key_cache_seconds

    async def _read(self, session: AsyncSession, *, older_than: float) -> KeySet:
        async with self._reading:
            # Requests that waited here for another's read use what it read.
            if self._keys is not None and time.monotonic() - self._read_at < older_than:
                return self._keys
            if time.monotonic() - self._failed_at < READ_FAILURE_PAUSE_SECONDS:
                # The database just failed to answer: the requests queued behind that read
                # are answered at once rather than each waiting out a timeout in turn.
                return self._stale_or_unavailable()
            try:
                keys = await read_keys(session=session)
            except Exception as error:
                if not database_unreachable(error):
                    raise
                self._failed_at = time.monotonic()
                if self._keys is None:
                    raise
                # Keys read before still check tokens, and the JWKS must still be served to
                # services that verify offline; what needs the database fails on its own.
                logger.warning("signing keys unreadable; using the ones read before")
                return self._keys
            self._keys, self._read_at = keys, time.monotonic()
            return keys

    def _stale_or_unavailable(self) -> KeySet:
        if self._keys is not None:
            return self._keys
        raise ServiceUnavailableError(Unavailable.DATABASE, retry_after=OUTAGE_RETRY_AFTER_SECONDS)

    async def signing_key(self, *, session: AsyncSession) -> TokenSigner:
        """The key that signs now; created when there is none (a database the server has
        not started on). A key created here is the caller's to commit, so it is not kept
        until a later read finds it stored."""
        now = utc_now()
        signer = (await self._fresh(session)).signer(now)
        if signer is None:
            signer = (await self._read(session, older_than=0)).signer(now)
        if signer is None:
            await ensure_signing_key(session=session, settings=self._settings, now=now)
            self.forget()
            signer = (await read_keys(session=session)).signer(now)
            if signer is None:
                raise RuntimeError("no signing key, even after creating one")
        return self._signer(signer)

    async def verification_key(self, *, session: AsyncSession, kid: str) -> TokenVerifier | None:
        """The key that checks tokens naming ``kid``, or None when none may (unknown or
        retired)."""
        key, keys = await self._find(session, kid)
        if key is None or keys.state(key, utc_now()) is KeyState.RETIRED:
            return None
        return self._verifier(key)

    async def retired_key(self, *, session: AsyncSession, kid: str) -> TokenVerifier | None:
        """The key ``kid`` names if it was retired: what it signed is genuine but no longer
        accepted, which its holder is told so that it refreshes."""
        key, keys = await self._find(session, kid)
        if key is None or keys.state(key, utc_now()) is not KeyState.RETIRED:
            return None
        try:
            return self._verifier(key)
        except key_material.KeyDecryptionError:
            # A retired HMAC key stored under a secret no longer configured: nothing can
            # tell its tokens from forgeries any more.
            return None

    async def _find(self, session: AsyncSession, kid: str) -> tuple[StoredKey | None, KeySet]:
        keys = await self._fresh(session)
        key = keys.find(kid)
        if key is None and (
            time.monotonic() - self._unknown_kid_read_at >= UNKNOWN_KID_RELOAD_SECONDS
        ):
            self._unknown_kid_read_at = time.monotonic()
            keys = await self._read(session, older_than=0)
            key = keys.find(kid)
        return key, keys

    async def published_jwks(self, *, session: AsyncSession) -> list[dict[str, Any]]:
        """The key set to publish; while the database cannot be read, the last one read."""
        return (await self._fresh(session)).published_jwks(utc_now())

    def _signer(self, key: StoredKey) -> TokenSigner:
        signer = self._signers.get(key.kid)
        if signer is None:
            private_key = private_key_of(key, self._settings)
            signer = TokenSigner(kid=key.kid, algorithm=key.algorithm, key=private_key)
            self._signers[key.kid] = signer
        return signer

    def _verifier(self, key: StoredKey) -> TokenVerifier:
        verifier = self._verifiers.get(key.kid)
        if verifier is None:
            # An HMAC key checks with the secret that signs; the others with the public half.
            material: key_material.PublicKey
            if key.published:
                material = key_material.load_public_key(key.public_jwk, algorithm=key.algorithm)
            else:
                secret = private_key_of(key, self._settings)
                assert isinstance(secret, bytes), "only HMAC keys are unpublished"
                material = secret
            verifier = TokenVerifier(kid=key.kid, algorithm=key.algorithm, key=material)
            self._verifiers[key.kid] = verifier
        return verifier
