"""Business-logic rate limits through the API, on both storages (memory and Redis).

Every test here runs twice, once per storage, with small limits and a key prefix of its
own. Time is frozen (freezegun moves the clock the limiter reads) so windows can elapse
without sleeping.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import Any

import pyotp
import pytest
from freezegun import freeze_time
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.models import User
from tests.conftest import TEST_SECRET
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient, GraphQLResponse
from tests.operations import MY_SESSIONS, REFRESH_TOKEN, REQUEST_PASSWORD_RESET, VERIFY_EMAIL
from tests.services.test_mfa_service import enrolled

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
NOBODY = "nobody@example.com"
WRONG_PASSWORD = "not-the-password-at-all"

LOGINS_PER_IP = 10
FAILURES_PER_15_MINUTES = 3
FAILURES_PER_HOUR = 5
REGISTRATIONS = 2
RESETS_PER_IP = 4
RESETS_PER_EMAIL = 2
REFRESHES = 3
VERIFICATIONS = 3

REGISTER = "mutation Register($input: RegisterInput!) { register(input: $input) { id } }"


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@pytest.fixture
def settings(rate_limit_storage: dict[str, str | None]) -> Settings:
    return Settings(
        environment="test",
        secret_key=SecretStr(TEST_SECRET),
        database_url="sqlite+aiosqlite:///:memory:",
        migrate_on_start=False,
        email_backend="memory",
        first_superuser_email=None,
        first_superuser_password=None,
        rate_limit_enabled=True,
        login_attempts_per_ip=f"{LOGINS_PER_IP}/minute",
        login_attempts_per_account=f"{FAILURES_PER_15_MINUTES}/15minutes;{FAILURES_PER_HOUR}/hour",
        registrations_per_ip=f"{REGISTRATIONS}/hour",
        password_resets_per_ip=f"{RESETS_PER_IP}/hour",
        password_resets_per_email=f"{RESETS_PER_EMAIL}/hour",
        refreshes_per_ip=f"{REFRESHES}/minute",
        email_verifications_per_ip=f"{VERIFICATIONS}/minute",
        # One document with 100 aliased logins must get as far as the resolvers.
        graphql_max_aliases=100,
        graphql_max_tokens=5000,
        **rate_limit_storage,  # type: ignore[arg-type]
    )


async def attempt_login(
    gql: GraphQLClient,
    email: str,
    password: str = WRONG_PASSWORD,
    headers: dict[str, str] | None = None,
) -> GraphQLResponse:
    return await gql(LOGIN, {"input": {"email": email, "password": password}}, headers=headers)


def rate_limited(response: GraphQLResponse) -> dict[str, Any]:
    error = response.single_error("RATE_LIMITED")
    retry_after = error["extensions"]["retryAfter"]
    assert isinstance(retry_after, int)
    assert retry_after >= 1
    assert response.data is None
    return error


async def fail_logins(gql: GraphQLClient, email: str, times: int) -> None:
    for _ in range(times):
        response = await attempt_login(gql, email)
        response.single_error("UNAUTHENTICATED")


class TestLoginPerIp:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # Every attempt also counts against the account; keep that limit out of the way here.
        return settings.model_copy(update={"login_attempts_per_account": "1000/hour"})

    async def test_every_attempt_counts_and_the_next_is_refused(self, gql: GraphQLClient) -> None:
        with freeze_time(NOW):
            for number in range(LOGINS_PER_IP):
                response = await attempt_login(gql, f"user{number}@example.com")
                response.single_error("UNAUTHENTICATED")
            error = rate_limited(await attempt_login(gql, "another@example.com"))
        assert error["extensions"]["retryAfter"] == 61
        assert error["path"] == ["login"]

    async def test_malformed_attempts_count_too(self, gql: GraphQLClient) -> None:
        with freeze_time(NOW):
            for _ in range(LOGINS_PER_IP):
                (await attempt_login(gql, "not-an-email")).single_error("BAD_USER_INPUT")
            rate_limited(await attempt_login(gql, "not-an-email"))

    async def test_the_limit_decays(self, gql: GraphQLClient, test_user: User) -> None:
        with freeze_time(at(0)):
            for number in range(LOGINS_PER_IP):
                await attempt_login(gql, f"user{number}@example.com")
            retry_after = rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))[
                "extensions"
            ]["retryAfter"]
        with freeze_time(at(retry_after - 2)):
            rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))
        with freeze_time(at(retry_after)):
            response = await attempt_login(gql, test_user.email, USER_PASSWORD)
        assert response.errors == [], response.body

    async def test_a_hundred_aliased_logins_in_one_document_count_a_hundred_times(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        # Correct credentials, so that every field runs until the limit stops one (a failed
        # non-null mutation field ends the document).
        fields = " ".join(
            f'a{n}: login(input: {{email: "{test_user.email}", password: "{USER_PASSWORD}"}})'
            " { tokenType }"
            for n in range(100)
        )
        with freeze_time(NOW):
            response = await gql(f"mutation {{ {fields} }}")
            error = rate_limited(response)
            assert error["path"] == [f"a{LOGINS_PER_IP}"]
            # The next document finds the budget spent as well.
            rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))

    async def test_aliased_failures_count_per_field(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        fields = " ".join(
            f'a{n}: login(input: {{email: "{test_user.email}", password: "{USER_PASSWORD}"}})'
            " { tokenType }"
            for n in range(LOGINS_PER_IP - 1)
        )
        with freeze_time(NOW):
            response = await gql(f"mutation {{ {fields} }}")
            assert response.errors == [], response.body
            (await attempt_login(gql, NOBODY)).single_error("UNAUTHENTICATED")
            rate_limited(await attempt_login(gql, NOBODY))


class TestLoginPerAccount:
    async def test_a_locked_out_address_answers_alike_whether_or_not_it_has_an_account(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        answers = []
        with freeze_time(NOW):
            for email in (test_user.email, NOBODY):
                await fail_logins(gql, email, FAILURES_PER_15_MINUTES)
                response = await attempt_login(gql, email)
                rate_limited(response)
                answers.append(response.body)
        assert answers[0] == answers[1]
        assert answers[0]["errors"][0]["extensions"] == {
            "code": "RATE_LIMITED",
            "reason": "LOGIN_LOCKED",
            "retryAfter": 901,
        }

    async def test_a_correct_password_is_refused_during_a_lockout(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        with freeze_time(at(0)):
            await fail_logins(gql, test_user.email, FAILURES_PER_15_MINUTES)
        with freeze_time(at(60)):
            error = rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))
        assert error["extensions"]["retryAfter"] == 15 * 60 - 60 + 1
        with freeze_time(at(15 * 60 + 1)):
            response = await attempt_login(gql, test_user.email, USER_PASSWORD)
        assert response.errors == [], response.body

    async def test_the_address_is_normalised_before_counting(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        with freeze_time(NOW):
            for spelling in ("TestUser@Example.com", " testuser@EXAMPLE.COM ", test_user.email):
                (await attempt_login(gql, spelling)).single_error("UNAUTHENTICATED")
            rate_limited(await attempt_login(gql, test_user.email.upper(), USER_PASSWORD))

    async def test_successful_logins_do_not_count_failed_ones_do(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        with freeze_time(NOW):
            for _ in range(FAILURES_PER_HOUR + 1):
                response = await attempt_login(gql, test_user.email, USER_PASSWORD)
                assert response.errors == [], response.body
            await fail_logins(gql, test_user.email, FAILURES_PER_15_MINUTES)
            rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))

    async def test_a_success_gives_back_its_own_place_and_keeps_the_failures(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        with freeze_time(NOW):
            await fail_logins(gql, test_user.email, FAILURES_PER_15_MINUTES - 1)
            response = await attempt_login(gql, test_user.email, USER_PASSWORD)
            assert response.errors == [], response.body
            await fail_logins(gql, test_user.email, 1)
            rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))

    async def test_an_attempt_refused_as_input_still_counts(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        with freeze_time(NOW):
            for _ in range(FAILURES_PER_15_MINUTES):
                (await attempt_login(gql, test_user.email, "")).single_error("BAD_USER_INPUT")
            rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))

    async def test_a_disabled_account_with_its_password_does_not_lock_itself_out(
        self, gql: GraphQLClient, db_session: AsyncSession
    ) -> None:
        user = await create_user(db_session, email="gone@example.com", is_active=False)
        with freeze_time(NOW):
            for _ in range(FAILURES_PER_HOUR + 1):
                (await attempt_login(gql, user.email, USER_PASSWORD)).single_error("FORBIDDEN")
            # A wrong password is a failure like any other, disabled account or not.
            await fail_logins(gql, user.email, FAILURES_PER_15_MINUTES)
            rate_limited(await attempt_login(gql, user.email, USER_PASSWORD))

    async def test_parallel_guesses_cannot_pass_the_check_together(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        with freeze_time(NOW):
            answers = await asyncio.gather(
                *(attempt_login(gql, test_user.email) for _ in range(FAILURES_PER_15_MINUTES + 5))
            )

        codes = sorted(code for answer in answers for code in answer.error_codes)
        assert codes.count("UNAUTHENTICATED") == FAILURES_PER_15_MINUTES
        assert codes.count("RATE_LIMITED") == 5

    async def test_other_accounts_are_unaffected(self, gql: GraphQLClient, test_user: User) -> None:
        with freeze_time(NOW):
            await fail_logins(gql, NOBODY, FAILURES_PER_15_MINUTES)
            rate_limited(await attempt_login(gql, NOBODY))
            response = await attempt_login(gql, test_user.email, USER_PASSWORD)
        assert response.errors == [], response.body

    async def test_the_hourly_cap_holds_across_short_windows(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        with freeze_time(at(0)):
            await fail_logins(gql, test_user.email, FAILURES_PER_15_MINUTES)
        with freeze_time(at(16 * 60)):
            await fail_logins(gql, test_user.email, FAILURES_PER_HOUR - FAILURES_PER_15_MINUTES)
        with freeze_time(at(32 * 60)):
            # The 15-minute window has room again; the hour has seen its five failures.
            error = rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))
        assert error["extensions"]["retryAfter"] == 3600 - 32 * 60 + 1
        with freeze_time(at(3600 + 1)):
            response = await attempt_login(gql, test_user.email, USER_PASSWORD)
        assert response.errors == [], response.body


class TestLoginPerAccountInParallel:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # Only the account's limit may refuse here.
        return settings.model_copy(update={"login_attempts_per_ip": "1000/minute"})

    async def test_parallel_right_passwords_leave_no_room_for_extra_guesses(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        # A right password holds a place while it is checked and gives it back after:
        # however the attempts interleave, the wrong ones never get more than the allowance.
        attempts = [USER_PASSWORD, WRONG_PASSWORD] * (FAILURES_PER_15_MINUTES + 2)
        with freeze_time(NOW):
            answers = await asyncio.gather(
                *(attempt_login(gql, test_user.email, password) for password in attempts)
            )
            failures = sum(answer.error_codes.count("UNAUTHENTICATED") for answer in answers)
            assert failures <= FAILURES_PER_15_MINUTES
            # Only the failures stayed counted: what is left of the allowance is the rest.
            await fail_logins(gql, test_user.email, FAILURES_PER_15_MINUTES - failures)
            rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))


class TestLoginPerAccountUnverified:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"require_verified_email": True})

    async def test_an_unverified_address_with_its_password_does_not_lock_itself_out(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        with freeze_time(NOW):
            for _ in range(FAILURES_PER_HOUR + 1):
                response = await attempt_login(gql, test_user.email, USER_PASSWORD)
                response.single_error("FORBIDDEN")
            await fail_logins(gql, test_user.email, FAILURES_PER_15_MINUTES)
            rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))


COMPLETE_LOGIN = """
mutation ($challenge: String!, $code: String!) {
  completeLogin(input: {challenge: $challenge, factor: {totpCode: $code}}) { accessToken }
}
"""


class TestLoginPerAccountWithASecondFactor:
    async def test_the_right_password_does_not_lock_itself_out(
        self, gql: GraphQLClient, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        with freeze_time(NOW):
            await enrolled(db_session, settings, test_user)
            for _ in range(FAILURES_PER_HOUR + 1):
                response = await attempt_login(gql, test_user.email, USER_PASSWORD)
                response.single_error("MFA_REQUIRED")

    async def test_wrong_second_factors_count_toward_the_lockout(
        self, gql: GraphQLClient, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        with freeze_time(NOW):
            secret, _ = await enrolled(db_session, settings, test_user)
            right = pyotp.TOTP(secret).now()
            wrong = "000000" if right != "000000" else "111111"
            error = (await attempt_login(gql, test_user.email, USER_PASSWORD)).single_error(
                "MFA_REQUIRED"
            )
            challenge = error["extensions"]["challenge"]
            for _ in range(FAILURES_PER_15_MINUTES):
                answer = await gql(COMPLETE_LOGIN, {"challenge": challenge, "code": wrong})
                assert answer.single_error("UNAUTHENTICATED")["extensions"]["reason"] == (
                    "INVALID_MFA_CODE"
                )

            rate_limited(await attempt_login(gql, test_user.email, USER_PASSWORD))

    async def test_a_locked_account_checks_no_factor_not_even_the_right_one(
        self, gql: GraphQLClient, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        with freeze_time(NOW):
            secret, _ = await enrolled(db_session, settings, test_user)
        with freeze_time(NOW + timedelta(seconds=30)):
            # A challenge got before the lockout, with the password.
            error = (await attempt_login(gql, test_user.email, USER_PASSWORD)).single_error(
                "MFA_REQUIRED"
            )
            await fail_logins(gql, test_user.email, FAILURES_PER_15_MINUTES)
            right = pyotp.TOTP(secret).now()

            answer = await gql(
                COMPLETE_LOGIN, {"challenge": error["extensions"]["challenge"], "code": right}
            )

        assert rate_limited(answer)["extensions"]["reason"] == "LOGIN_LOCKED"

    async def test_reauthenticating_is_locked_out_like_signing_in(
        self, gql: GraphQLClient, db_session: AsyncSession, test_user: User
    ) -> None:
        with freeze_time(NOW):
            token = (await attempt_login(gql, test_user.email, USER_PASSWORD)).data["login"][
                "accessToken"
            ]
            reauthenticate = "mutation ($p: String!) { reauthenticate(input: {password: $p}) }"
            for _ in range(FAILURES_PER_15_MINUTES):
                wrong = await gql(reauthenticate, {"p": WRONG_PASSWORD}, token=token)
                wrong.single_error("UNAUTHENTICATED")

            right = await gql(reauthenticate, {"p": USER_PASSWORD}, token=token)

        assert rate_limited(right)["extensions"]["reason"] == "LOGIN_LOCKED"


class TestOtherOperations:
    async def test_register(self, gql: GraphQLClient) -> None:
        with freeze_time(NOW):
            for number in range(REGISTRATIONS):
                response = await gql(
                    REGISTER,
                    {"input": {"email": f"new{number}@example.com", "password": STRONG_PASSWORD}},
                )
                assert response.errors == [], response.body
            error = rate_limited(
                await gql(
                    REGISTER, {"input": {"email": "new9@example.com", "password": STRONG_PASSWORD}}
                )
            )
        assert error["extensions"]["retryAfter"] == 3601

    async def test_password_reset_per_email(self, gql: GraphQLClient) -> None:
        with freeze_time(NOW):
            for _ in range(RESETS_PER_EMAIL):
                response = await gql(REQUEST_PASSWORD_RESET, {"email": NOBODY})
                assert response.data == {"requestPasswordReset": True}
            rate_limited(await gql(REQUEST_PASSWORD_RESET, {"email": NOBODY.upper()}))
            response = await gql(REQUEST_PASSWORD_RESET, {"email": "somebody@example.com"})
        assert response.data == {"requestPasswordReset": True}

    async def test_password_reset_per_ip(self, gql: GraphQLClient) -> None:
        with freeze_time(NOW):
            for number in range(RESETS_PER_IP):
                response = await gql(REQUEST_PASSWORD_RESET, {"email": f"u{number}@example.com"})
                assert response.data == {"requestPasswordReset": True}
            rate_limited(await gql(REQUEST_PASSWORD_RESET, {"email": "fresh@example.com"}))

    async def test_refresh_token(self, gql: GraphQLClient) -> None:
        with freeze_time(NOW):
            for _ in range(REFRESHES):
                response = await gql(REFRESH_TOKEN, {"refreshToken": "made-up"})
                response.single_error("UNAUTHENTICATED")
            rate_limited(await gql(REFRESH_TOKEN, {"refreshToken": "made-up"}))

    async def test_verify_email(self, gql: GraphQLClient) -> None:
        with freeze_time(NOW):
            for _ in range(VERIFICATIONS):
                response = await gql(VERIFY_EMAIL, {"token": "made-up"})
                response.single_error("BAD_USER_INPUT")
            rate_limited(await gql(VERIFY_EMAIL, {"token": "made-up"}))


class TestForwardedFor:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # The test client connects from 127.0.0.1: make it a trusted proxy.
        return settings.model_copy(update={"trusted_proxies": [ip_network("127.0.0.1")]})

    async def test_each_forwarded_client_has_its_own_budget(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        first = {"X-Forwarded-For": "198.51.100.1"}
        second = {"X-Forwarded-For": "198.51.100.2"}
        with freeze_time(NOW):
            for number in range(LOGINS_PER_IP):
                await attempt_login(gql, f"user{number}@example.com", headers=first)
            rate_limited(await attempt_login(gql, NOBODY, headers=first))
            # What a client writes to the left of the proxy's entry changes nothing.
            spoofed = {"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}
            rate_limited(await attempt_login(gql, NOBODY, headers=spoofed))
            response = await attempt_login(gql, test_user.email, USER_PASSWORD, headers=second)
            assert response.errors == [], response.body
            token = response.data["login"]["accessToken"]
            sessions = await gql(MY_SESSIONS, token=token)
        assert sessions.data["mySessions"][0]["ipAddress"] == "198.51.100.2"


class TestUntrustedForwardedFor:
    async def test_the_header_is_ignored_without_trusted_proxies(self, gql: GraphQLClient) -> None:
        with freeze_time(NOW):
            for number in range(LOGINS_PER_IP):
                headers = {"X-Forwarded-For": f"198.51.100.{number}"}
                await attempt_login(gql, f"user{number}@example.com", headers=headers)
            rate_limited(
                await attempt_login(gql, NOBODY, headers={"X-Forwarded-For": "198.51.100.200"})
            )
