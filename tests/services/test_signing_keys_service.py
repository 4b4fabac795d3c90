"""The signing keys' life: created, rotated, activated, retired, and read by a worker's
KeyRing (services/signing_keys.py)."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gql_app.config import Settings
from gql_app.db import create_engine
from gql_app.migrations import upgrade_to_head
from gql_app.security.signing_keys import KeyDecryptionError, SigningAlgorithm
from gql_app.services import signing_keys as keys_service
from gql_app.services.signing_keys import KeyState, SigningKeyError
from tests.e2e.postgres import database_name, drop_database, postgres_server, recreate_database
from tests.fixtures.signing_keys import first_key, rotated, states, with_algorithm

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(NOW) as frozen:
        yield frozen


class TestFirstKey:
    @pytest.mark.usefixtures("clock")
    async def test_a_database_without_keys_gets_one_that_signs_at_once(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        done = await keys_service.ensure_signing_key(session=db_session, settings=settings)
        await db_session.commit()

        [(kid, algorithm, state)] = await states(db_session)
        assert done == f"created signing key {kid} (ES256)"
        assert (algorithm, state) == ("ES256", KeyState.CURRENT)

    @pytest.mark.usefixtures("clock")
    async def test_ensuring_again_changes_nothing(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        kid = await first_key(db_session, settings)

        done = await keys_service.ensure_signing_key(session=db_session, settings=settings)

        assert done is None
        assert await states(db_session) == [(kid, "ES256", KeyState.CURRENT)]

    @pytest.mark.usefixtures("clock")
    @pytest.mark.parametrize("algorithm", ["EdDSA", "RS256"])
    async def test_a_changed_algorithm_is_a_rotation_not_a_break(
        self, db_session: AsyncSession, settings: Settings, algorithm: SigningAlgorithm
    ) -> None:
        old = await first_key(db_session, settings)
        changed = with_algorithm(settings, algorithm)

        done = await keys_service.ensure_signing_key(session=db_session, settings=changed)
        await db_session.commit()

        [(_, _, old_state), (new, new_algorithm, new_state)] = await states(db_session)
        assert (old_state, new_algorithm, new_state) == (KeyState.CURRENT, algorithm, KeyState.NEXT)
        assert done is not None
        assert done.startswith(f"JWT_ALGORITHM is {algorithm}: created signing key {new}")
        assert f"{old} (ES256) signs until then" in done
        # Restarting again before it signs must not add another.
        assert await keys_service.ensure_signing_key(session=db_session, settings=changed) is None
        assert len(await states(db_session)) == 2

    async def test_a_new_hmac_key_signs_at_once_no_verifier_could_fetch_it(
        self, db_session: AsyncSession, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        old = await first_key(db_session, settings)
        clock.tick()

        await keys_service.ensure_signing_key(
            session=db_session, settings=with_algorithm(settings, "HS256")
        )

        [(first, _, old_state), (_, algorithm, new_state)] = await states(db_session)
        assert (first, old_state) == (old, KeyState.PREVIOUS)
        assert (algorithm, new_state) == ("HS256", KeyState.CURRENT)


class TestRotation:
    async def test_a_rotated_key_is_published_now_and_signs_after_the_publish_delay(
        self, db_session: AsyncSession, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        old = await first_key(db_session, settings)

        new = await rotated(db_session, settings)

        assert (new.state, new.activates_at) == (KeyState.NEXT, NOW + HOUR)
        assert [key["kid"] for key in await published(db_session)] == [old, new.kid]
        clock.tick(HOUR)
        assert [state for _, _, state in await states(db_session)] == [
            KeyState.PREVIOUS,
            KeyState.CURRENT,
        ]

    @pytest.mark.usefixtures("clock")
    async def test_rotating_an_empty_database_makes_a_key_that_signs_at_once(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        new = await rotated(db_session, settings)

        assert (new.state, new.activates_at) == (KeyState.CURRENT, NOW)

    @pytest.mark.usefixtures("clock")
    async def test_activating_makes_it_sign_now_and_the_old_key_goes_on_verifying(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        old = await first_key(db_session, settings)
        new = await rotated(db_session, settings)

        activated = await keys_service.activate_signing_key(session=db_session, kid=new.kid)
        await db_session.commit()

        assert (activated.state, activated.activates_at) == (KeyState.CURRENT, NOW)
        assert await states(db_session) == [
            (old, "ES256", KeyState.PREVIOUS),
            (new.kid, "ES256", KeyState.CURRENT),
        ]
        [old_status, _] = await keys_service.list_signing_keys(session=db_session)
        assert old_status.signed_until == NOW

    async def test_a_previous_key_can_be_made_to_sign_again(
        self, db_session: AsyncSession, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        old = await first_key(db_session, settings)
        new = await rotated(db_session, settings)
        await keys_service.activate_signing_key(session=db_session, kid=new.kid)
        clock.tick()

        back = await keys_service.activate_signing_key(session=db_session, kid=old)

        assert back.state is KeyState.CURRENT
        assert {kid: state for kid, _, state in await states(db_session)} == {
            old: KeyState.CURRENT,
            new.kid: KeyState.PREVIOUS,
        }

    @pytest.mark.usefixtures("clock")
    @pytest.mark.parametrize(
        ("target", "message"),
        [
            ("current", "already signs"),
            ("unknown", "no signing key 'unknown'"),
            ("retired", "is retired"),
        ],
    )
    async def test_what_cannot_be_activated(
        self, db_session: AsyncSession, settings: Settings, target: str, message: str
    ) -> None:
        current = await first_key(db_session, settings)
        pending = await rotated(db_session, settings)
        await keys_service.retire_signing_key(
            session=db_session, settings=settings, kid=pending.kid
        )
        kid = {"current": current, "unknown": "unknown", "retired": pending.kid}[target]

        with pytest.raises(SigningKeyError, match=message):
            await keys_service.activate_signing_key(session=db_session, kid=kid)


async def published(session: AsyncSession) -> list[dict[str, Any]]:
    return (await keys_service.read_keys(session=session)).published_jwks(datetime.now(UTC))


class TestRetirement:
    async def test_refused_while_tokens_it_signed_may_be_unexpired(
        self, db_session: AsyncSession, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        old = await first_key(db_session, settings)
        new = await rotated(db_session, settings)
        await keys_service.activate_signing_key(session=db_session, kid=new.kid)
        # The last token it signed lives ACCESS_TOKEN_EXPIRE_SECONDS; a worker that has not
        # yet read the change may sign with it for SIGNING_KEY_CACHE_SECONDS more.
        last_expiry = NOW + timedelta(seconds=settings.access_token_expire_seconds + 30)

        clock.move_to(last_expiry - timedelta(seconds=1))
        with pytest.raises(
            SigningKeyError, match=f"may be unexpired until {last_expiry:%Y-%m-%dT%H:%M:%S}"
        ):
            await keys_service.retire_signing_key(session=db_session, settings=settings, kid=old)

        clock.move_to(last_expiry)
        retired = await keys_service.retire_signing_key(
            session=db_session, settings=settings, kid=old
        )
        assert (retired.state, retired.retired_at) == (KeyState.RETIRED, last_expiry)
        assert [key["kid"] for key in await published(db_session)] == [new.kid]

    @pytest.mark.usefixtures("clock")
    async def test_forced_at_once(self, db_session: AsyncSession, settings: Settings) -> None:
        old = await first_key(db_session, settings)
        new = await rotated(db_session, settings)
        await keys_service.activate_signing_key(session=db_session, kid=new.kid)

        retired = await keys_service.retire_signing_key(
            session=db_session, settings=settings, kid=old, force=True
        )

        assert retired.state is KeyState.RETIRED

    @pytest.mark.usefixtures("clock")
    async def test_a_key_that_never_signed_goes_at_once(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        await first_key(db_session, settings)
        pending = await rotated(db_session, settings)

        retired = await keys_service.retire_signing_key(
            session=db_session, settings=settings, kid=pending.kid
        )

        assert (retired.state, retired.signed_until) == (KeyState.RETIRED, None)

    @pytest.mark.usefixtures("clock")
    async def test_the_signing_key_is_never_retired(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        current = await first_key(db_session, settings)

        with pytest.raises(SigningKeyError, match="signs new tokens: rotate and activate"):
            await keys_service.retire_signing_key(
                session=db_session, settings=settings, kid=current, force=True
            )

    @pytest.mark.usefixtures("clock")
    async def test_a_key_that_signs_before_its_time_is_not_retired_either(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        # Made by a host whose clock is ahead: it signs already, though still next here.
        await keys_service.ensure_signing_key(
            session=db_session, settings=settings, now=NOW + timedelta(seconds=2)
        )
        [(kid, _, state)] = await states(db_session)

        with pytest.raises(SigningKeyError, match="signs new tokens"):
            await keys_service.retire_signing_key(session=db_session, settings=settings, kid=kid)
        assert state is KeyState.NEXT

    @pytest.mark.usefixtures("clock")
    async def test_retiring_twice_says_so(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        await first_key(db_session, settings)
        pending = await rotated(db_session, settings)
        await keys_service.retire_signing_key(
            session=db_session, settings=settings, kid=pending.kid
        )

        with pytest.raises(SigningKeyError, match="is retired"):
            await keys_service.retire_signing_key(
                session=db_session, settings=settings, kid=pending.kid
            )

    @pytest.mark.usefixtures("clock")
    async def test_a_key_retired_before_it_signed_never_took_over(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        current = await first_key(db_session, settings)
        pending = await rotated(db_session, settings)
        await keys_service.retire_signing_key(
            session=db_session, settings=settings, kid=pending.kid
        )

        listed = {
            status.kid: status
            for status in await keys_service.list_signing_keys(session=db_session)
        }

        assert (listed[current].state, listed[current].signed_until) == (KeyState.CURRENT, None)


class TestAutomaticRotation:
    async def test_off_unless_a_period_is_set(
        self, db_session: AsyncSession, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        await first_key(db_session, settings)
        clock.tick(timedelta(days=400))

        assert await keys_service.rotate_when_due(session=db_session, settings=settings) == []
        assert len(await states(db_session)) == 1

    async def test_a_new_key_is_published_to_sign_when_the_period_ends(
        self, db_session: AsyncSession, settings: Settings, clock: FrozenDateTimeFactory
    ) -> None:
        monthly = settings.model_copy(update={"signing_key_rotation_days": 30})
        await keys_service.ensure_signing_key(session=db_session, settings=monthly)
        [(old, _, _)] = await states(db_session)

        clock.tick(timedelta(days=30) - HOUR - timedelta(seconds=1))
        assert await keys_service.rotate_when_due(session=db_session, settings=monthly) == []
        clock.tick(timedelta(seconds=1))
        [done] = await keys_service.rotate_when_due(session=db_session, settings=monthly)
        await db_session.commit()

        [_, new] = await keys_service.list_signing_keys(session=db_session)
        assert new.activates_at == NOW + timedelta(days=30)
        assert done.startswith(f"rotated: signing key {new.kid} published")
        # A pending key is not rotated again; once every token the old one signed has
        # expired, it is retired.
        assert await keys_service.rotate_when_due(session=db_session, settings=monthly) == []
        clock.tick(HOUR + timedelta(seconds=monthly.access_token_expire_seconds + 30))
        [retired] = await keys_service.rotate_when_due(session=db_session, settings=monthly)
        assert retired == f"retired signing keys {old}: every token they signed expired"
        assert [state for _, _, state in await states(db_session)] == [
            KeyState.RETIRED,
            KeyState.CURRENT,
        ]


class TestKeyChangesThatAreRefused:
    @pytest.mark.usefixtures("clock")
    async def test_a_rotation_while_another_key_waits_to_sign(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        # Its time would come after the new key's, and take signing back from it.
        await first_key(db_session, settings)
        pending = await rotated(db_session, settings)

        with pytest.raises(SigningKeyError, match=f"{pending.kid} already waits to sign"):
            await keys_service.rotate_signing_key(session=db_session, settings=settings)

    @pytest.mark.usefixtures("clock")
    async def test_an_algorithm_changed_back_drops_the_key_made_for_the_change(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        old = await first_key(db_session, settings)
        await keys_service.ensure_signing_key(
            session=db_session, settings=with_algorithm(settings, "EdDSA")
        )

        done = await keys_service.ensure_signing_key(session=db_session, settings=settings)

        assert done is None
        assert [(algorithm, state) for _, algorithm, state in await states(db_session)] == [
            ("ES256", KeyState.CURRENT),
            ("EdDSA", KeyState.RETIRED),
        ]
        assert (await states(db_session))[0][0] == old

    @pytest.mark.usefixtures("clock")
    @pytest.mark.parametrize("change", ["ensure", "rotate", "rotate_when_due"])
    async def test_no_key_is_added_by_a_process_that_cannot_decrypt_the_others(
        self, db_session: AsyncSession, settings: Settings, change: str
    ) -> None:
        await first_key(db_session, settings)
        wrong = settings.model_copy(
            update={
                "secret_key": SecretStr("w" * 48),
                "jwt_algorithm": "EdDSA",
                "signing_key_rotation_days": 1,
            }
        )
        act = {
            "ensure": keys_service.ensure_signing_key,
            "rotate": keys_service.rotate_signing_key,
            "rotate_when_due": keys_service.rotate_when_due,
        }[change]

        with pytest.raises(KeyDecryptionError):
            await act(session=db_session, settings=wrong)
        await db_session.rollback()

        assert len(await states(db_session)) == 1


async def ensure_in_own_session(engine: AsyncEngine, settings: Settings) -> None:
    async with AsyncSession(engine) as session:
        await keys_service.ensure_signing_key(session=session, settings=settings)
        # Committed a moment later, so the other starts read before this one is stored
        # unless the lock keeps them out.
        await asyncio.sleep(0.05)
        await session.commit()


@pytest.fixture(scope="module")
def postgres_server_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)])
def shared_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, worker_id: str
) -> Iterator[str]:
    """An empty database that several engines (workers) open."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        return
    server_url: str = request.getfixturevalue("postgres_server_url")
    name = database_name("gql_app_test_first_key", worker_id)
    yield recreate_database(server_url, name)
    drop_database(server_url, name)


async def test_workers_starting_together_create_one_key(
    shared_database_url: str, settings: Settings
) -> None:
    engines = [create_engine(shared_database_url) for _ in range(3)]
    try:
        await upgrade_to_head(engines[0])
        await asyncio.gather(*(ensure_in_own_session(engine, settings) for engine in engines))
        async with AsyncSession(engines[0]) as session:
            keys = await keys_service.list_signing_keys(session=session)
    finally:
        for engine in engines:
            await engine.dispose()

    assert [key.state for key in keys] == [KeyState.CURRENT]
