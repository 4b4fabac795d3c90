"""Proving a second factor: to finish a sign-in the password started (``complete_login``),
and to refresh a session's proof before a sensitive change (``reauthenticate``)."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import auth_sessions as sessions_crud
from gql_app.crud import mfa as mfa_crud
from gql_app.crud import users as users_crud
from gql_app.db import release_connection
from gql_app.error_reasons import ErrorReason, FieldErrorCode
from gql_app.errors import (
    AuthenticationError,
    InputValidationError,
    InvalidCredentialsError,
    PermissionDeniedError,
    WrongSecondFactorError,
)
from gql_app.models.base import utc_now
from gql_app.security import recovery_codes, tokens, totp
from gql_app.security.passwords import verify_password
from gql_app.services import auth as auth_service
from gql_app.services.auth import IssuedTokens
from gql_app.services.client_info import ClientInfo
from gql_app.services.key_ring import KeyRing
from gql_app.services.mfa import totp_secret_of
from gql_app.services.mfa_challenges import MAX_FAILED_FACTORS
from gql_app.services.passkey_challenges import CeremonyPurpose, PasskeyChallengeStore
from gql_app.services.passkey_sign_in import PasskeyAssertion, prove_passkey
from gql_app.services.recent_authentication import (
    MULTIPLE_FACTORS_METHOD,
    ONE_TIME_CODE_METHOD,
    PASSWORD_METHOD,
    proves_multiple_factors,
)
from gql_app.services.security_events import (
    SecurityEventType,
    record_security_event,
    record_viewer_event,
)
from gql_app.services.viewer import Viewer


@dataclass(frozen=True, slots=True)
class SecondFactor:
    """Exactly one of them (the GraphQL input is @oneOf)."""

    totp_code: str | None = None
    recovery_code: str | None = None
    passkey: PasskeyAssertion | None = None

    @property
    def method(self) -> str:
        """Its MfaMethod name, for the security trail."""
        if self.passkey is not None:
            return "PASSKEY"
        return "RECOVERY_CODE" if self.recovery_code is not None else "TOTP"


@dataclass(frozen=True, slots=True)
class PasskeyCeremony:
    """Which passkey challenge a factor's passkey answers, and whose passkey it must be."""

    purpose: CeremonyPurpose
    challenged_user_id: uuid.UUID | None


async def proven_factor_methods(
    *,
    session: AsyncSession,
    settings: Settings,
    challenges: PasskeyChallengeStore,
    user_id: uuid.UUID,
    factor: SecondFactor,
    ceremony: PasskeyCeremony,
    now: datetime,
) -> list[str] | None:
    """How the factor proves it is the account's (RFC 8176 names), spending it; None for a
    wrong code. A TOTP code's time step, or the recovery code, is accepted once, however
    many requests present it at once; a passkey that does not prove it raises."""
    if factor.passkey is not None:
        proven = await prove_passkey(
            session=session,
            settings=settings,
            challenges=challenges,
            assertion=factor.passkey,
            purpose=ceremony.purpose,
            challenged_user_id=ceremony.challenged_user_id,
            owner_id=user_id,
        )
        return proven.auth_methods
    if factor.totp_code is not None:
        spent = await _spend_totp_code(
            session=session, settings=settings, user_id=user_id, code=factor.totp_code, now=now
        )
    elif factor.recovery_code is not None:
        spent = await _spend_recovery_code(
            session=session,
            settings=settings,
            user_id=user_id,
            code=factor.recovery_code,
            now=now,
        )
    else:
        spent = False
    return [ONE_TIME_CODE_METHOD] if spent else None


async def _spend_totp_code(
    *, session: AsyncSession, settings: Settings, user_id: uuid.UUID, code: str, now: datetime
) -> bool:
    stored = await mfa_crud.get_totp(session=session, user_id=user_id)
    if stored is None or stored.confirmed_at is None:
        return False
    step = totp.matching_step(totp_secret_of(stored, settings), code, at=now)
    return step is not None and await mfa_crud.use_step(session=session, user_id=user_id, step=step)


async def _spend_recovery_code(
    *, session: AsyncSession, settings: Settings, user_id: uuid.UUID, code: str, now: datetime
) -> bool:
    typed = recovery_codes.normalized(code)
    if typed is None:
        return False
    return await mfa_crud.spend_recovery_code(
        session=session,
        user_id=user_id,
        code_hashes=[
            recovery_codes.recovery_code_hash(typed, key=key) for key in settings.recovery_code_keys
        ],
        now=now,
    )


def _distinct(methods: list[str]) -> list[str]:
    return list(dict.fromkeys(methods))


async def challenged_account_email(*, session: AsyncSession, challenge: str) -> str | None:
    """The address of the account a challenge belongs to, for its lockout; None for a
    challenge that does not exist."""
    found = await mfa_crud.get_challenge(
        session=session, token_hash=tokens.hash_opaque_token(challenge)
    )
    if found is None:
        return None
    user = await users_crud.get_by_id(session=session, user_id=found.user_id)
    return user.email if user is not None else None


async def complete_login(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    challenges: PasskeyChallengeStore,
    challenge: str,
    factor: SecondFactor,
    client: ClientInfo,
) -> IssuedTokens:
    now = utc_now()
    found = await mfa_crud.get_challenge(
        session=session, token_hash=tokens.hash_opaque_token(challenge)
    )
    if found is None or not await mfa_crud.claim_attempt(
        session=session, challenge_id=found.id, now=now, max_attempts=MAX_FAILED_FACTORS
    ):
        raise AuthenticationError(ErrorReason.MFA_CHALLENGE_INVALID)
    user = await users_crud.get_for_update(session=session, user_id=found.user_id)
    if user is None:
        raise AuthenticationError(ErrorReason.MFA_CHALLENGE_INVALID)
    # The attempt is counted before a passkey is checked, and committed with its challenge.
    factor_methods = await proven_factor_methods(
        session=session,
        settings=settings,
        challenges=challenges,
        user_id=found.user_id,
        factor=factor,
        ceremony=PasskeyCeremony(
            purpose=CeremonyPurpose.SECOND_FACTOR, challenged_user_id=found.user_id
        ),
        now=now,
    )
    if factor_methods is None:
        await record_security_event(
            session=session,
            type=SecurityEventType.MFA_CHALLENGE_FAILED,
            user_id=user.id,
            client=client,
            details={"method": factor.method},
        )
        # Committed now: the attempt counts, and is recorded, though an error is answered.
        await session.commit()
        raise WrongSecondFactorError(email=user.email)
    if not await mfa_crud.consume_challenge(session=session, challenge_id=found.id, now=now):
        raise AuthenticationError(ErrorReason.MFA_CHALLENGE_INVALID)
    if not user.is_active:
        raise PermissionDeniedError(ErrorReason.ACCOUNT_DISABLED)
    if factor.recovery_code is not None:
        await record_security_event(
            session=session,
            type=SecurityEventType.RECOVERY_CODE_USED,
            user_id=user.id,
            client=client,
            details={
                "remaining": await mfa_crud.count_unused_recovery_codes(
                    session=session, user_id=user.id
                )
            },
        )
    issued = await auth_service.start_session(
        session=session,
        settings=settings,
        keys=keys,
        user=user,
        client=client,
        now=now,
        auth_methods=_distinct(
            found.first_factor_methods + factor_methods + [MULTIPLE_FACTORS_METHOD]
        ),
    )
    await session.commit()
    return issued


async def reauthenticate(
    *,
    session: AsyncSession,
    settings: Settings,
    challenges: PasskeyChallengeStore,
    viewer: Viewer,
    password: str | None,
    factor: SecondFactor | None,
) -> None:
    """The session proves who it is again, now: with the password, a second factor, or
    both; sensitive changes then go through for REAUTH_MAX_AGE_SECONDS."""
    if password is None and factor is None:
        raise InputValidationError.single(
            "input", FieldErrorCode.REQUIRED, "Give the password, a second factor, or both"
        )
    user = viewer.user
    methods: list[str] = []
    if password is not None:
        # Checking the password takes a hashing thread for a while: no connection waits.
        await release_connection(session)
        if not (await verify_password(password, user.password_hash)).valid:
            await record_viewer_event(
                session=session,
                viewer=viewer,
                type=SecurityEventType.SIGN_IN_FAILED,
                details={"during": "reauthenticate"},
            )
            # Committed now: the failure is recorded though an error is answered.
            await session.commit()
            raise InvalidCredentialsError
        methods.append(PASSWORD_METHOD)
    now = utc_now()
    if factor is not None:
        factor_methods = await proven_factor_methods(
            session=session,
            settings=settings,
            challenges=challenges,
            user_id=user.id,
            factor=factor,
            # A passkey answers a sign-in ceremony (startPasskeySignIn), and must be yours.
            ceremony=PasskeyCeremony(purpose=CeremonyPurpose.SIGN_IN, challenged_user_id=None),
            now=now,
        )
        if factor_methods is None:
            await record_viewer_event(
                session=session,
                viewer=viewer,
                type=SecurityEventType.MFA_CHALLENGE_FAILED,
                details={"method": factor.method, "during": "reauthenticate"},
            )
            # Committed now: a spent step or code stays spent, and the failure recorded.
            await session.commit()
            raise WrongSecondFactorError(email=user.email)
        if factor.recovery_code is not None:
            await record_viewer_event(
                session=session,
                viewer=viewer,
                type=SecurityEventType.RECOVERY_CODE_USED,
                details={
                    "remaining": await mfa_crud.count_unused_recovery_codes(
                        session=session, user_id=user.id
                    )
                },
            )
        methods += factor_methods
        # A code exists only beside the password that set it up, so it proves a second
        # factor; a passkey is a factor of its own, and proves two only with the password
        # given here or with its user verification.
        if (
            factor.passkey is None
            or password is not None
            or proves_multiple_factors(factor_methods)
        ):
            methods.append(MULTIPLE_FACTORS_METHOD)
    await sessions_crud.mark_authenticated(
        session=session, auth_session=viewer.auth_session, auth_methods=methods, now=now
    )
    await session.commit()
