import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import SecretStr, ValidationError

from gql_app.config import Settings
from gql_app.errors import ServiceUnavailableError, Unavailable
from gql_app.main import create_app
from gql_app.security import passwords
from gql_app.security.passwords import (
    VerifyResult,
    _dummy_hash,
    hash_password,
    password_hasher,
    verify_against_dummy,
    verify_password,
)
from tests.conftest import TEST_SECRET, LogRecords
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, bcrypt_hashed, hashed

# What production hashes with; TestHashingCost chooses its cost itself.
pytestmark = pytest.mark.usefixtures("standard_password_hashing")

STANDARD_PARAMETERS = (
    f"$m={passwords.ARGON2_MEMORY_KIB},t={passwords.ARGON2_TIME_COST},p={passwords.ARGON2_LANES}$"
)
MINIMAL_PARAMETERS = "$m=8,t=1,p=1$"


class TestHashPassword:
    async def test_produces_an_argon2id_hash_that_verifies(self) -> None:
        stored = await hash_password(STRONG_PASSWORD)

        assert stored.startswith("$argon2id$")
        assert STRONG_PASSWORD not in stored
        assert password_hasher().verify(STRONG_PASSWORD, stored) is True

    async def test_salts_every_hash(self) -> None:
        first = await hash_password(STRONG_PASSWORD)
        second = await hash_password(STRONG_PASSWORD)

        assert first != second

    async def test_handles_non_ascii_passwords(self) -> None:
        stored = await hash_password("pässwörd-ünïcødé-🔑")

        assert (await verify_password("pässwörd-ünïcødé-🔑", stored)).valid is True
        assert (await verify_password("passwort-unicode-🔑", stored)).valid is False


class TestVerifyPassword:
    async def test_correct_password_against_a_current_hash_needs_no_update(self) -> None:
        result = await verify_password(USER_PASSWORD, hashed(USER_PASSWORD))

        assert result == VerifyResult(valid=True, updated_hash=None)

    async def test_wrong_password_is_invalid(self) -> None:
        result = await verify_password("WrongPassword123!", hashed(USER_PASSWORD))

        assert result == VerifyResult(valid=False, updated_hash=None)

    async def test_correct_password_against_bcrypt_comes_with_an_argon2id_replacement(
        self,
    ) -> None:
        result = await verify_password(USER_PASSWORD, bcrypt_hashed(USER_PASSWORD))

        assert result.valid is True
        assert result.updated_hash is not None
        assert result.updated_hash.startswith("$argon2id$")
        assert password_hasher().verify(USER_PASSWORD, result.updated_hash) is True

    async def test_wrong_password_against_bcrypt_is_invalid_without_replacement(self) -> None:
        result = await verify_password("WrongPassword123!", bcrypt_hashed(USER_PASSWORD))

        assert result == VerifyResult(valid=False, updated_hash=None)

    async def test_argon2_hash_with_outdated_parameters_is_rehashed(self) -> None:
        weaker = Argon2Hasher(time_cost=1, memory_cost=8 * 1024).hash(USER_PASSWORD)

        result = await verify_password(USER_PASSWORD, weaker)

        assert result.valid is True
        assert result.updated_hash is not None
        assert result.updated_hash != weaker
        assert password_hasher().current_hasher.check_needs_rehash(result.updated_hash) is False

    @pytest.mark.parametrize(
        "stored",
        ["", "plaintext-password", "$1$md5crypt$abcdefghijklmnop", "$argon2id$truncated"],
    )
    async def test_unrecognised_hash_is_invalid_rather_than_an_error(self, stored: str) -> None:
        assert await verify_password(USER_PASSWORD, stored) == VerifyResult(valid=False)

    # Regression: bcrypt 5 raises ValueError for passwords over 72 bytes.
    async def test_password_over_72_bytes_against_bcrypt_is_invalid_rather_than_an_error(
        self,
    ) -> None:
        result = await verify_password("x" * 100, bcrypt_hashed(USER_PASSWORD))

        assert result.valid is False


class TestVerifyAgainstDummy:
    def test_dummy_hash_is_a_current_argon2id_hash_made_once(self) -> None:
        assert _dummy_hash().startswith("$argon2id$")
        assert _dummy_hash() == _dummy_hash()
        assert password_hasher().current_hasher.check_needs_rehash(_dummy_hash()) is False

    async def test_accepts_any_password_without_raising(self) -> None:
        for password in ("", USER_PASSWORD, "x" * 128):
            assert await verify_against_dummy(password) is None


class TestHashingPriority:
    def test_hashing_threads_run_below_requests(self) -> None:
        with ThreadPoolExecutor(1, initializer=passwords._lower_priority) as pool:
            niceness = pool.submit(_own_niceness).result()

        assert niceness == passwords.HASHING_NICENESS

    def test_a_lower_priority_already_set_is_kept(self) -> None:
        def from_nice_15() -> int:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 15)
            passwords._lower_priority()
            return _own_niceness()

        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(from_nice_15).result() == 15

    def test_a_refused_priority_change_leaves_hashing_working(
        self, monkeypatch: pytest.MonkeyPatch, app_log: LogRecords
    ) -> None:
        def refuse(*_: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(os, "setpriority", refuse)
        with ThreadPoolExecutor(1, initializer=passwords._lower_priority) as pool:
            stored = pool.submit(passwords.password_hasher().hash, "x" * 12).result()

        assert stored.startswith("$argon2id$")
        assert ["normal priority" in record.getMessage() for record in app_log.records] == [True]


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class TestHashingQueue:
    """Checks wait for a hashing thread in a bounded queue; beyond it they are refused."""

    @staticmethod
    def held(release: threading.Event, started: threading.Event) -> str:
        started.set()
        release.wait(timeout=30)
        return "done"

    async def test_beyond_the_queue_a_check_is_refused_at_once(self) -> None:
        queue = passwords.HashingQueue(threads=1, queue_size=1)
        release, started = threading.Event(), threading.Event()
        running = asyncio.ensure_future(queue.run(self.held, release, started))
        await asyncio.to_thread(started.wait, 30)
        waiting = asyncio.ensure_future(queue.run(str.upper, "waited"))
        await asyncio.sleep(0)  # the waiting check takes its place in the queue

        with pytest.raises(ServiceUnavailableError) as refused:
            await queue.run(str.upper, "refused")
        release.set()

        assert (refused.value.missing, refused.value.retry_after) == (
            Unavailable.PASSWORD_HASHING,
            passwords.BUSY_RETRY_AFTER_SECONDS,
        )
        assert await running == "done"
        assert await waiting == "WAITED"

    async def test_places_free_up_as_checks_finish(self) -> None:
        queue = passwords.HashingQueue(threads=1, queue_size=0)

        results = [await queue.run(str.upper, word) for word in ("one", "two", "three")]

        assert results == ["ONE", "TWO", "THREE"]

    async def test_a_check_whose_caller_gave_up_holds_its_place_until_it_ends(self) -> None:
        queue = passwords.HashingQueue(threads=1, queue_size=0)
        release, started = threading.Event(), threading.Event()
        abandoned = asyncio.ensure_future(queue.run(self.held, release, started))
        await asyncio.to_thread(started.wait, 30)
        abandoned.cancel()

        with pytest.raises(ServiceUnavailableError):
            await queue.run(str.upper, "too soon")
        release.set()
        await asyncio.to_thread(queue._pool.submit(str, "").result)

        assert await queue.run(str.upper, "later") == "LATER"

    async def test_a_failing_check_frees_its_place(self) -> None:
        queue = passwords.HashingQueue(threads=1, queue_size=0)

        with pytest.raises(ValueError, match="invalid literal"):
            await queue.run(int, "not a number")

        assert await queue.run(str.upper, "next") == "NEXT"

    def test_the_setting_sizes_the_process_queue(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(passwords.hashing, "queue_size", passwords.hashing.queue_size)

        passwords.configure_hashing_queue(queue_size=3)

        assert passwords.hashing.queue_size == 3


class TestHashingCost:
    """PASSWORD_HASHING_COST: production's parameters, or the least argon2 takes for tests."""

    async def test_the_standard_cost_is_production_s_argon2id(self) -> None:
        stored = await hash_password(STRONG_PASSWORD)

        assert STANDARD_PARAMETERS in stored

    async def test_the_minimal_cost_hashes_with_the_least_parameters(self) -> None:
        passwords.configure_password_hashing(cost="minimal")

        stored = await hash_password(STRONG_PASSWORD)

        assert stored.startswith("$argon2id$")
        assert MINIMAL_PARAMETERS in stored
        assert await verify_password(STRONG_PASSWORD, stored) == VerifyResult(valid=True)

    async def test_a_minimal_hash_verifies_at_the_standard_cost_and_is_replaced(self) -> None:
        passwords.configure_password_hashing(cost="minimal")
        cheap = await hash_password(USER_PASSWORD)
        passwords.configure_password_hashing(cost="standard")

        result = await verify_password(USER_PASSWORD, cheap)

        assert result.valid is True
        assert result.updated_hash is not None
        assert STANDARD_PARAMETERS in result.updated_hash

    async def test_a_standard_hash_verifies_at_the_minimal_cost(self) -> None:
        standard = hashed(USER_PASSWORD)
        passwords.configure_password_hashing(cost="minimal")

        result = await verify_password(USER_PASSWORD, standard)

        assert result.valid is True
        assert result.updated_hash is not None
        assert MINIMAL_PARAMETERS in result.updated_hash

    def test_the_dummy_hash_is_made_at_the_configured_cost(self) -> None:
        passwords.configure_password_hashing(cost="minimal")

        assert MINIMAL_PARAMETERS in _dummy_hash()
        assert password_hasher().current_hasher.check_needs_rehash(_dummy_hash()) is False

    async def test_the_app_hashes_at_its_settings_cost(self, settings: Settings) -> None:
        settings.password_hashing_cost = "minimal"
        app = create_app(settings)
        await app.state.engine.dispose()

        assert MINIMAL_PARAMETERS in await hash_password(STRONG_PASSWORD)

    def test_production_refuses_the_minimal_cost(self) -> None:
        with pytest.raises(ValidationError, match="PASSWORD_HASHING_COST must be standard"):
            Settings(
                environment="production",
                secret_key=SecretStr(TEST_SECRET),
                password_hashing_cost="minimal",
            )

    def test_production_takes_the_standard_cost(self) -> None:
        settings = Settings(
            environment="production",
            secret_key=SecretStr(TEST_SECRET),
            password_hashing_cost="standard",
        )

        assert settings.password_hashing_cost == "standard"
