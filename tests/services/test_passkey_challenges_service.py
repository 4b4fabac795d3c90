"""The challenges passkey ceremonies answer (services/passkey_challenges.py), kept in the
database and in Redis: single use, five minutes, bound to their purpose and account."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import coredis
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.availability import Availability, Dependency
from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.error_reasons import ErrorReason
from gql_app.errors import AuthenticationError, ServiceUnavailableError, Unavailable
from gql_app.models import PasskeyChallenge, User
from gql_app.redis_pool import redis_connection_pool
from gql_app.security import tokens
from gql_app.services import passkey_challenges as challenges_service
from gql_app.services.passkey_challenges import (
    CHALLENGE_SECONDS,
    CeremonyPurpose,
    DatabaseChallengeStore,
    PasskeyChallengeStore,
    RedisChallengeStore,
)
from tests.factories import create_user

# Far from the wall clock on purpose: the stores must go by the time they are given.
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
# Nothing listens on port 1: connections are refused at once.
REFUSING_REDIS = "redis://127.0.0.1:1/0"


def redis_settings(settings: Settings, redis_url: str) -> Settings:
    """Settings on the test Redis, under a key prefix no other test shares."""
    return settings.model_copy(
        update={"redis_url": redis_url, "rate_limit_key_prefix": f"test-{uuid.uuid4().hex}"}
    )


@pytest_asyncio.fixture(params=["database", "redis"])
async def store(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[PasskeyChallengeStore]:
    if request.param == "database":
        yield DatabaseChallengeStore()
        return
    redis_store = RedisChallengeStore(
        settings=redis_settings(settings, request.getfixturevalue("redis_url")),
        availability=Availability(),
    )
    yield redis_store
    await redis_store.aclose()


@pytest_asyncio.fixture
async def accounts(db_session: AsyncSession, test_user: User) -> dict[str | None, uuid.UUID | None]:
    """Two accounts, and none (a sign-in's), by the names the tests bind challenges to."""
    other = await create_user(db_session, email="other@example.com")
    return {"user": test_user.id, "other": other.id, None: None}


async def issued(
    session: AsyncSession,
    store: PasskeyChallengeStore,
    *,
    purpose: CeremonyPurpose = CeremonyPurpose.REGISTRATION,
    user_id: uuid.UUID | None = None,
    now: datetime = NOW,
) -> tuple[str, bytes]:
    """A challenge handed out, committed as the resolvers commit it."""
    handed_out = await challenges_service.issue_challenge(
        session=session, store=store, purpose=purpose, user_id=user_id, now=now
    )
    await session.commit()
    return handed_out


async def take(
    session: AsyncSession,
    store: PasskeyChallengeStore,
    challenge_id: str,
    *,
    purpose: CeremonyPurpose = CeremonyPurpose.REGISTRATION,
    user_id: uuid.UUID | None = None,
    now: datetime = NOW,
) -> bytes:
    return await challenges_service.take_challenge(
        session=session,
        store=store,
        challenge_id=challenge_id,
        purpose=purpose,
        user_id=user_id,
        now=now,
    )


async def refused(
    session: AsyncSession,
    store: PasskeyChallengeStore,
    challenge_id: str,
    *,
    purpose: CeremonyPurpose = CeremonyPurpose.REGISTRATION,
    user_id: uuid.UUID | None = None,
    now: datetime = NOW,
) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await take(session, store, challenge_id, purpose=purpose, user_id=user_id, now=now)
    assert caught.value.reason is ErrorReason.PASSKEY_CHALLENGE_INVALID


async def challenge_rows(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(PasskeyChallenge))).scalar_one()


class TestTakingAChallenge:
    async def test_answers_the_bytes_it_handed_out(
        self, db_session: AsyncSession, store: PasskeyChallengeStore, test_user: User
    ) -> None:
        challenge_id, challenge = await issued(db_session, store, user_id=test_user.id)

        taken = await take(db_session, store, challenge_id, user_id=test_user.id)

        assert taken == challenge
        assert len(challenge) == 32

    @pytest.mark.parametrize("purpose", list(CeremonyPurpose))
    async def test_a_sign_in_challenge_is_bound_to_no_account(
        self, db_session: AsyncSession, store: PasskeyChallengeStore, purpose: CeremonyPurpose
    ) -> None:
        challenge_id, challenge = await issued(db_session, store, purpose=purpose)

        assert await take(db_session, store, challenge_id, purpose=purpose) == challenge

    async def test_is_good_for_one_take(
        self, db_session: AsyncSession, store: PasskeyChallengeStore, test_user: User
    ) -> None:
        challenge_id, _ = await issued(db_session, store, user_id=test_user.id)
        await take(db_session, store, challenge_id, user_id=test_user.id)

        await refused(db_session, store, challenge_id, user_id=test_user.id)

    async def test_each_challenge_is_new(
        self, db_session: AsyncSession, store: PasskeyChallengeStore
    ) -> None:
        first_id, first = await issued(db_session, store)
        second_id, second = await issued(db_session, store)

        assert first_id != second_id
        assert first != second
        assert await take(db_session, store, second_id) == second
        assert await take(db_session, store, first_id) == first

    async def test_an_unknown_id_is_refused(
        self, db_session: AsyncSession, store: PasskeyChallengeStore
    ) -> None:
        await issued(db_session, store)

        await refused(db_session, store, tokens.new_opaque_token())

    async def test_a_malformed_id_is_refused(
        self, db_session: AsyncSession, store: PasskeyChallengeStore
    ) -> None:
        await refused(db_session, store, "\ud800 not a token")


class TestBinding:
    @pytest.mark.parametrize(
        ("issued_for", "taken_for"),
        [
            (CeremonyPurpose.REGISTRATION, CeremonyPurpose.SIGN_IN),
            (CeremonyPurpose.SIGN_IN, CeremonyPurpose.SECOND_FACTOR),
            (CeremonyPurpose.SECOND_FACTOR, CeremonyPurpose.REGISTRATION),
            (CeremonyPurpose.SIGN_IN, CeremonyPurpose.REGISTRATION),
        ],
    )
    async def test_another_purpose_is_refused_and_spends_it(
        self,
        db_session: AsyncSession,
        store: PasskeyChallengeStore,
        test_user: User,
        issued_for: CeremonyPurpose,
        taken_for: CeremonyPurpose,
    ) -> None:
        challenge_id, _ = await issued(db_session, store, purpose=issued_for, user_id=test_user.id)

        await refused(db_session, store, challenge_id, purpose=taken_for, user_id=test_user.id)

        await refused(db_session, store, challenge_id, purpose=issued_for, user_id=test_user.id)

    @pytest.mark.parametrize(
        ("issued_to", "taken_by"),
        [
            pytest.param("user", "other", id="another-account"),
            pytest.param(None, "user", id="none-then-account"),
            pytest.param("user", None, id="account-then-none"),
        ],
    )
    async def test_another_account_is_refused_and_spends_it(
        self,
        db_session: AsyncSession,
        store: PasskeyChallengeStore,
        accounts: dict[str | None, uuid.UUID | None],
        issued_to: str | None,
        taken_by: str | None,
    ) -> None:
        challenge_id, _ = await issued(db_session, store, user_id=accounts[issued_to])

        await refused(db_session, store, challenge_id, user_id=accounts[taken_by])

        await refused(db_session, store, challenge_id, user_id=accounts[issued_to])


class TestExpiry:
    async def test_lives_until_just_before_five_minutes(
        self, db_session: AsyncSession, store: PasskeyChallengeStore
    ) -> None:
        challenge_id, challenge = await issued(db_session, store)

        late = NOW + timedelta(seconds=CHALLENGE_SECONDS - 1, microseconds=999_999)
        assert await take(db_session, store, challenge_id, now=late) == challenge

    async def test_lives_at_299_seconds(
        self, db_session: AsyncSession, store: PasskeyChallengeStore
    ) -> None:
        challenge_id, challenge = await issued(db_session, store)

        assert await take(db_session, store, challenge_id, now=NOW + timedelta(seconds=299)) == (
            challenge
        )

    @pytest.mark.parametrize("seconds", [300, 301, 3600])
    async def test_is_refused_from_five_minutes_on(
        self, db_session: AsyncSession, store: PasskeyChallengeStore, seconds: int
    ) -> None:
        assert seconds >= CHALLENGE_SECONDS
        challenge_id, _ = await issued(db_session, store)

        await refused(db_session, store, challenge_id, now=NOW + timedelta(seconds=seconds))

    async def test_an_expired_take_spends_it(
        self, db_session: AsyncSession, store: PasskeyChallengeStore
    ) -> None:
        challenge_id, _ = await issued(db_session, store)
        await refused(db_session, store, challenge_id, now=NOW + timedelta(seconds=300))

        # Not that a clock can go back; but nothing of the challenge is left to find.
        await refused(db_session, store, challenge_id, now=NOW)

    async def test_the_issue_time_counts_not_the_wall_clock(
        self, db_session: AsyncSession, store: PasskeyChallengeStore
    ) -> None:
        past = datetime(2020, 1, 1, tzinfo=UTC)
        challenge_id, _ = await issued(db_session, store, now=past)

        await refused(db_session, store, challenge_id, now=past + timedelta(seconds=300))


class TestConcurrentTakes:
    async def test_of_two_takes_at_once_one_gets_it(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        store: PasskeyChallengeStore,
        test_user: User,
    ) -> None:
        challenge_id, challenge = await issued(db_session, store, user_id=test_user.id)

        async def take_in_own_session() -> bytes | AuthenticationError:
            async with session_factory() as session:
                try:
                    return await take(session, store, challenge_id, user_id=test_user.id)
                except AuthenticationError as error:
                    return error

        outcomes = await asyncio.gather(take_in_own_session(), take_in_own_session())

        assert outcomes.count(challenge) == 1
        refusals = [outcome for outcome in outcomes if isinstance(outcome, AuthenticationError)]
        assert [error.reason for error in refusals] == [ErrorReason.PASSKEY_CHALLENGE_INVALID]


class TestDatabaseStore:
    async def test_a_new_challenge_sweeps_out_the_expired(
        self, db_session: AsyncSession, session_factory: SessionFactory
    ) -> None:
        store = DatabaseChallengeStore()
        await issued(db_session, store, now=NOW)
        await issued(db_session, store, now=NOW)
        live_id, live = await issued(db_session, store, now=NOW + timedelta(seconds=100))
        assert await challenge_rows(db_session) == 3

        # Those of NOW expire at exactly NOW + 300 s; the one of NOW + 100 s lives on.
        newest_id, newest = await issued(db_session, store, now=NOW + timedelta(seconds=300))

        async with session_factory() as reader:
            assert await challenge_rows(reader) == 2
        later = NOW + timedelta(seconds=350)
        assert await take(db_session, store, live_id, now=later) == live
        assert await take(db_session, store, newest_id, now=later) == newest
        assert await challenge_rows(db_session) == 0

    async def test_keeps_the_hash_of_the_id_not_the_id(self, db_session: AsyncSession) -> None:
        challenge_id, challenge = await issued(db_session, DatabaseChallengeStore())

        row = (await db_session.execute(select(PasskeyChallenge))).scalar_one()
        assert row.id_hash == tokens.hash_opaque_token(challenge_id)
        assert row.challenge == challenge
        assert row.expires_at == NOW + timedelta(seconds=CHALLENGE_SECONDS)

    async def test_a_refused_take_stays_taken_when_the_request_rolls_back(
        self, db_session: AsyncSession, test_user: User
    ) -> None:
        store = DatabaseChallengeStore()
        challenge_id, _ = await issued(db_session, store, user_id=test_user.id)

        await refused(db_session, store, challenge_id, user_id=None)
        # What a request does with an error; the take committed before it raised.
        await db_session.rollback()

        assert await challenge_rows(db_session) == 0


class TestRedisStore:
    @pytest.fixture
    def settings_on_redis(self, settings: Settings, redis_url: str) -> Settings:
        return redis_settings(settings, redis_url)

    @pytest_asyncio.fixture
    async def redis_store(self, settings_on_redis: Settings) -> AsyncIterator[RedisChallengeStore]:
        redis_store = RedisChallengeStore(settings=settings_on_redis, availability=Availability())
        yield redis_store
        await redis_store.aclose()

    @pytest_asyncio.fixture
    async def redis(self, settings_on_redis: Settings) -> AsyncIterator["coredis.Redis[bytes]"]:
        """A client of its own, to look at what the store left in Redis."""
        pool = redis_connection_pool(settings_on_redis)
        yield coredis.Redis(connection_pool=pool)
        pool.disconnect()

    async def keys(self, redis: "coredis.Redis[bytes]", settings: Settings) -> list[str]:
        found = [key async for key in redis.scan_iter(f"{settings.rate_limit_key_prefix}:*")]
        return [key.decode() for key in found]

    async def test_keeps_each_challenge_under_a_key_that_expires(
        self,
        db_session: AsyncSession,
        redis_store: RedisChallengeStore,
        redis: "coredis.Redis[bytes]",
        settings_on_redis: Settings,
    ) -> None:
        # The wall clock: Redis counts the key's lifetime from when it receives it.
        challenge_id, _ = await issued(db_session, redis_store, now=datetime.now(UTC))

        (key,) = await self.keys(redis, settings_on_redis)
        assert 0 < await redis.ttl(key) <= CHALLENGE_SECONDS
        assert key.endswith(tokens.hash_opaque_token(challenge_id))
        assert challenge_id not in key
        assert challenge_id.encode() not in (await redis.get(key) or b"")

    async def test_the_key_lives_as_long_as_the_challenge_has_left(
        self,
        db_session: AsyncSession,
        redis_store: RedisChallengeStore,
        redis: "coredis.Redis[bytes]",
        settings_on_redis: Settings,
    ) -> None:
        # The lifetime goes by the time given, not the wall clock (NOW is years away).
        await issued(db_session, redis_store, now=NOW)

        (key,) = await self.keys(redis, settings_on_redis)
        assert CHALLENGE_SECONDS - 5 < await redis.ttl(key) <= CHALLENGE_SECONDS

    async def test_a_take_removes_the_key_even_when_refused(
        self,
        db_session: AsyncSession,
        redis_store: RedisChallengeStore,
        redis: "coredis.Redis[bytes]",
        settings_on_redis: Settings,
        test_user: User,
    ) -> None:
        challenge_id, _ = await issued(db_session, redis_store, user_id=test_user.id)

        await refused(db_session, redis_store, challenge_id, purpose=CeremonyPurpose.SIGN_IN)

        assert await self.keys(redis, settings_on_redis) == []

    async def test_another_worker_finishes_a_ceremony_one_began(
        self, db_session: AsyncSession, settings_on_redis: Settings, test_user: User
    ) -> None:
        began = RedisChallengeStore(settings=settings_on_redis, availability=Availability())
        finishes = RedisChallengeStore(settings=settings_on_redis, availability=Availability())
        try:
            challenge_id, challenge = await issued(db_session, began, user_id=test_user.id)

            assert await take(db_session, finishes, challenge_id, user_id=test_user.id) == (
                challenge
            )
            await refused(db_session, began, challenge_id, user_id=test_user.id)
        finally:
            await began.aclose()
            await finishes.aclose()

    async def test_the_store_the_settings_ask_for(
        self, settings: Settings, settings_on_redis: Settings
    ) -> None:
        on_database = challenges_service.passkey_challenge_store(
            settings, availability=Availability()
        )
        on_redis = challenges_service.passkey_challenge_store(
            settings_on_redis, availability=Availability()
        )
        try:
            assert isinstance(on_database, DatabaseChallengeStore)
            assert isinstance(on_redis, RedisChallengeStore)
        finally:
            await on_database.aclose()
            await on_redis.aclose()


class TestRedisDown:
    @pytest.fixture
    def availability(self) -> Availability:
        return Availability()

    @pytest_asyncio.fixture
    async def down_store(
        self, settings: Settings, availability: Availability
    ) -> AsyncIterator[RedisChallengeStore]:
        down = settings.model_copy(
            update={
                "redis_url": REFUSING_REDIS,
                "redis_connect_timeout_seconds": 0.2,
                "redis_timeout_seconds": 0.2,
            }
        )
        down_store = RedisChallengeStore(settings=down, availability=availability)
        yield down_store
        await down_store.aclose()

    async def test_issuing_answers_unavailable_and_notes_the_outage(
        self, db_session: AsyncSession, down_store: RedisChallengeStore, availability: Availability
    ) -> None:
        assert not availability.is_down(Dependency.REDIS)

        async with asyncio.timeout(10):
            with pytest.raises(ServiceUnavailableError) as caught:
                await challenges_service.issue_challenge(
                    session=db_session,
                    store=down_store,
                    purpose=CeremonyPurpose.SIGN_IN,
                    user_id=None,
                    now=NOW,
                )

        assert caught.value.reason is ErrorReason.PASSKEY_CHALLENGES_UNAVAILABLE
        assert caught.value.missing is Unavailable.PASSKEY_CHALLENGES
        assert caught.value.retry_after >= 1
        assert availability.is_down(Dependency.REDIS)

    async def test_taking_answers_unavailable_not_invalid(
        self, db_session: AsyncSession, down_store: RedisChallengeStore, availability: Availability
    ) -> None:
        # A client told its challenge is invalid would start over; this one should retry.
        async with asyncio.timeout(10):
            with pytest.raises(ServiceUnavailableError) as caught:
                await take(db_session, down_store, tokens.new_opaque_token())

        assert caught.value.reason is ErrorReason.PASSKEY_CHALLENGES_UNAVAILABLE
        assert availability.is_down(Dependency.REDIS)
