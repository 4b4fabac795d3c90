"""A worker's view of the signing keys: what it caches, reads again and makes
(services/key_ring.py)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

# Imported before any test freezes the clock: its compiled parts check datetime's size as
# they load, and freezegun's stand-in fails that check.
import asyncpg  # noqa: F401
import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gql_app.config import Settings
from gql_app.db import SessionFactory, create_engine
from gql_app.error_reasons import ErrorReason
from gql_app.errors import ServiceUnavailableError
from gql_app.security.signing_keys import KeyDecryptionError
from gql_app.services import signing_keys as keys_service
from gql_app.services.key_ring import KeyRing
from gql_app.services.signing_keys import KeyState
from tests.fixtures.signing_keys import first_key, rotated, states, with_algorithm

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
REFUSING_DATABASE = "postgresql+asyncpg://nobody@127.0.0.1:1/none"


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(NOW) as frozen:
        yield frozen


class CountedReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM signing_keys" in statement:
            self.count += 1


class TestKeyRing:
    async def test_signs_with_a_key_it_makes_when_there_is_none_and_keeps_it_once_stored(
        self, db_session: AsyncSession, session_factory: SessionFactory, settings: Settings
    ) -> None:
        ring = KeyRing(settings)

        signer = await ring.signing_key(session=db_session)
        await db_session.commit()

        async with session_factory() as other:
            [(kid, algorithm, state)] = await states(other)
            assert (signer.kid, signer.algorithm, state) == (kid, algorithm, KeyState.CURRENT)
            assert await ring.signing_key(session=other) is signer

    async def test_a_key_it_made_is_not_kept_if_the_caller_rolls_back(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        ring = KeyRing(settings)

        discarded = await ring.signing_key(session=db_session)
        await db_session.rollback()
        kept = await ring.signing_key(session=db_session)

        assert kept.kid != discarded.kid

    async def test_a_retirement_elsewhere_is_honoured_once_the_cache_expires(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        clock: FrozenDateTimeFactory,
    ) -> None:
        ring = KeyRing(settings)
        old = await first_key(db_session, settings)
        new = await rotated(db_session, settings)
        assert await ring.verification_key(session=db_session, kid=old) is not None

        async with session_factory() as elsewhere:
            await keys_service.activate_signing_key(session=elsewhere, kid=new.kid)
            await keys_service.retire_signing_key(
                session=elsewhere, settings=settings, kid=old, force=True
            )
            await elsewhere.commit()

        clock.tick(timedelta(seconds=settings.signing_key_cache_seconds - 1))
        assert await ring.verification_key(session=db_session, kid=old) is not None
        assert (await ring.signing_key(session=db_session)).kid == old
        clock.tick(timedelta(seconds=1))
        assert await ring.verification_key(session=db_session, kid=old) is None
        assert (await ring.signing_key(session=db_session)).kid == new.kid

    @pytest.mark.usefixtures("clock")
    async def test_an_unknown_kid_is_looked_up_at_most_once_a_second(
        self,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        clock: FrozenDateTimeFactory,
    ) -> None:
        engine, _ = async_test_db
        ring = KeyRing(settings)
        await first_key(db_session, settings)
        await ring.signing_key(session=db_session)
        async with session_factory() as elsewhere:
            new = await rotated(elsewhere, settings)
        reads = CountedReads(engine)

        # Published elsewhere just after this worker read the keys: known at once, without
        # waiting for the cache.
        assert (await ring.verification_key(session=db_session, kid=new.kid)) is not None
        assert await ring.verification_key(session=db_session, kid="made-up") is None
        assert await ring.verification_key(session=db_session, kid="made-up-too") is None
        assert reads.count == 1
        clock.tick(timedelta(seconds=1))
        assert await ring.verification_key(session=db_session, kid="made-up") is None
        assert reads.count == 2

    @pytest.mark.usefixtures("clock")
    async def test_publishes_the_public_halves_of_the_keys_that_verify(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        ring = KeyRing(settings)
        old = await first_key(db_session, settings)
        hmac_key = await rotated(db_session, with_algorithm(settings, "HS256"))
        pending = await rotated(db_session, with_algorithm(settings, "EdDSA"))

        jwks = await ring.published_jwks(session=db_session)

        assert hmac_key.state is KeyState.CURRENT
        assert [(key["kid"], key["alg"]) for key in jwks] == [
            (old, "ES256"),
            (pending.kid, "EdDSA"),
        ]

    @pytest.mark.usefixtures("clock")
    async def test_an_hmac_key_verifies_with_its_secret(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        hmac_settings = with_algorithm(settings, "HS256")
        ring = KeyRing(hmac_settings)
        signer = await ring.signing_key(session=db_session)

        verifier = await ring.verification_key(session=db_session, kid=signer.kid)

        assert verifier is not None
        assert verifier.key == signer.key
        assert isinstance(verifier.key, bytes)

    async def test_a_key_made_by_a_host_whose_clock_is_ahead_signs_already(
        self, db_session: AsyncSession, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        await keys_service.ensure_signing_key(
            session=db_session, settings=settings, now=NOW + timedelta(seconds=2)
        )
        await db_session.commit()

        signer = await KeyRing(settings).signing_key(session=db_session)

        [(kid, _, state)] = await states(db_session)
        assert (signer.kid, state) == (kid, KeyState.NEXT)

    async def test_after_a_failed_read_the_requests_behind_it_do_not_wait_again(
        self, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        engine = create_engine(REFUSING_DATABASE)
        ring = KeyRing(settings)
        try:
            async with AsyncSession(engine) as session:
                with pytest.raises(OSError):  # noqa: PT011 - the driver's own refusal
                    await ring.signing_key(session=session)
                with pytest.raises(ServiceUnavailableError) as caught:
                    await ring.verification_key(session=session, kid="any")
                assert caught.value.reason is ErrorReason.DATABASE_UNAVAILABLE
                clock.tick(timedelta(seconds=1))
                with pytest.raises(OSError):  # noqa: PT011 - it tries again
                    await ring.verification_key(session=session, kid="any")
        finally:
            await engine.dispose()

    async def test_the_key_set_is_still_published_while_the_database_is_down(
        self, db_session: AsyncSession, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        ring = KeyRing(settings)
        kid = await first_key(db_session, settings)
        assert [key["kid"] for key in await ring.published_jwks(session=db_session)] == [kid]
        engine = create_engine(REFUSING_DATABASE)
        clock.tick(timedelta(seconds=settings.signing_key_cache_seconds + 1))
        try:
            async with AsyncSession(engine) as session:
                stale = await ring.published_jwks(session=session)
                again = await ring.published_jwks(session=session)
                # Tokens are still checked with them; what needs the database fails there.
                assert await ring.verification_key(session=session, kid=kid) is not None
        finally:
            await engine.dispose()

        assert [key["kid"] for key in stale] == [key["kid"] for key in again] == [kid]

    @pytest.mark.usefixtures("clock")
    async def test_keys_stored_under_another_secret_are_refused_plainly(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        await first_key(db_session, settings)
        other_secret = settings.model_copy(update={"secret_key": SecretStr("o" * 48)})

        with pytest.raises(KeyDecryptionError, match="SECRET_KEY or KEY_ENCRYPTION_KEY"):
            await KeyRing(other_secret).signing_key(session=db_session)

    @pytest.mark.usefixtures("clock")
    async def test_keys_stored_before_a_key_encryption_key_was_set_still_decrypt(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        before = await KeyRing(settings).signing_key(session=db_session)
        await db_session.commit()
        with_dedicated_key = settings.model_copy(update={"key_encryption_key": SecretStr("e" * 48)})

        after = await KeyRing(with_dedicated_key).signing_key(session=db_session)

        assert after.kid == before.kid

    @pytest.mark.usefixtures("clock")
    async def test_a_key_encryption_key_frees_the_keys_from_the_secret_key(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        encryption_key = SecretStr("e" * 48)
        first = settings.model_copy(update={"key_encryption_key": encryption_key})
        signer = await KeyRing(first).signing_key(session=db_session)
        await db_session.commit()
        new_secret = first.model_copy(update={"secret_key": SecretStr("n" * 48)})

        assert (await KeyRing(new_secret).signing_key(session=db_session)).kid == signer.kid
        with pytest.raises(KeyDecryptionError):
            await KeyRing(settings).signing_key(session=db_session)

    async def test_a_retired_hmac_key_that_no_longer_decrypts_checks_nothing(
        self, db_session: AsyncSession, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        hmac_settings = with_algorithm(settings, "HS256").model_copy(
            update={"key_encryption_key": SecretStr("e" * 48)}
        )
        old = (await KeyRing(hmac_settings).signing_key(session=db_session)).kid
        await db_session.commit()
        new = await rotated(db_session, with_algorithm(hmac_settings, "ES256"))
        await keys_service.activate_signing_key(session=db_session, kid=new.kid)
        clock.tick()
        await keys_service.retire_signing_key(
            session=db_session, settings=hmac_settings, kid=old, force=True
        )
        await db_session.commit()
        elsewhere = hmac_settings.model_copy(
            update={"secret_key": SecretStr("n" * 48), "key_encryption_key": SecretStr("m" * 48)}
        )

        assert await KeyRing(elsewhere).retired_key(session=db_session, kid=old) is None
        assert await KeyRing(hmac_settings).retired_key(session=db_session, kid=old) is not None
