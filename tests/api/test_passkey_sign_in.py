"""Signing in with a passkey through GraphQL: alone, as the second step after a password,
and to prove oneself again; every way an answer can fail to prove it."""

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.models import AuthSession, Passkey, PasskeyChallenge, User
from tests.auth_factories import signed_claims
from tests.factories import USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient, GraphQLResponse, login_tokens
from tests.operations import AUTH_PAYLOAD_FIELDS, ME
from tests.passkey_flows import (
    RP_ID,
    START_PASSKEY_SIGN_IN,
    add_passkey,
    authenticator,
    data_of,
    finish_sign_in,
    passkey_sign_in,
    reason_of,
    start_registration,
    start_sign_in,
)
from tests.webauthn_authenticator import SoftwareAuthenticator, b64url, from_b64url

T0 = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
STEP = timedelta(seconds=30)

COMPLETE_LOGIN = f"""
mutation CompleteLogin($input: CompleteLoginInput!) {{
  completeLogin(input: $input) {{ {AUTH_PAYLOAD_FIELDS} }}
}}
"""
REAUTHENTICATE = (
    "mutation Reauthenticate($input: ReauthenticateInput!) { reauthenticate(input: $input) }"
)
MY_SESSIONS = "query { mySessions { current authMethods } }"
MY_MFA = "query { myMfa { enabled methods } }"
DISABLE_TOTP = "mutation { disableTotp }"


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FrozenDateTimeFactory]:
    """Time stands still at T0 until the test moves it (see tests/api/test_mfa.py)."""
    with freeze_time(T0, real_asyncio=True) as frozen:
        yield frozen


pytestmark = pytest.mark.usefixtures("clock")


async def token_of(gql: GraphQLClient, user: User) -> str:
    return (await login_tokens(gql, email=user.email, password=USER_PASSWORD)).access


async def with_passkey(
    gql: GraphQLClient, user: User, device: SoftwareAuthenticator | None = None
) -> SoftwareAuthenticator:
    device = device or authenticator()
    await add_passkey(gql, await token_of(gql, user), device)
    return device


async def turn_on_totp(gql: GraphQLClient, user: User, clock: FrozenDateTimeFactory) -> pyotp.TOTP:
    """TOTP on (from a fresh password sign-in), and the clock one step on: confirmation spent
    the code of this step."""
    token = await token_of(gql, user)
    enrollment = data_of(
        await gql("mutation { startTotpEnrollment { secret } }", token=token),
        "startTotpEnrollment",
    )
    totp = pyotp.TOTP(enrollment["secret"])
    confirmed = await gql(
        "mutation C($code: String!) { confirmTotpEnrollment(code: $code) }",
        {"code": totp.now()},
        token=token,
    )
    data_of(confirmed, "confirmTotpEnrollment")
    clock.tick(STEP)
    return totp


async def auth_methods(gql: GraphQLClient, token: str) -> list[str]:
    sessions = data_of(await gql(MY_SESSIONS, token=token), "mySessions")
    current: list[str] = next(s["authMethods"] for s in sessions if s["current"])
    return current


async def sessions(db_session: AsyncSession) -> int:
    return (await db_session.execute(select(func.count()).select_from(AuthSession))).scalar_one()


def signed_in(response: GraphQLResponse, field: str = "finishPasskeySignIn") -> str:
    token: str = data_of(response, field)["accessToken"]
    return token


class TestSignInOptions:
    async def test_name_no_account_and_need_nothing(self, gql: GraphQLClient) -> None:
        ceremony = await start_sign_in(gql)

        options = ceremony["options"]
        assert options["rpId"] == RP_ID
        assert options["allowCredentials"] == []
        assert options["userVerification"] == "preferred"
        assert len(from_b64url(options["challenge"])) == 32
        assert options["timeout"] == 300_000

    async def test_are_alike_whatever_accounts_exist(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        before = (await start_sign_in(gql))["options"]
        await with_passkey(gql, test_user)

        after = (await start_sign_in(gql))["options"]

        assert {**before, "challenge": None} == {**after, "challenge": None}


class TestAPasskeyAlone:
    async def test_signs_in_as_two_factors_when_the_authenticator_verified_the_user(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession, settings: Settings
    ) -> None:
        device = await with_passkey(gql, test_user)

        response = await passkey_sign_in(gql, device)

        payload = data_of(response, "finishPasskeySignIn")
        assert payload["user"]["email"] == test_user.email
        token = payload["accessToken"]
        assert data_of(await gql(ME, token=token), "me")["email"] == test_user.email
        assert (await signed_claims(token, db_session, settings))["amr"] == ["hwk", "user"]
        assert await auth_methods(gql, token) == ["hwk", "user"]

    async def test_records_the_use_and_the_counter(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        device = await with_passkey(gql, test_user)

        signed_in(await passkey_sign_in(gql, device))

        stored = (await db_session.execute(select(Passkey))).scalar_one()
        await db_session.refresh(stored)
        assert (stored.sign_count, stored.last_used_at) == (1, T0)

    async def test_is_one_factor_without_user_verification(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession, settings: Settings
    ) -> None:
        device = await with_passkey(gql, test_user, authenticator(user_verifying=False))

        token = signed_in(await passkey_sign_in(gql, device))

        assert (await signed_claims(token, db_session, settings))["amr"] == ["hwk"]

    async def test_without_user_verification_asks_an_account_with_totp_for_it(
        self,
        gql: GraphQLClient,
        test_user: User,
        clock: FrozenDateTimeFactory,
        db_session: AsyncSession,
        settings: Settings,
    ) -> None:
        device = await with_passkey(gql, test_user, authenticator(user_verifying=False))
        totp = await turn_on_totp(gql, test_user, clock)
        before = await sessions(db_session)

        response = await passkey_sign_in(gql, device)

        required = response.single_error("MFA_REQUIRED")["extensions"]
        # The passkey was the first step; it is not offered again as the second.
        assert required["methods"] == ["TOTP", "RECOVERY_CODE"]
        assert "passkeyOptions" not in required
        assert await sessions(db_session) == before
        completed = await gql(
            COMPLETE_LOGIN,
            {"input": {"challenge": required["challenge"], "factor": {"totpCode": totp.now()}}},
        )
        token = signed_in(completed, "completeLogin")
        claims = await signed_claims(token, db_session, settings)
        assert claims["amr"] == ["hwk", "otp", "mfa"]

    async def test_with_user_verification_needs_no_totp(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        device = await with_passkey(gql, test_user)
        await turn_on_totp(gql, test_user, clock)

        token = signed_in(await passkey_sign_in(gql, device))

        # Two factors in one: enough for what asks for a second factor.
        assert data_of(await gql(DISABLE_TOTP, token=token), "disableTotp") is True

    async def test_refuses_a_disabled_account_after_the_proof(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        device = await with_passkey(gql, test_user)
        test_user.is_active = False
        await db_session.commit()

        response = await passkey_sign_in(gql, device)

        assert reason_of(response, "FORBIDDEN") == "ACCOUNT_DISABLED"


class TestRefusals:
    async def test_a_passkey_no_account_has(self, gql: GraphQLClient, test_user: User) -> None:
        stranger = authenticator()
        stranger.create((await start_registration(gql, await token_of(gql, test_user)))["options"])

        response = await passkey_sign_in(gql, stranger)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_NOT_RECOGNISED"

    async def test_an_assertion_replayed_with_its_challenge(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = await with_passkey(gql, test_user)
        ceremony = await start_sign_in(gql)
        credential = device.get(ceremony["options"])
        signed_in(await finish_sign_in(gql, ceremony["challengeId"], credential))

        replayed = await finish_sign_in(gql, ceremony["challengeId"], credential)

        assert reason_of(replayed, "UNAUTHENTICATED") == "PASSKEY_CHALLENGE_INVALID"

    async def test_an_assertion_replayed_under_a_new_challenge(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = await with_passkey(gql, test_user)
        first = await start_sign_in(gql)
        credential = device.get(first["options"])
        signed_in(await finish_sign_in(gql, first["challengeId"], credential))
        second = await start_sign_in(gql)

        replayed = await finish_sign_in(gql, second["challengeId"], credential)

        assert reason_of(replayed, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"

    async def test_one_challenge_finished_twice_at_once_signs_in_once(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        device = await with_passkey(gql, test_user)
        ceremony = await start_sign_in(gql)
        credential = device.get(ceremony["options"])
        before = await sessions(db_session)

        answers = await asyncio.gather(
            finish_sign_in(gql, ceremony["challengeId"], credential),
            finish_sign_in(gql, ceremony["challengeId"], credential),
        )

        assert sorted(bool(answer.errors) for answer in answers) == [False, True]
        assert await sessions(db_session) == before + 1

    @pytest.mark.parametrize(
        "assertion",
        [{"origin": "https://evil.example"}, {"rp_id": "evil.example"}],
        ids=["origin", "rp-id"],
    )
    async def test_an_assertion_made_elsewhere(
        self, gql: GraphQLClient, test_user: User, assertion: dict[str, Any]
    ) -> None:
        device = await with_passkey(gql, test_user)

        response = await passkey_sign_in(gql, device, **assertion)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"

    async def test_a_counter_that_goes_backwards_is_logged_as_a_possible_clone(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        device = await with_passkey(gql, test_user)
        for _ in range(3):
            signed_in(await passkey_sign_in(gql, device))

        with caplog.at_level(logging.WARNING, logger="gql_app.services.passkey_sign_in"):
            response = await passkey_sign_in(gql, device, sign_count=2)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"
        assert "may have been cloned" in caplog.text
        assert "from 3 to 2" in caplog.text
        stored = (await db_session.execute(select(Passkey))).scalar_one()
        await db_session.refresh(stored)
        assert stored.sign_count == 3

    async def test_a_counter_kept_at_zero_is_fine(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = await with_passkey(gql, test_user, authenticator(counter_step=0))

        for _ in range(2):
            signed_in(await passkey_sign_in(gql, device))

    async def test_a_challenge_past_its_five_minutes(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        device = await with_passkey(gql, test_user)
        ceremony = await start_sign_in(gql)
        credential = device.get(ceremony["options"])
        clock.tick(timedelta(seconds=300))

        response = await finish_sign_in(gql, ceremony["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_CHALLENGE_INVALID"

    async def test_a_registration_challenge(self, gql: GraphQLClient, test_user: User) -> None:
        device = await with_passkey(gql, test_user)
        registration = await start_registration(gql, await token_of(gql, test_user))
        credential = device.get((await start_sign_in(gql))["options"])

        response = await finish_sign_in(gql, registration["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_CHALLENGE_INVALID"

    async def test_an_assertion_whose_user_handle_names_another_account(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        device = await with_passkey(gql, test_user)
        other = await create_user(db_session, email="other@example.com", password=USER_PASSWORD)
        device.credentials[0].user_handle = other.id.bytes

        response = await passkey_sign_in(gql, device)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"

    async def test_an_assertion_that_names_no_account(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = await with_passkey(gql, test_user)
        ceremony = await start_sign_in(gql)
        credential = device.get(ceremony["options"])
        del credential["response"]["userHandle"]

        response = await finish_sign_in(gql, ceremony["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"

    async def test_a_ceremony_in_another_sites_frame(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = await with_passkey(gql, test_user)
        device.cross_origin = True

        response = await passkey_sign_in(gql, device)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"

    async def test_a_passkey_whose_backup_eligibility_changed(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = await with_passkey(gql, test_user)
        device.backed_up = device.backup_eligible = False

        response = await passkey_sign_in(gql, device)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"

    async def test_no_user_verification_when_the_setting_requires_it(
        self, app: FastAPI, gql: GraphQLClient, test_user: User
    ) -> None:
        device = await with_passkey(gql, test_user)
        app.state.settings.webauthn_user_verification = "required"

        response = await passkey_sign_in(gql, device, user_verified=False)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"

    async def test_a_signature_by_another_key(self, gql: GraphQLClient, test_user: User) -> None:
        device = await with_passkey(gql, test_user)
        impostor = authenticator()
        impostor.create((await start_registration(gql, await token_of(gql, test_user)))["options"])
        impostor.credentials[0].credential_id = device.credentials[0].credential_id

        response = await passkey_sign_in(gql, impostor)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"

    @pytest.mark.parametrize(
        "credential",
        [
            "text",
            {"id": "x"},
            {"id": "x", "rawId": "x", "type": "public-key", "response": {"clientDataJSON": 1}},
            {
                "id": "AA",
                "rawId": "AA",
                "type": "public-key",
                "response": {
                    "clientDataJSON": "e30",
                    "authenticatorData": "AA",
                    "signature": "AA",
                    "userHandle": "A",
                },
            },
        ],
        ids=["string", "no-fields", "wrong-types", "bad-base64"],
    )
    async def test_a_malformed_credential_is_bad_input_and_keeps_the_challenge(
        self, gql: GraphQLClient, test_user: User, credential: object
    ) -> None:
        device = await with_passkey(gql, test_user)
        ceremony = await start_sign_in(gql)

        response = await finish_sign_in(gql, ceremony["challengeId"], credential)

        assert response.error_fields() == ["credential"]
        valid = device.get(ceremony["options"])
        signed_in(await finish_sign_in(gql, ceremony["challengeId"], valid))

    async def test_garbage_in_well_formed_fields_is_a_failed_verification(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = await with_passkey(gql, test_user)
        ceremony = await start_sign_in(gql)
        credential = device.get(ceremony["options"])
        credential["response"]["authenticatorData"] = "AAAA"
        credential["response"]["clientDataJSON"] = "bm90IGpzb24"

        response = await finish_sign_in(gql, ceremony["challengeId"], credential)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_VERIFICATION_FAILED"


async def password_challenge(gql: GraphQLClient, user: User) -> dict[str, Any]:
    response = await gql(LOGIN, {"input": {"email": user.email, "password": USER_PASSWORD}})
    required: dict[str, Any] = response.single_error("MFA_REQUIRED")["extensions"]
    return required


async def complete_with_passkey(
    gql: GraphQLClient, challenge: str, challenge_id: str, credential: object
) -> GraphQLResponse:
    factor = {"passkey": {"challengeId": challenge_id, "credential": credential}}
    return await gql(COMPLETE_LOGIN, {"input": {"challenge": challenge, "factor": factor}})


class TestAsTheSecondFactor:
    async def test_is_offered_after_the_password_with_the_accounts_passkeys(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        device = await with_passkey(gql, test_user)
        await turn_on_totp(gql, test_user, clock)

        required = await password_challenge(gql, test_user)

        assert required["methods"] == ["TOTP", "RECOVERY_CODE", "PASSKEY"]
        ceremony = required["passkeyOptions"]
        assert ceremony["challengeId"]
        options = ceremony["options"]
        assert options["rpId"] == RP_ID
        assert [entry["id"] for entry in options["allowCredentials"]] == [
            b64url(device.credentials[0].credential_id)
        ]

    async def test_completes_the_sign_in(
        self,
        gql: GraphQLClient,
        test_user: User,
        clock: FrozenDateTimeFactory,
        db_session: AsyncSession,
        settings: Settings,
    ) -> None:
        device = await with_passkey(gql, test_user)
        await turn_on_totp(gql, test_user, clock)
        required = await password_challenge(gql, test_user)
        ceremony = required["passkeyOptions"]

        response = await complete_with_passkey(
            gql, required["challenge"], ceremony["challengeId"], device.get(ceremony["options"])
        )

        token = signed_in(response, "completeLogin")
        claims = await signed_claims(token, db_session, settings)
        assert claims["amr"] == ["pwd", "hwk", "user", "mfa"]

    async def test_is_listed_among_the_accounts_second_factors(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        device = await with_passkey(gql, test_user)
        await turn_on_totp(gql, test_user, clock)
        token = signed_in(await passkey_sign_in(gql, device))

        status = data_of(await gql(MY_MFA, token=token), "myMfa")

        assert status == {"enabled": True, "methods": ["TOTP", "RECOVERY_CODE", "PASSKEY"]}

    async def test_is_not_asked_of_an_account_without_totp(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        await with_passkey(gql, test_user)

        response = await gql(
            LOGIN, {"input": {"email": test_user.email, "password": USER_PASSWORD}}
        )

        assert data_of(response, "login")["user"]["email"] == test_user.email

    async def test_refuses_another_accounts_passkey(
        self,
        gql: GraphQLClient,
        test_user: User,
        clock: FrozenDateTimeFactory,
        db_session: AsyncSession,
    ) -> None:
        await with_passkey(gql, test_user)
        await turn_on_totp(gql, test_user, clock)
        other = await create_user(db_session, email="other@example.com", password=USER_PASSWORD)
        theirs = await with_passkey(gql, other)
        required = await password_challenge(gql, test_user)
        ceremony = required["passkeyOptions"]
        credential = theirs.get(ceremony["options"], credential=theirs.credentials[0])

        response = await complete_with_passkey(
            gql, required["challenge"], ceremony["challengeId"], credential
        )

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_NOT_RECOGNISED"

    async def test_refuses_a_sign_in_ceremonys_challenge(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        device = await with_passkey(gql, test_user)
        await turn_on_totp(gql, test_user, clock)
        required = await password_challenge(gql, test_user)
        ceremony = await start_sign_in(gql)

        response = await complete_with_passkey(
            gql, required["challenge"], ceremony["challengeId"], device.get(ceremony["options"])
        )

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_CHALLENGE_INVALID"


async def reauthenticate_with(
    gql: GraphQLClient, token: str, device: SoftwareAuthenticator
) -> GraphQLResponse:
    """reauthenticate with the device's answer to a sign-in ceremony."""
    ceremony = await start_sign_in(gql)
    assertion = {
        "challengeId": ceremony["challengeId"],
        "credential": device.get(ceremony["options"]),
    }
    return await gql(REAUTHENTICATE, {"input": {"factor": {"passkey": assertion}}}, token=token)


class TestReauthenticating:
    async def test_with_a_passkey_proves_the_session_again(
        self, gql: GraphQLClient, test_user: User, clock: FrozenDateTimeFactory
    ) -> None:
        token = await token_of(gql, test_user)
        device = authenticator()
        await add_passkey(gql, token, device)
        clock.tick(timedelta(seconds=601))

        response = await reauthenticate_with(gql, token, device)

        assert data_of(response, "reauthenticate") is True
        assert await auth_methods(gql, token) == ["hwk", "user", "mfa"]
        # Recent again: the passkey list may change.
        assert (await start_registration(gql, token))["challengeId"]

    async def test_with_a_passkey_that_verified_nobody_is_one_factor(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = await with_passkey(gql, test_user, authenticator(user_verifying=False))
        token = signed_in(await passkey_sign_in(gql, device))

        response = await reauthenticate_with(gql, token, device)

        assert data_of(response, "reauthenticate") is True
        # The key alone, again: not a second factor (REQUIRE_MFA_FOR_SUPERUSERS relies on it).
        assert await auth_methods(gql, token) == ["hwk"]

    async def test_refuses_another_accounts_passkey(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        other = await create_user(db_session, email="other@example.com", password=USER_PASSWORD)
        theirs = await with_passkey(gql, other)

        response = await reauthenticate_with(gql, await token_of(gql, test_user), theirs)

        assert reason_of(response, "UNAUTHENTICATED") == "PASSKEY_NOT_RECOGNISED"


class TestWithChallengesInRedis:
    @pytest.fixture
    def settings(self, settings: Settings, redis_url: str) -> Settings:
        return settings.model_copy(
            update={"redis_url": redis_url, "rate_limit_key_prefix": f"test-{uuid.uuid4().hex}"}
        )

    async def test_a_passkey_registers_and_signs_in_once_per_challenge(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        device = await with_passkey(gql, test_user)
        ceremony = await start_sign_in(gql)
        credential = device.get(ceremony["options"])

        signed_in(await finish_sign_in(gql, ceremony["challengeId"], credential))
        replayed = await finish_sign_in(gql, ceremony["challengeId"], credential)

        assert reason_of(replayed, "UNAUTHENTICATED") == "PASSKEY_CHALLENGE_INVALID"
        # Nothing of the ceremonies went to the database.
        count = select(func.count()).select_from(PasskeyChallenge)
        assert (await db_session.execute(count)).scalar_one() == 0


class TestWithRedisDown:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "redis_url": "redis://127.0.0.1:1/0",
                "redis_connect_timeout_seconds": 0.2,
                "redis_timeout_seconds": 0.2,
            }
        )

    async def test_a_ceremony_answers_service_unavailable(self, gql: GraphQLClient) -> None:
        response = await gql(START_PASSKEY_SIGN_IN)

        error = response.single_error("SERVICE_UNAVAILABLE")
        assert error["extensions"]["reason"] == "PASSKEY_CHALLENGES_UNAVAILABLE"
        assert error["extensions"]["retryAfter"] >= 1
