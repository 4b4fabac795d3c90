"""Second factors through GraphQL: enrolment, sign-in with a challenge, step-up, admin reset.

Time stands still at T0 (10 s into a TOTP step) until a test moves it; codes come from pyotp,
as an authenticator app would compute them. Confirming the enrolment spends the code of T0's
step, so the helpers move the clock one step on before the account signs in with a code.
"""

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.models import AuthSession, MfaChallenge, RecoveryCode, TotpFactor, User
from tests.auth_factories import signed_claims
from tests.factories import ADMIN_PASSWORD, USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient, GraphQLResponse, Tokens, login_tokens
from tests.operations import AUTH_PAYLOAD_FIELDS, ME

T0 = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
STEP = timedelta(seconds=30)
CHALLENGE_SECONDS = 300
MAX_FAILED_FACTORS = 5
RECOVERY_CODE = re.compile(r"^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$")

MY_MFA = "query { myMfa { enabled methods recoveryCodesRemaining } }"
MY_SESSIONS = "query { mySessions { id current authMethods authenticatedAt } }"
START_TOTP_ENROLLMENT = "mutation { startTotpEnrollment { secret otpauthUri qrCodeSvg } }"
CONFIRM_TOTP_ENROLLMENT = "mutation Confirm($code: String!) { confirmTotpEnrollment(code: $code) }"
DISABLE_TOTP = "mutation { disableTotp }"
REGENERATE_RECOVERY_CODES = "mutation { regenerateRecoveryCodes }"
COMPLETE_LOGIN = f"""
mutation CompleteLogin($input: CompleteLoginInput!) {{
  completeLogin(input: $input) {{ {AUTH_PAYLOAD_FIELDS} }}
}}
"""
REAUTHENTICATE = (
    "mutation Reauthenticate($input: ReauthenticateInput!) { reauthenticate(input: $input) }"
)
RESET_USER_MFA = "mutation Reset($id: ID!) { resetUserMfa(id: $id) { id email } }"

DISABLED = {"enabled": False, "methods": [], "recoveryCodesRemaining": 0}


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FrozenDateTimeFactory]:
    """Time stands still at T0 until the test moves it (the app's clock is utc_now).

    Frozen once the app is built: building it imports modules that subclass ``date``,
    which freezegun's stand-in cannot be.
    """
    with freeze_time(T0, real_asyncio=True) as frozen:
        yield frozen


# Before the fixtures that sign in: their tokens are issued at T0.
pytestmark = pytest.mark.usefixtures("clock")


@dataclass(frozen=True)
class Enrolled:
    """An account with TOTP on: its secret, recovery codes, and the (password-only) session
    it enrolled from."""

    user: User
    secret: str
    recovery_codes: list[str]
    tokens: Tokens

    @property
    def totp(self) -> pyotp.TOTP:
        return pyotp.TOTP(self.secret)


def data_of(response: GraphQLResponse, field: str) -> Any:
    assert response.errors == [], response.body
    return response.data[field]


def reason_of(response: GraphQLResponse, code: str) -> str:
    reason: str = response.single_error(code)["extensions"]["reason"]
    return reason


async def sign_in(gql: GraphQLClient, user: User, password: str = USER_PASSWORD) -> Tokens:
    return await login_tokens(gql, email=user.email, password=password)


async def start(gql: GraphQLClient, token: str) -> dict[str, str]:
    enrollment: dict[str, str] = data_of(
        await gql(START_TOTP_ENROLLMENT, token=token), "startTotpEnrollment"
    )
    return enrollment


async def confirm(gql: GraphQLClient, token: str, code: str) -> GraphQLResponse:
    return await gql(CONFIRM_TOTP_ENROLLMENT, {"code": code}, token=token)


async def enrol(gql: GraphQLClient, clock: FrozenDateTimeFactory, user: User) -> Enrolled:
    """Sign in with the password, turn TOTP on, and move to the next step: the code of the
    step confirmation used is spent."""
    tokens = await sign_in(gql, user)
    secret = (await start(gql, tokens.access))["secret"]
    codes = data_of(
        await confirm(gql, tokens.access, pyotp.TOTP(secret).now()), "confirmTotpEnrollment"
    )
    clock.tick(STEP)
    return Enrolled(user=user, secret=secret, recovery_codes=codes, tokens=tokens)


async def my_mfa(gql: GraphQLClient, token: str) -> dict[str, Any]:
    status: dict[str, Any] = data_of(await gql(MY_MFA, token=token), "myMfa")
    return status


async def login(gql: GraphQLClient, user: User, password: str = USER_PASSWORD) -> GraphQLResponse:
    return await gql(LOGIN, {"input": {"email": user.email, "password": password}})


async def challenge_for(gql: GraphQLClient, user: User) -> str:
    """The challenge a right password answers on an account with a second factor."""
    response = await login(gql, user)
    challenge: str = response.single_error("MFA_REQUIRED")["extensions"]["challenge"]
    return challenge


async def complete(gql: GraphQLClient, challenge: str, **factor: str | None) -> GraphQLResponse:
    """completeLogin with the factor given as keyword arguments (totpCode=..., recoveryCode=...)."""
    return await gql(COMPLETE_LOGIN, {"input": {"challenge": challenge, "factor": factor}})


def completed(response: GraphQLResponse) -> Tokens:
    payload = data_of(response, "completeLogin")
    return Tokens(access=payload["accessToken"], refresh=payload["refreshToken"])


async def reauthenticate(
    gql: GraphQLClient, token: str, **proof: str | dict[str, str]
) -> GraphQLResponse:
    return await gql(REAUTHENTICATE, {"input": proof}, token=token)


def wrong_code(totp: pyotp.TOTP, at: datetime) -> str:
    """Six digits that are none of the codes accepted at ``at``."""
    accepted = {totp.at(at + drift * STEP) for drift in range(-1, 2)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in accepted)


async def session_count(db_session: AsyncSession) -> int:
    return (await db_session.execute(select(func.count()).select_from(AuthSession))).scalar_one()


class TestEnrolment:
    async def test_start_answers_a_secret_its_otpauth_uri_and_a_qr_code(
        self, gql: GraphQLClient, test_user: User, settings: Settings
    ) -> None:
        tokens = await sign_in(gql, test_user)

        enrollment = await start(gql, tokens.access)

        secret = enrollment["secret"]
        assert len(base64.b32decode(secret)) == 20  # 160 bits
        uri = enrollment["otpauthUri"]
        assert uri.startswith("otpauth://totp/")
        parsed = pyotp.parse_uri(uri)
        assert isinstance(parsed, pyotp.TOTP)
        assert parsed.secret == secret
        assert parsed.name == test_user.email
        assert parsed.issuer == settings.mfa_issuer
        assert parsed.digits == 6
        assert parsed.interval == 30
        assert parsed.digest().name == "sha1"
        svg = enrollment["qrCodeSvg"]
        assert svg.lstrip().startswith("<svg")
        assert svg.rstrip().endswith("</svg>")
        assert "<path" in svg
        # Nothing is on until a code confirms it.
        assert await my_mfa(gql, tokens.access) == DISABLED

    async def test_starting_again_replaces_the_unconfirmed_secret(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        tokens = await sign_in(gql, test_user)
        first = (await start(gql, tokens.access))["secret"]

        second = (await start(gql, tokens.access))["secret"]

        assert second != first
        stale = await confirm(gql, tokens.access, pyotp.TOTP(first).now())
        assert stale.error_fields() == ["code"]
        codes = data_of(
            await confirm(gql, tokens.access, pyotp.TOTP(second).now()), "confirmTotpEnrollment"
        )
        assert len(codes) == 10
        rows = (await db_session.scalars(select(TotpFactor))).all()
        assert [row.user_id for row in rows] == [test_user.id]

    async def test_a_wrong_code_is_bad_user_input_on_code(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        tokens = await sign_in(gql, test_user)
        secret = (await start(gql, tokens.access))["secret"]

        response = await confirm(gql, tokens.access, wrong_code(pyotp.TOTP(secret), T0))

        error = response.single_error("BAD_USER_INPUT")
        assert [(entry["field"], entry["code"]) for entry in error["extensions"]["fields"]] == [
            ("code", "WRONG_CODE")
        ]
        assert response.data is None
        assert await my_mfa(gql, tokens.access) == DISABLED

    async def test_the_right_code_turns_totp_on_and_answers_ten_recovery_codes(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        tokens = await sign_in(gql, test_user)
        secret = (await start(gql, tokens.access))["secret"]

        codes = data_of(
            await confirm(gql, tokens.access, pyotp.TOTP(secret).now()), "confirmTotpEnrollment"
        )

        assert len(codes) == 10
        assert len(set(codes)) == 10
        for code in codes:
            assert RECOVERY_CODE.match(code), code
        assert await my_mfa(gql, tokens.access) == {
            "enabled": True,
            "methods": ["TOTP", "RECOVERY_CODE"],
            "recoveryCodesRemaining": 10,
        }

    async def test_secret_and_recovery_codes_are_not_stored_readable(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)

        secret_bytes = base64.b32decode(enrolled.secret)
        totp_rows = (await db_session.execute(text("SELECT * FROM totp_factors"))).all()
        assert len(totp_rows) == 1
        for value in totp_rows[0]:
            if isinstance(value, bytes | memoryview):
                stored = bytes(value)
                assert enrolled.secret.encode() not in stored
                assert secret_bytes not in stored
            else:
                assert enrolled.secret not in str(value)
        code_rows = (await db_session.execute(text("SELECT * FROM recovery_codes"))).all()
        assert len(code_rows) == 10
        dump = repr(code_rows)
        for code in enrolled.recovery_codes:
            assert code not in dump
            assert code.replace("-", "") not in dump

    async def test_starting_on_an_account_with_totp_on_is_a_conflict(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        tokens = completed(
            await complete(gql, await challenge_for(gql, test_user), totpCode=enrolled.totp.now())
        )

        response = await gql(START_TOTP_ENROLLMENT, token=tokens.access)

        assert reason_of(response, "CONFLICT") == "MFA_ALREADY_ENABLED"


class TestOneOfFactor:
    @pytest.mark.parametrize(
        "factor",
        [
            pytest.param({}, id="none"),
            pytest.param({"totpCode": None}, id="one-null"),
            pytest.param({"totpCode": "123456", "recoveryCode": "ABCD-EFGH-JKMN"}, id="both"),
        ],
    )
    async def test_complete_login_needs_exactly_one_member(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        factor: dict[str, str | None],
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        challenge = await challenge_for(gql, test_user)

        response = await gql(COMPLETE_LOGIN, {"input": {"challenge": challenge, "factor": factor}})

        error = response.single_error("BAD_USER_INPUT")
        assert [entry["code"] for entry in error["extensions"]["fields"]] == ["INVALID_VALUE"]
        assert response.data is None
        # Refused before the resolver: the challenge neither spent nor counted.
        completed(await complete(gql, challenge, totpCode=enrolled.totp.now()))

    @pytest.mark.parametrize(
        "factor",
        [
            pytest.param("{}", id="none"),
            pytest.param('{totpCode: "123456", recoveryCode: "ABCD-EFGH-JKMN"}', id="both"),
        ],
    )
    async def test_a_literal_in_the_document_needs_exactly_one_member_too(
        self, gql: GraphQLClient, factor: str
    ) -> None:
        document = (
            f'mutation {{ completeLogin(input: {{challenge: "x", factor: {factor}}}) '
            "{ accessToken } }"
        )

        response = await gql(document)

        response.single_error("BAD_USER_INPUT")
        assert response.data is None

    @pytest.mark.parametrize(
        "factor",
        [
            pytest.param({}, id="none"),
            pytest.param({"totpCode": "123456", "recoveryCode": "ABCD-EFGH-JKMN"}, id="both"),
        ],
    )
    async def test_reauthenticate_needs_exactly_one_member(
        self, gql: GraphQLClient, test_user: User, factor: dict[str, str]
    ) -> None:
        tokens = await sign_in(gql, test_user)

        response = await reauthenticate(gql, tokens.access, factor=factor)

        response.single_error("BAD_USER_INPUT")
        assert response.data is None
        sessions = data_of(await gql(MY_SESSIONS, token=tokens.access), "mySessions")
        assert [entry["authMethods"] for entry in sessions] == [["pwd"]]


class TestSignIn:
    async def test_a_right_password_answers_mfa_required_and_starts_no_session(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)

        response = await login(gql, test_user)

        error = response.single_error("MFA_REQUIRED")
        extensions = error["extensions"]
        assert extensions["reason"] == "MFA_REQUIRED"
        assert isinstance(extensions["challenge"], str)
        assert len(extensions["challenge"]) >= 32
        assert extensions["methods"] == ["TOTP", "RECOVERY_CODE"]
        assert extensions["expiresIn"] == CHALLENGE_SECONDS
        assert response.data is None
        assert "accessToken" not in response.text
        # Only the session the account enrolled from.
        assert await session_count(db_session) == 1
        sessions = data_of(await gql(MY_SESSIONS, token=enrolled.tokens.access), "mySessions")
        assert len(sessions) == 1
        # Stored hashed, and bound to the account.
        challenges = (await db_session.scalars(select(MfaChallenge))).all()
        assert [row.user_id for row in challenges] == [test_user.id]
        assert challenges[0].token_hash != extensions["challenge"]
        assert extensions["challenge"] not in repr(
            (await db_session.execute(text("SELECT * FROM mfa_challenges"))).all()
        )

    async def test_a_wrong_password_answers_exactly_as_without_mfa(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        await enrol(gql, clock, test_user)
        without_mfa = await create_user(db_session, email="plain@example.com")

        wrong = await login(gql, test_user, "WrongPassword123!")
        plain = await login(gql, without_mfa, "WrongPassword123!")

        error = wrong.single_error("UNAUTHENTICATED")
        assert error["extensions"]["reason"] == "INVALID_CREDENTIALS"
        assert error["message"] == plain.errors[0]["message"] == "Invalid credentials"
        assert error["extensions"] == plain.errors[0]["extensions"]
        assert await db_session.scalar(select(MfaChallenge)) is None

    async def test_a_totp_code_completes_the_sign_in_with_amr_and_auth_time(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
        settings: Settings,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        challenge = await challenge_for(gql, test_user)

        response = await complete(gql, challenge, totpCode=enrolled.totp.now())

        payload = data_of(response, "completeLogin")
        assert payload["tokenType"] == "Bearer"
        assert payload["user"]["id"] == str(test_user.id)
        tokens = completed(response)
        me = data_of(await gql(ME, token=tokens.access), "me")
        assert me["id"] == str(test_user.id)
        claims = await signed_claims(tokens.access, db_session, settings)
        assert claims["amr"] == ["pwd", "otp", "mfa"]
        assert claims["auth_time"] == int((T0 + STEP).timestamp())
        assert await session_count(db_session) == 2
        sessions = data_of(await gql(MY_SESSIONS, token=tokens.access), "mySessions")
        (current,) = [entry for entry in sessions if entry["current"]]
        assert current["id"] == claims["sid"]
        assert current["authMethods"] == ["pwd", "otp", "mfa"]
        assert datetime.fromisoformat(current["authenticatedAt"]) == T0 + STEP

    async def test_a_password_only_sign_in_has_amr_pwd(
        self,
        gql: GraphQLClient,
        test_user: User,
        db_session: AsyncSession,
        settings: Settings,
    ) -> None:
        tokens = await sign_in(gql, test_user)

        claims = await signed_claims(tokens.access, db_session, settings)
        assert claims["amr"] == ["pwd"]
        assert claims["auth_time"] == int(T0.timestamp())

    async def test_a_recovery_code_completes_the_sign_in_once(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
        settings: Settings,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        code = enrolled.recovery_codes[0]

        tokens = completed(
            await complete(gql, await challenge_for(gql, test_user), recoveryCode=code)
        )

        claims = await signed_claims(tokens.access, db_session, settings)
        assert claims["amr"] == ["pwd", "otp", "mfa"]
        assert await my_mfa(gql, tokens.access) == {
            "enabled": True,
            "methods": ["TOTP", "RECOVERY_CODE"],
            "recoveryCodesRemaining": 9,
        }
        again = await complete(gql, await challenge_for(gql, test_user), recoveryCode=code)
        assert reason_of(again, "UNAUTHENTICATED") == "INVALID_MFA_CODE"
        assert await session_count(db_session) == 2

    async def test_a_recovery_code_may_be_typed_without_dashes_in_lower_case(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        typed = enrolled.recovery_codes[3].replace("-", "").lower()

        response = await complete(gql, await challenge_for(gql, test_user), recoveryCode=typed)

        completed(response)

    async def test_a_replayed_totp_code_is_refused_inside_its_window(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        code = enrolled.totp.now()
        completed(await complete(gql, await challenge_for(gql, test_user), totpCode=code))
        second = await challenge_for(gql, test_user)

        replay = await complete(gql, second, totpCode=code)

        assert reason_of(replay, "UNAUTHENTICATED") == "INVALID_MFA_CODE"
        assert replay.data is None
        assert await session_count(db_session) == 2
        # The next step's code finishes that same challenge: only the code was refused.
        clock.tick(STEP)
        completed(await complete(gql, second, totpCode=enrolled.totp.now()))

    @pytest.mark.parametrize("drift", [-1, 1])
    async def test_a_code_one_step_either_side_is_accepted(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User, drift: int
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        # Far enough from the step confirmation spent that drift -1 is not a replay.
        clock.tick(2 * STEP)
        now = T0 + 3 * STEP
        challenge = await challenge_for(gql, test_user)

        response = await complete(gql, challenge, totpCode=enrolled.totp.at(now + drift * STEP))

        completed(response)

    @pytest.mark.parametrize("drift", [-2, 2])
    async def test_a_code_two_steps_away_is_refused(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User, drift: int
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        clock.tick(2 * STEP)
        now = T0 + 3 * STEP
        challenge = await challenge_for(gql, test_user)

        response = await complete(gql, challenge, totpCode=enrolled.totp.at(now + drift * STEP))

        assert reason_of(response, "UNAUTHENTICATED") == "INVALID_MFA_CODE"
        completed(await complete(gql, challenge, totpCode=enrolled.totp.at(now)))

    async def test_four_wrong_factors_leave_the_challenge_usable(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        challenge = await challenge_for(gql, test_user)
        wrong = wrong_code(enrolled.totp, T0 + STEP)
        for _ in range(MAX_FAILED_FACTORS - 1):
            response = await complete(gql, challenge, totpCode=wrong)
            assert reason_of(response, "UNAUTHENTICATED") == "INVALID_MFA_CODE"

        completed(await complete(gql, challenge, totpCode=enrolled.totp.now()))

    async def test_the_fifth_wrong_factor_kills_the_challenge(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        challenge = await challenge_for(gql, test_user)
        wrong = wrong_code(enrolled.totp, T0 + STEP)
        for attempt in range(MAX_FAILED_FACTORS):
            # Wrong recovery codes count as much as wrong TOTP codes.
            factor = {"totpCode": wrong} if attempt % 2 else {"recoveryCode": "2222-3333-4444"}
            response = await complete(gql, challenge, **factor)
            assert reason_of(response, "UNAUTHENTICATED") == "INVALID_MFA_CODE"

        dead = await complete(gql, challenge, totpCode=enrolled.totp.now())

        assert reason_of(dead, "UNAUTHENTICATED") == "MFA_CHALLENGE_INVALID"
        # The right code was not spent on the dead challenge: a new sign-in takes it.
        completed(
            await complete(gql, await challenge_for(gql, test_user), totpCode=enrolled.totp.now())
        )

    @pytest.mark.parametrize(
        ("elapsed", "valid"),
        [
            pytest.param(timedelta(seconds=CHALLENGE_SECONDS - 1), True, id="just-inside"),
            pytest.param(timedelta(seconds=CHALLENGE_SECONDS + 1), False, id="expired"),
        ],
    )
    async def test_a_challenge_lasts_five_minutes(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        elapsed: timedelta,
        valid: bool,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        challenge = await challenge_for(gql, test_user)
        clock.tick(elapsed)

        response = await complete(gql, challenge, totpCode=enrolled.totp.now())

        if valid:
            completed(response)
        else:
            assert reason_of(response, "UNAUTHENTICATED") == "MFA_CHALLENGE_INVALID"

    async def test_a_spent_challenge_is_invalid(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        challenge = await challenge_for(gql, test_user)
        completed(await complete(gql, challenge, totpCode=enrolled.totp.now()))
        clock.tick(STEP)

        again = await complete(gql, challenge, totpCode=enrolled.totp.now())

        assert reason_of(again, "UNAUTHENTICATED") == "MFA_CHALLENGE_INVALID"

    async def test_an_unknown_challenge_is_invalid(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)

        response = await complete(gql, "not-a-challenge", totpCode=enrolled.totp.now())

        assert reason_of(response, "UNAUTHENTICATED") == "MFA_CHALLENGE_INVALID"


class TestStepUp:
    async def test_disable_from_a_password_only_session_needs_a_second_factor(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        token = enrolled.tokens.access

        refused = await gql(DISABLE_TOTP, token=token)

        assert reason_of(refused, "FORBIDDEN") == "REAUTHENTICATION_REQUIRED"
        assert (await my_mfa(gql, token))["enabled"] is True
        proof = await reauthenticate(gql, token, factor={"totpCode": enrolled.totp.now()})
        assert data_of(proof, "reauthenticate") is True
        assert data_of(await gql(DISABLE_TOTP, token=token), "disableTotp") is True
        assert await my_mfa(gql, token) == DISABLED
        assert await db_session.scalar(select(func.count()).select_from(TotpFactor)) == 0
        assert await db_session.scalar(select(func.count()).select_from(RecoveryCode)) == 0
        # The password alone signs in again.
        data_of(await login(gql, test_user), "login")

    async def test_a_session_signed_in_with_a_second_factor_can_disable_at_once(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        tokens = completed(
            await complete(gql, await challenge_for(gql, test_user), totpCode=enrolled.totp.now())
        )

        response = await gql(DISABLE_TOTP, token=tokens.access)

        assert data_of(response, "disableTotp") is True

    async def test_regenerating_recovery_codes_needs_a_second_factor(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        token = enrolled.tokens.access

        refused = await gql(REGENERATE_RECOVERY_CODES, token=token)

        assert reason_of(refused, "FORBIDDEN") == "REAUTHENTICATION_REQUIRED"
        data_of(
            await reauthenticate(gql, token, factor={"recoveryCode": enrolled.recovery_codes[0]}),
            "reauthenticate",
        )
        fresh = data_of(
            await gql(REGENERATE_RECOVERY_CODES, token=token), "regenerateRecoveryCodes"
        )
        assert len(fresh) == 10
        assert not set(fresh) & set(enrolled.recovery_codes)
        assert (await my_mfa(gql, token))["recoveryCodesRemaining"] == 10
        old = await complete(
            gql, await challenge_for(gql, test_user), recoveryCode=enrolled.recovery_codes[1]
        )
        assert reason_of(old, "UNAUTHENTICATED") == "INVALID_MFA_CODE"
        completed(await complete(gql, await challenge_for(gql, test_user), recoveryCode=fresh[0]))

    @pytest.mark.parametrize("operation", ["start", "confirm"])
    async def test_enrolment_long_after_sign_in_needs_the_password_again(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        settings: Settings,
        operation: str,
    ) -> None:
        tokens = await sign_in(gql, test_user)
        secret = (await start(gql, tokens.access))["secret"] if operation == "confirm" else ""
        clock.tick(timedelta(seconds=settings.reauth_max_age_seconds + 1))

        def attempt() -> Any:
            if operation == "start":
                return gql(START_TOTP_ENROLLMENT, token=tokens.access)
            return confirm(gql, tokens.access, pyotp.TOTP(secret).now())

        refused = await attempt()

        assert reason_of(refused, "FORBIDDEN") == "REAUTHENTICATION_REQUIRED"
        proof = await reauthenticate(gql, tokens.access, password=USER_PASSWORD)
        assert data_of(proof, "reauthenticate") is True
        assert (await attempt()).errors == []
        sessions = data_of(await gql(MY_SESSIONS, token=tokens.access), "mySessions")
        (current,) = [entry for entry in sessions if entry["current"]]
        assert current["authMethods"] == ["pwd"]
        assert datetime.fromisoformat(current["authenticatedAt"]) == T0 + timedelta(
            seconds=settings.reauth_max_age_seconds + 1
        )

    async def test_enrolment_at_the_edge_of_the_window_needs_nothing_more(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        settings: Settings,
    ) -> None:
        tokens = await sign_in(gql, test_user)
        clock.tick(timedelta(seconds=settings.reauth_max_age_seconds))

        response = await gql(START_TOTP_ENROLLMENT, token=tokens.access)

        assert response.errors == [], response.body

    async def test_a_wrong_proof_is_unauthenticated_and_changes_nothing(
        self, gql: GraphQLClient, clock: FrozenDateTimeFactory, test_user: User
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        token = enrolled.tokens.access

        wrong_password = await reauthenticate(gql, token, password="WrongPassword123!")
        wrong_factor = await reauthenticate(
            gql, token, factor={"totpCode": wrong_code(enrolled.totp, T0 + STEP)}
        )

        assert reason_of(wrong_password, "UNAUTHENTICATED") == "INVALID_CREDENTIALS"
        assert reason_of(wrong_factor, "UNAUTHENTICATED") == "INVALID_MFA_CODE"
        refused = await gql(DISABLE_TOTP, token=token)
        assert reason_of(refused, "FORBIDDEN") == "REAUTHENTICATION_REQUIRED"

    async def test_reauthenticate_with_nothing_is_bad_user_input(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        tokens = await sign_in(gql, test_user)

        response = await reauthenticate(gql, tokens.access)

        assert response.error_fields() == ["input"]


class TestAdminReset:
    async def test_a_superuser_removes_the_factors_and_ends_the_sessions(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        superuser_token: str,
        db_session: AsyncSession,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        with_factor = completed(
            await complete(gql, await challenge_for(gql, test_user), totpCode=enrolled.totp.now())
        )

        response = await gql(RESET_USER_MFA, {"id": str(test_user.id)}, token=superuser_token)

        assert data_of(response, "resetUserMfa") == {
            "id": str(test_user.id),
            "email": test_user.email,
        }
        for ended in (enrolled.tokens, with_factor):
            me = await gql(ME, token=ended.access)
            assert reason_of(me, "UNAUTHENTICATED") == "SESSION_ENDED"
        for model in (TotpFactor, RecoveryCode):
            count = select(func.count()).select_from(model).where(model.user_id == test_user.id)
            assert await db_session.scalar(count) == 0
        # The superuser's own session is untouched; the target signs in with the password.
        assert data_of(await gql(ME, token=superuser_token), "me")["email"] != test_user.email
        again = await sign_in(gql, test_user)
        assert await my_mfa(gql, again.access) == DISABLED

    async def test_a_non_superuser_is_forbidden(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        test_user: User,
        db_session: AsyncSession,
    ) -> None:
        enrolled = await enrol(gql, clock, test_user)
        other = await create_user(db_session, email="other@example.com", password=ADMIN_PASSWORD)
        other_tokens = await sign_in(gql, other, ADMIN_PASSWORD)

        response = await gql(RESET_USER_MFA, {"id": str(test_user.id)}, token=other_tokens.access)

        assert reason_of(response, "FORBIDDEN") == "SUPERUSER_REQUIRED"
        assert response.data is None
        assert (await my_mfa(gql, enrolled.tokens.access))["enabled"] is True


class TestMfaEnabledOnUserPages:
    async def test_a_page_of_users_asks_for_the_flag_once(
        self,
        gql: GraphQLClient,
        clock: FrozenDateTimeFactory,
        async_test_db: tuple[AsyncEngine, SessionFactory],
        test_user: User,
        test_superuser: User,
    ) -> None:
        await enrol(gql, clock, test_user)
        for index in range(5):
            await create_user_in(async_test_db, f"reader{index}@example.com")
        admin = await sign_in(gql, test_superuser, ADMIN_PASSWORD)
        engine, _ = async_test_db
        statements: list[str] = []
        event.listen(
            engine.sync_engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_: statements.append(statement),
        )

        response = await gql(
            "{ users(first: 20) { edges { node { email mfaEnabled } } } }", token=admin.access
        )

        flags = {
            edge["node"]["email"]: edge["node"]["mfaEnabled"]
            for edge in data_of(response, "users")["edges"]
        }
        assert flags[test_user.email] is True
        assert flags[test_superuser.email] is False
        assert len(flags) == 7
        assert sum("FROM totp_factors" in statement for statement in statements) == 1


async def create_user_in(async_test_db: tuple[AsyncEngine, SessionFactory], email: str) -> None:
    _, session_factory = async_test_db
    async with session_factory() as session:
        await create_user(session, email=email)
