"""Second factors on PostgreSQL: a user's whole journey, and one recovery code spent twice at once.

Codes come from pyotp, as an authenticator app computes them. Time is frozen at the real
present (tokens minted here stay valid for the database), and moved one TOTP step on after
the enrolment: confirming it spent the code of its step.
"""

import asyncio
import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.models import AuthSession, MfaChallenge, RecoveryCode, TotpFactor, User
from gql_app.models.base import utc_now
from tests.factories import USER_PASSWORD
from tests.graphql import LOGIN, GraphQLClient, GraphQLResponse, Tokens, login_tokens
from tests.operations import AUTH_PAYLOAD_FIELDS, ME

pytestmark = pytest.mark.e2e

STEP = timedelta(seconds=30)

MY_MFA = "query { myMfa { enabled methods recoveryCodesRemaining } }"
MY_SESSIONS = "query { mySessions { current authMethods } }"
START_TOTP_ENROLLMENT = "mutation { startTotpEnrollment { secret otpauthUri qrCodeSvg } }"
CONFIRM_TOTP_ENROLLMENT = "mutation Confirm($code: String!) { confirmTotpEnrollment(code: $code) }"
DISABLE_TOTP = "mutation { disableTotp }"
REAUTHENTICATE = (
    "mutation Reauthenticate($input: ReauthenticateInput!) { reauthenticate(input: $input) }"
)
MAX_FAILED_FACTORS = 5
COMPLETE_LOGIN = f"""
mutation CompleteLogin($input: CompleteLoginInput!) {{
  completeLogin(input: $input) {{ {AUTH_PAYLOAD_FIELDS} }}
}}
"""


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FrozenDateTimeFactory]:
    """Frozen once the app is built (building it under freezegun's ``date`` fails)."""
    with freeze_time(utc_now(), real_asyncio=True) as frozen:
        yield frozen


def data_of(response: GraphQLResponse, field: str) -> Any:
    assert response.errors == [], response.body
    return response.data[field]


async def my_mfa(gql: GraphQLClient, token: str) -> dict[str, Any]:
    status: dict[str, Any] = data_of(await gql(MY_MFA, token=token), "myMfa")
    return status


async def challenge_for(gql: GraphQLClient, user: User) -> str:
    response = await gql(LOGIN, {"input": {"email": user.email, "password": USER_PASSWORD}})
    extensions = response.single_error("MFA_REQUIRED")["extensions"]
    assert extensions["methods"] == ["TOTP", "RECOVERY_CODE"]
    challenge: str = extensions["challenge"]
    return challenge


async def complete(gql: GraphQLClient, challenge: str, **factor: str) -> GraphQLResponse:
    return await gql(COMPLETE_LOGIN, {"input": {"challenge": challenge, "factor": factor}})


def completed(response: GraphQLResponse) -> Tokens:
    payload = data_of(response, "completeLogin")
    return Tokens(access=payload["accessToken"], refresh=payload["refreshToken"])


async def current_methods(gql: GraphQLClient, token: str) -> list[str]:
    sessions = data_of(await gql(MY_SESSIONS, token=token), "mySessions")
    (current,) = [entry for entry in sessions if entry["current"]]
    methods: list[str] = current["authMethods"]
    return methods


async def enrol(
    gql: GraphQLClient, clock: FrozenDateTimeFactory, user: User
) -> tuple[pyotp.TOTP, list[str], Tokens]:
    """TOTP on, from a session signed in with the password; the clock one step on."""
    tokens = await login_tokens(gql, email=user.email, password=USER_PASSWORD)
    secret = data_of(await gql(START_TOTP_ENROLLMENT, token=tokens.access), "startTotpEnrollment")[
        "secret"
    ]
    totp = pyotp.TOTP(secret)
    codes = data_of(
        await gql(CONFIRM_TOTP_ENROLLMENT, {"code": totp.now()}, token=tokens.access),
        "confirmTotpEnrollment",
    )
    clock.tick(STEP)
    return totp, codes, tokens


def reason_of(response: GraphQLResponse) -> str:
    reason: str = response.single_error("UNAUTHENTICATED")["extensions"]["reason"]
    return reason


class TestMfaJourney:
    async def test_enrol_sign_in_with_totp_then_a_recovery_code_then_disable(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        # Enrolment, from a session signed in with the password a moment ago.
        first = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)
        enrollment = data_of(
            await gql(START_TOTP_ENROLLMENT, token=first.access), "startTotpEnrollment"
        )
        parsed = pyotp.parse_uri(enrollment["otpauthUri"])
        assert parsed.secret == enrollment["secret"]
        assert parsed.name == test_user.email
        assert enrollment["qrCodeSvg"].lstrip().startswith("<svg")
        totp = pyotp.TOTP(enrollment["secret"])
        codes = data_of(
            await gql(CONFIRM_TOTP_ENROLLMENT, {"code": totp.now()}, token=first.access),
            "confirmTotpEnrollment",
        )
        assert len(codes) == 10
        assert await my_mfa(gql, first.access) == {
            "enabled": True,
            "methods": ["TOTP", "RECOVERY_CODE"],
            "recoveryCodesRemaining": 10,
        }
        (stored,) = (
            await db_session.execute(text("SELECT encrypted_secret FROM totp_factors"))
        ).one()
        assert enrollment["secret"].encode() not in bytes(stored)
        assert base64.b32decode(enrollment["secret"]) not in bytes(stored)
        clock.tick(STEP)

        # Sign-in with the app's code.
        with_totp = completed(
            await complete(gql, await challenge_for(gql, test_user), totpCode=totp.now())
        )
        me = data_of(await gql(ME, token=with_totp.access), "me")
        assert me["id"] == str(test_user.id)
        assert await current_methods(gql, with_totp.access) == ["pwd", "otp", "mfa"]

        # Sign-in with a recovery code: spent.
        with_code = completed(
            await complete(gql, await challenge_for(gql, test_user), recoveryCode=codes[0])
        )
        assert await current_methods(gql, with_code.access) == ["pwd", "otp", "mfa"]
        assert (await my_mfa(gql, with_code.access))["recoveryCodesRemaining"] == 9

        # Off, from a session that signed in with a second factor just now.
        assert data_of(await gql(DISABLE_TOTP, token=with_code.access), "disableTotp") is True
        assert await my_mfa(gql, with_code.access) == {
            "enabled": False,
            "methods": [],
            "recoveryCodesRemaining": 0,
        }
        for model in (TotpFactor, RecoveryCode):
            assert await db_session.scalar(select(func.count()).select_from(model)) == 0
        # The password alone signs in again.
        again = await login_tokens(gql, email=test_user.email, password=USER_PASSWORD)
        assert await current_methods(gql, again.access) == ["pwd"]


class TestConcurrentRecoveryCode:
    async def test_one_code_spent_by_two_sign_ins_at_once_lets_exactly_one_in(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        _, codes, _ = await enrol(gql, clock, test_user)
        challenges = [await challenge_for(gql, test_user) for _ in range(2)]

        answers = await asyncio.gather(
            *(complete(gql, challenge, recoveryCode=codes[0]) for challenge in challenges)
        )

        winners = [answer for answer in answers if answer.errors == []]
        losers = [answer for answer in answers if answer.errors != []]
        assert len(winners) == 1, [answer.body for answer in answers]
        (loser,) = losers
        assert reason_of(loser) == "INVALID_MFA_CODE"
        assert loser.data is None
        tokens = completed(winners[0])
        assert (await my_mfa(gql, tokens.access))["recoveryCodesRemaining"] == 9
        used = (
            select(func.count()).select_from(RecoveryCode).where(RecoveryCode.used_at.is_not(None))
        )
        assert await db_session.scalar(used) == 1
        # The enrolment's session and the winner's: the loser started none.
        assert await db_session.scalar(select(func.count()).select_from(AuthSession)) == 2
        rows = (
            await db_session.execute(
                select(MfaChallenge.consumed_at, MfaChallenge.failed_attempts).execution_options(
                    populate_existing=True
                )
            )
        ).all()
        # Each challenge counted its one attempt; the winner's was spent by its sign-in.
        assert sorted((consumed is not None, attempts) for consumed, attempts in rows) == [
            (False, 1),
            (True, 1),
        ]

    async def test_one_code_spent_by_a_sign_in_and_a_reauthentication_at_once_counts_once(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        # completeLogin locks the account's row, reauthenticate does not: here only the
        # conditional UPDATE of the code stands between the two.
        _, codes, enrolment = await enrol(gql, clock, test_user)
        challenge = await challenge_for(gql, test_user)

        sign_in, proof = await asyncio.gather(
            complete(gql, challenge, recoveryCode=codes[0]),
            gql(
                REAUTHENTICATE,
                {"input": {"factor": {"recoveryCode": codes[0]}}},
                token=enrolment.access,
            ),
        )

        outcomes = sorted([sign_in.errors == [], proof.errors == []])
        assert outcomes == [False, True], [sign_in.body, proof.body]
        loser = proof if sign_in.errors == [] else sign_in
        assert reason_of(loser) == "INVALID_MFA_CODE"
        used = (
            select(func.count()).select_from(RecoveryCode).where(RecoveryCode.used_at.is_not(None))
        )
        assert await db_session.scalar(used) == 1


class TestConcurrentWrongFactors:
    async def test_parallel_wrong_factors_get_no_more_than_five_tries_on_one_challenge(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        totp, _, _ = await enrol(gql, clock, test_user)
        challenge = await challenge_for(gql, test_user)
        guesses = 2 * MAX_FAILED_FACTORS

        answers = await asyncio.gather(
            *(complete(gql, challenge, recoveryCode="2222-3333-4444") for _ in range(guesses))
        )

        reasons = sorted(reason_of(answer) for answer in answers)
        assert reasons == ["INVALID_MFA_CODE"] * MAX_FAILED_FACTORS + ["MFA_CHALLENGE_INVALID"] * (
            guesses - MAX_FAILED_FACTORS
        )
        failed = select(MfaChallenge.failed_attempts).execution_options(populate_existing=True)
        assert await db_session.scalar(failed) == MAX_FAILED_FACTORS
        dead = await complete(gql, challenge, totpCode=totp.now())
        assert reason_of(dead) == "MFA_CHALLENGE_INVALID"
