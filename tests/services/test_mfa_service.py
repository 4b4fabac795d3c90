"""Setting up, confirming, renewing and removing second factors (services/mfa.py)."""

import base64
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.error_reasons import ErrorReason, FieldErrorCode
from gql_app.errors import ConflictError, InputValidationError, PermissionDeniedError
from gql_app.models import RecoveryCode, TotpFactor, User
from gql_app.security import recovery_codes
from gql_app.services import accounts as accounts_service
from gql_app.services import mfa as mfa_service
from gql_app.services.accounts import PasswordChange, ProfileChanges
from gql_app.services.mfa import MfaMethod
from gql_app.services.viewer import Viewer
from tests.auth_factories import create_auth_session
from tests.factories import STRONG_PASSWORD, USER_PASSWORD, create_user
from tests.fixtures.database import revoked
from tests.services.support import CollectingScheduler, viewer_for


async def with_both_factors(session: AsyncSession, user: User) -> Viewer:
    """A viewer whose session signed in with the password and the app just now."""
    viewer = await viewer_for(session, user)
    viewer.auth_session.auth_methods = ["pwd", "otp", "mfa"]
    await session.commit()
    return viewer


async def enrolled(session: AsyncSession, settings: Settings, user: User) -> tuple[str, list[str]]:
    """An account with its authenticator app on: the app's secret and the recovery codes."""
    viewer = await viewer_for(session, user)
    enrollment = await mfa_service.start_totp_enrollment(
        session=session, settings=settings, viewer=viewer
    )
    codes = await mfa_service.confirm_totp_enrollment(
        session=session,
        settings=settings,
        viewer=viewer,
        code=pyotp.TOTP(enrollment.secret).now(),
    )
    return enrollment.secret, codes


class TestEnrollment:
    async def test_gives_the_app_a_new_secret_as_a_uri_and_a_qr_code(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)

        enrollment = await mfa_service.start_totp_enrollment(
            session=db_session, settings=settings, viewer=viewer
        )

        assert len(base64.b32decode(enrollment.secret)) == 20
        parsed = pyotp.parse_uri(enrollment.otpauth_uri)
        assert isinstance(parsed, pyotp.TOTP)
        assert (parsed.secret, parsed.name, parsed.issuer) == (
            enrollment.secret,
            test_user.email,
            settings.mfa_issuer,
        )
        assert enrollment.qr_code_svg.startswith("<svg")
        status = await mfa_service.mfa_status(session=db_session, viewer=viewer)
        assert (status.enabled, status.methods) == (False, [])

    async def test_the_secret_is_stored_encrypted(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        enrollment = await mfa_service.start_totp_enrollment(
            session=db_session, settings=settings, viewer=viewer
        )

        async with session_factory() as other:
            stored = (await other.scalars(select(TotpFactor))).one().encrypted_secret
        assert enrollment.secret.encode() not in stored
        assert base64.b32decode(enrollment.secret) not in stored

    async def test_starting_again_replaces_a_secret_never_confirmed(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        first = await mfa_service.start_totp_enrollment(
            session=db_session, settings=settings, viewer=viewer
        )

        second = await mfa_service.start_totp_enrollment(
            session=db_session, settings=settings, viewer=viewer
        )

        assert first.secret != second.secret
        with pytest.raises(InputValidationError):
            await mfa_service.confirm_totp_enrollment(
                session=db_session,
                settings=settings,
                viewer=viewer,
                code=pyotp.TOTP(first.secret).now(),
            )
        assert len((await db_session.scalars(select(TotpFactor))).all()) == 1

    async def test_an_account_with_the_app_on_must_turn_it_off_first(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        await enrolled(db_session, settings, test_user)
        viewer = await viewer_for(db_session, test_user)

        with pytest.raises(ConflictError) as caught:
            await mfa_service.start_totp_enrollment(
                session=db_session, settings=settings, viewer=viewer
            )

        assert caught.value.reason is ErrorReason.MFA_ALREADY_ENABLED


class TestConfirmation:
    async def test_a_current_code_turns_it_on_and_gives_ten_recovery_codes_once(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        _, codes = await enrolled(db_session, settings, test_user)

        assert len(codes) == len(set(codes)) == 10
        viewer = await viewer_for(db_session, test_user)
        status = await mfa_service.mfa_status(session=db_session, viewer=viewer)
        assert status == mfa_service.MfaStatus(
            enabled=True,
            methods=[MfaMethod.TOTP, MfaMethod.RECOVERY_CODE],
            recovery_codes_remaining=10,
        )
        async with session_factory() as other:
            stored = {row.code_hash for row in (await other.scalars(select(RecoveryCode))).all()}
        assert stored == {
            recovery_codes.recovery_code_hash(
                code.replace("-", ""), key=settings.recovery_code_keys[0]
            )
            for code in codes
        }
        assert not any(code.replace("-", "") in "".join(stored) for code in codes)

    @pytest.mark.parametrize("code", ["000000", "not a code", ""])
    async def test_a_wrong_code_is_refused_on_the_field(
        self, db_session: AsyncSession, settings: Settings, test_user: User, code: str
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        enrollment = await mfa_service.start_totp_enrollment(
            session=db_session, settings=settings, viewer=viewer
        )
        if code == pyotp.TOTP(enrollment.secret).now():
            code = "999999" if code == "000000" else code

        with pytest.raises(InputValidationError) as caught:
            await mfa_service.confirm_totp_enrollment(
                session=db_session, settings=settings, viewer=viewer, code=code
            )

        [problem] = caught.value.fields
        assert (problem.field, problem.code) == ("code", FieldErrorCode.WRONG_CODE)
        status = await mfa_service.mfa_status(session=db_session, viewer=viewer)
        assert status.enabled is False

    async def test_a_code_without_a_started_enrollment_is_wrong(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)

        with pytest.raises(InputValidationError):
            await mfa_service.confirm_totp_enrollment(
                session=db_session, settings=settings, viewer=viewer, code="123456"
            )


class TestRecoveryCodes:
    async def test_regenerating_replaces_every_code(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        _, first = await enrolled(db_session, settings, test_user)
        viewer = await with_both_factors(db_session, test_user)

        second = await mfa_service.regenerate_recovery_codes(
            session=db_session, settings=settings, viewer=viewer
        )

        assert len(second) == 10
        assert not set(first) & set(second)
        status = await mfa_service.mfa_status(session=db_session, viewer=viewer)
        assert status.recovery_codes_remaining == 10

    async def test_there_are_none_to_regenerate_without_the_app(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)

        with pytest.raises(ConflictError) as caught:
            await mfa_service.regenerate_recovery_codes(
                session=db_session, settings=settings, viewer=viewer
            )

        assert caught.value.reason is ErrorReason.MFA_NOT_ENABLED


class TestTurningItOff:
    async def test_disabling_removes_the_secret_and_the_codes(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        await enrolled(db_session, settings, test_user)
        viewer = await with_both_factors(db_session, test_user)

        await mfa_service.disable_totp(session=db_session, settings=settings, viewer=viewer)

        assert (await db_session.scalars(select(TotpFactor))).all() == []
        assert (await db_session.scalars(select(RecoveryCode))).all() == []
        status = await mfa_service.mfa_status(session=db_session, viewer=viewer)
        assert status.enabled is False

    async def test_a_superusers_reset_also_ends_the_accounts_sessions(
        self,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        test_user: User,
    ) -> None:
        await enrolled(db_session, settings, test_user)
        device = await create_auth_session(db_session, test_user)

        admin = await viewer_for(db_session, await create_user(db_session, is_superuser=True))

        await mfa_service.reset_user_mfa(
            session=db_session, settings=settings, viewer=admin, user=test_user
        )

        assert (await db_session.scalars(select(TotpFactor))).all() == []
        assert await revoked(session_factory, device.id)


class TestRecentAuthenticationIsAsked:
    async def test_turning_it_off_needs_a_session_that_proved_both_factors(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        await enrolled(db_session, settings, test_user)
        password_only = await viewer_for(db_session, test_user)

        for change in (
            mfa_service.disable_totp(session=db_session, settings=settings, viewer=password_only),
            mfa_service.regenerate_recovery_codes(
                session=db_session, settings=settings, viewer=password_only
            ),
        ):
            with pytest.raises(PermissionDeniedError) as caught:
                await change
            assert caught.value.reason is ErrorReason.REAUTHENTICATION_REQUIRED

    async def test_setting_it_up_needs_a_recent_sign_in(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        viewer.auth_session.authenticated_at -= timedelta(
            seconds=settings.reauth_max_age_seconds + 1
        )

        with pytest.raises(PermissionDeniedError) as caught:
            await mfa_service.start_totp_enrollment(
                session=db_session, settings=settings, viewer=viewer
            )

        assert caught.value.reason is ErrorReason.REAUTHENTICATION_REQUIRED

    async def test_moving_the_email_needs_a_recent_sign_in_renaming_does_not(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        viewer = await viewer_for(db_session, test_user)
        viewer.auth_session.authenticated_at -= timedelta(
            seconds=settings.reauth_max_age_seconds + 1
        )
        await db_session.commit()
        jobs = CollectingScheduler()

        renamed = await accounts_service.update_me(
            session=db_session,
            settings=settings,
            viewer=viewer,
            changes=ProfileChanges(full_name="Ada"),
            jobs=jobs,
        )
        with pytest.raises(PermissionDeniedError) as caught:
            await accounts_service.update_me(
                session=db_session,
                settings=settings,
                viewer=viewer,
                changes=ProfileChanges(email="elsewhere@example.com"),
                jobs=jobs,
            )

        assert renamed.full_name == "Ada"
        assert caught.value.reason is ErrorReason.REAUTHENTICATION_REQUIRED

    async def test_the_password_alone_does_not_change_it_on_an_account_with_mfa(
        self, db_session: AsyncSession, settings: Settings, test_user: User
    ) -> None:
        await enrolled(db_session, settings, test_user)
        password_only = await viewer_for(db_session, test_user)

        with pytest.raises(PermissionDeniedError) as caught:
            await accounts_service.change_password(
                session=db_session,
                settings=settings,
                viewer=password_only,
                change=PasswordChange(current_password=USER_PASSWORD, new_password=STRONG_PASSWORD),
            )

        assert caught.value.reason is ErrorReason.REAUTHENTICATION_REQUIRED
