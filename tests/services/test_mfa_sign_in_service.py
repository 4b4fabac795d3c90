"""Signing in with a second factor, and proving one again (services/mfa_sign_in.py)."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pyotp
import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.error_reasons import ErrorReason
from gql_app.errors import (
    AuthenticationError,
    InputValidationError,
    InvalidCredentialsError,
    MfaRequiredError,
    PermissionDeniedError,
)
from gql_app.models import AuthSession, User
from gql_app.services import auth as auth_service
from gql_app.services import mfa_sign_in
from gql_app.services.auth import Credentials
from gql_app.services.client_info import ClientInfo
from gql_app.services.key_ring import KeyRing
from gql_app.services.mfa_sign_in import SecondFactor
from gql_app.services.passkey_challenges import DatabaseChallengeStore
from gql_app.services.recent_authentication import require_recent_authentication
from tests.factories import USER_PASSWORD
from tests.services.support import viewer_for
from tests.services.test_mfa_service import enrolled

NOW = datetime(2030, 6, 1, 8, 0, 10, tzinfo=UTC)
STEP = timedelta(seconds=30)


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(NOW) as frozen:
        yield frozen


async def challenged(session: AsyncSession, settings: Settings, user: User) -> MfaRequiredError:
    with pytest.raises(MfaRequiredError) as caught:
        await auth_service.login(
            challenges=DatabaseChallengeStore(),
            session=session,
            settings=settings,
            keys=KeyRing(settings),
            credentials=Credentials(email=user.email, password=USER_PASSWORD),
            client=ClientInfo(),
        )
    return caught.value


async def complete(
    session: AsyncSession, settings: Settings, challenge: str, factor: SecondFactor
) -> auth_service.IssuedTokens:
    return await mfa_sign_in.complete_login(
        challenges=DatabaseChallengeStore(),
        session=session,
        settings=settings,
        keys=KeyRing(settings),
        challenge=challenge,
        factor=factor,
        client=ClientInfo(),
    )


@pytest.mark.usefixtures("clock")
class TestPasswordThenFactor:
    async def test_a_right_password_answers_a_challenge_and_starts_no_session(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        await enrolled(db_session, settings, test_user)
        sessions_before = len((await db_session.scalars(select(AuthSession))).all())

        required = await challenged(db_session, settings, test_user)

        assert required.reason is ErrorReason.MFA_REQUIRED
        assert required.methods == ["TOTP", "RECOVERY_CODE"]
        assert required.expires_in == 300
        assert len(required.challenge) >= 43
        assert len((await db_session.scalars(select(AuthSession))).all()) == sessions_before

    async def test_a_wrong_password_says_nothing_of_the_second_factor(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        await enrolled(db_session, settings, test_user)

        with pytest.raises(InvalidCredentialsError):
            await auth_service.login(
                challenges=DatabaseChallengeStore(),
                session=db_session,
                settings=settings,
                keys=KeyRing(settings),
                credentials=Credentials(email=test_user.email, password="not the password"),
                client=ClientInfo(),
            )

    async def test_the_apps_code_signs_in_with_both_factors_in_the_token(
        self,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        clock: FrozenDateTimeFactory,
    ) -> None:
        secret, _ = await enrolled(db_session, settings, test_user)
        clock.tick(STEP)
        required = await challenged(db_session, settings, test_user)

        issued = await complete(
            db_session,
            settings,
            required.challenge,
            SecondFactor(totp_code=pyotp.TOTP(secret).now()),
        )

        claims = jwt.decode(issued.access_token, options={"verify_signature": False})
        assert claims["amr"] == ["pwd", "otp", "mfa"]
        assert claims["auth_time"] == int((NOW + STEP).timestamp())
        stored = await db_session.get(AuthSession, uuid.UUID(claims["sid"]))
        assert stored is not None
        assert stored.auth_methods == ["pwd", "otp", "mfa"]

    async def test_a_recovery_code_signs_in_once(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        _, codes = await enrolled(db_session, settings, test_user)
        first = await challenged(db_session, settings, test_user)

        await complete(
            db_session, settings, first.challenge, SecondFactor(recovery_code=codes[0].lower())
        )

        second = await challenged(db_session, settings, test_user)
        with pytest.raises(AuthenticationError) as caught:
            await complete(
                db_session, settings, second.challenge, SecondFactor(recovery_code=codes[0])
            )
        assert caught.value.reason is ErrorReason.INVALID_MFA_CODE

    async def test_a_code_works_once_even_inside_its_window(
        self,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        clock: FrozenDateTimeFactory,
    ) -> None:
        secret, _ = await enrolled(db_session, settings, test_user)
        clock.tick(STEP)
        code = pyotp.TOTP(secret).now()
        first = await challenged(db_session, settings, test_user)
        await complete(db_session, settings, first.challenge, SecondFactor(totp_code=code))

        second = await challenged(db_session, settings, test_user)
        with pytest.raises(AuthenticationError) as caught:
            await complete(db_session, settings, second.challenge, SecondFactor(totp_code=code))

        assert caught.value.reason is ErrorReason.INVALID_MFA_CODE

    @pytest.mark.parametrize(
        ("drift", "accepted"), [(-1, True), (1, True), (-2, False), (2, False)]
    )
    async def test_one_step_of_drift_is_accepted_two_are_not(
        self,
        *,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        clock: FrozenDateTimeFactory,
        drift: int,
        accepted: bool,
    ) -> None:
        secret, _ = await enrolled(db_session, settings, test_user)
        clock.tick(5 * STEP)
        required = await challenged(db_session, settings, test_user)
        now = datetime.now(UTC)
        code = pyotp.TOTP(secret).at(now + drift * STEP)
        window = {pyotp.TOTP(secret).at(now + d * STEP) for d in (-1, 0, 1)}
        if not accepted and code in window:
            pytest.fail("a code two steps away happens to equal one inside the window")

        attempt = complete(db_session, settings, required.challenge, SecondFactor(totp_code=code))
        if accepted:
            assert (await attempt).access_token
        else:
            with pytest.raises(AuthenticationError):
                await attempt

    async def test_the_fifth_wrong_factor_kills_the_challenge(
        self,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        clock: FrozenDateTimeFactory,
    ) -> None:
        secret, _ = await enrolled(db_session, settings, test_user)
        clock.tick(STEP)
        required = await challenged(db_session, settings, test_user)
        right = pyotp.TOTP(secret).now()
        wrong = "000000" if right != "000000" else "111111"
        for _ in range(5):
            with pytest.raises(AuthenticationError) as caught:
                await complete(
                    db_session, settings, required.challenge, SecondFactor(totp_code=wrong)
                )
            assert caught.value.reason is ErrorReason.INVALID_MFA_CODE

        with pytest.raises(AuthenticationError) as caught:
            await complete(db_session, settings, required.challenge, SecondFactor(totp_code=right))

        assert caught.value.reason is ErrorReason.MFA_CHALLENGE_INVALID

    async def test_a_challenge_lives_five_minutes_and_is_spent_by_its_sign_in(
        self,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        clock: FrozenDateTimeFactory,
    ) -> None:
        _, codes = await enrolled(db_session, settings, test_user)
        late = await challenged(db_session, settings, test_user)
        used = await challenged(db_session, settings, test_user)
        await complete(db_session, settings, used.challenge, SecondFactor(recovery_code=codes[0]))
        clock.tick(timedelta(seconds=301))

        for challenge, code in (
            (late.challenge, codes[1]),
            (used.challenge, codes[2]),
            ("nope", codes[3]),
        ):
            with pytest.raises(AuthenticationError) as caught:
                await complete(db_session, settings, challenge, SecondFactor(recovery_code=code))
            assert caught.value.reason is ErrorReason.MFA_CHALLENGE_INVALID


class TestRecentAuthentication:
    async def test_a_fresh_session_with_both_factors_may(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        viewer.auth_session.auth_methods = ["pwd", "otp", "mfa"]

        require_recent_authentication(viewer=viewer, settings=settings, has_second_factor=True)

    @pytest.mark.parametrize(
        ("methods", "age", "has_second_factor"),
        [
            (["pwd"], timedelta(0), True),
            (["pwd"], timedelta(seconds=601), False),
            (["pwd", "otp", "mfa"], timedelta(seconds=601), True),
        ],
        ids=["password-only-with-mfa", "too-old", "too-old-with-mfa"],
    )
    async def test_otherwise_reauthentication_is_required(
        self,
        *,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        methods: list[str],
        age: timedelta,
        has_second_factor: bool,
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        viewer.auth_session.auth_methods = methods
        viewer.auth_session.authenticated_at = datetime.now(UTC) - age

        with pytest.raises(PermissionDeniedError) as caught:
            require_recent_authentication(
                viewer=viewer, settings=settings, has_second_factor=has_second_factor
            )

        assert caught.value.reason is ErrorReason.REAUTHENTICATION_REQUIRED


class TestReauthenticate:
    async def test_the_password_refreshes_the_sessions_proof(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        viewer.auth_session.authenticated_at = datetime.now(UTC) - timedelta(hours=1)
        await db_session.commit()

        await mfa_sign_in.reauthenticate(
            challenges=DatabaseChallengeStore(),
            session=db_session,
            settings=settings,
            viewer=viewer,
            password=USER_PASSWORD,
            factor=None,
        )

        assert viewer.auth_session.auth_methods == ["pwd"]
        require_recent_authentication(viewer=viewer, settings=settings, has_second_factor=False)

    async def test_with_the_second_factor_too_it_satisfies_an_account_with_mfa(
        self,
        db_session: AsyncSession,
        settings: Settings,
        test_user: User,
        clock: FrozenDateTimeFactory,
    ) -> None:
        secret, _ = await enrolled(db_session, settings, test_user)
        clock.tick(STEP)
        viewer = await viewer_for(db_session, test_user)

        await mfa_sign_in.reauthenticate(
            challenges=DatabaseChallengeStore(),
            session=db_session,
            settings=settings,
            viewer=viewer,
            password=USER_PASSWORD,
            factor=SecondFactor(totp_code=pyotp.TOTP(secret).now()),
        )

        assert viewer.auth_session.auth_methods == ["pwd", "otp", "mfa"]
        require_recent_authentication(viewer=viewer, settings=settings, has_second_factor=True)

    @pytest.mark.usefixtures("clock")
    async def test_what_is_wrong_is_refused_with_its_reason(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        await enrolled(db_session, settings, test_user)
        viewer = await viewer_for(db_session, test_user)

        with pytest.raises(InvalidCredentialsError):
            await mfa_sign_in.reauthenticate(
                challenges=DatabaseChallengeStore(),
                session=db_session,
                settings=settings,
                viewer=viewer,
                password="wrong",
                factor=None,
            )
        with pytest.raises(AuthenticationError) as caught:
            await mfa_sign_in.reauthenticate(
                challenges=DatabaseChallengeStore(),
                session=db_session,
                settings=settings,
                viewer=viewer,
                password=None,
                factor=SecondFactor(recovery_code="AAAA-AAAA-AAAA"),
            )
        assert caught.value.reason is ErrorReason.INVALID_MFA_CODE
        with pytest.raises(InputValidationError):
            await mfa_sign_in.reauthenticate(
                challenges=DatabaseChallengeStore(),
                session=db_session,
                settings=settings,
                viewer=viewer,
                password=None,
                factor=None,
            )
