"""Second factors of one's own account: setting up an authenticator app, its recovery
codes, turning it off; and a superuser's reset of another account's."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import auth_sessions as sessions_crud
from gql_app.crud import mfa as mfa_crud
from gql_app.crud import passkeys as passkeys_crud
from gql_app.crud import users as users_crud
from gql_app.error_reasons import ErrorReason, FieldErrorCode
from gql_app.errors import ConflictError, InputValidationError
from gql_app.models import TotpFactor, User
from gql_app.models.base import utc_now
from gql_app.security import recovery_codes, totp
from gql_app.security.encryption import seal, unseal
from gql_app.services.recent_authentication import require_recent_authentication
from gql_app.services.security_events import (
    SecurityEventType,
    record_security_event,
    record_viewer_event,
)
from gql_app.services.viewer import Viewer


class MfaMethod(StrEnum):
    TOTP = "TOTP"
    RECOVERY_CODE = "RECOVERY_CODE"
    PASSKEY = "PASSKEY"


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    secret: str
    otpauth_uri: str
    qr_code_svg: str


@dataclass(frozen=True, slots=True)
class MfaStatus:
    enabled: bool
    methods: list[MfaMethod]
    recovery_codes_remaining: int


def _bound_to(user_id: uuid.UUID) -> bytes:
    return f"totp:{user_id}".encode()


def totp_secret_of(factor: TotpFactor, settings: Settings) -> str:
    return unseal(
        factor.encrypted_secret,
        keys=settings.key_encryption_secrets,
        bound_to=_bound_to(factor.user_id),
    ).decode()


async def start_totp_enrollment(
    *, session: AsyncSession, settings: Settings, viewer: Viewer
) -> TotpEnrollment:
    """A new secret for the account's authenticator app, replacing one never confirmed."""
    require_recent_authentication(viewer=viewer, settings=settings, has_second_factor=False)
    user = viewer.user
    # One enrolment of an account at a time: a double click must not collide on the row.
    await users_crud.get_for_update(session=session, user_id=user.id)
    existing = await mfa_crud.get_totp(session=session, user_id=user.id)
    if existing is not None and existing.confirmed_at is not None:
        raise ConflictError(ErrorReason.MFA_ALREADY_ENABLED)
    secret = totp.new_secret()
    await mfa_crud.put_unconfirmed_totp(
        session=session,
        user_id=user.id,
        encrypted_secret=seal(
            secret.encode(), key=settings.key_encryption_secret, bound_to=_bound_to(user.id)
        ),
        now=utc_now(),
    )
    await session.commit()
    uri = totp.provisioning_uri(secret, account=user.email, issuer=settings.mfa_issuer)
    return TotpEnrollment(secret=secret, otpauth_uri=uri, qr_code_svg=totp.qr_code_svg(uri))


def _wrong_code() -> InputValidationError:
    return InputValidationError.single(
        "code", FieldErrorCode.WRONG_CODE, "That is not the code the app shows now"
    )


async def confirm_totp_enrollment(
    *, session: AsyncSession, settings: Settings, viewer: Viewer, code: str
) -> list[str]:
    """Turn the app on with a code it shows; the recovery codes, shown this once."""
    require_recent_authentication(viewer=viewer, settings=settings, has_second_factor=False)
    user = viewer.user
    factor = await mfa_crud.get_totp(session=session, user_id=user.id)
    if factor is not None and factor.confirmed_at is not None:
        raise ConflictError(ErrorReason.MFA_ALREADY_ENABLED)
    if factor is None:
        raise _wrong_code()
    now = utc_now()
    step = totp.matching_step(totp_secret_of(factor, settings), code, at=now)
    if step is None or not await mfa_crud.use_step(session=session, user_id=user.id, step=step):
        raise _wrong_code()
    await mfa_crud.confirm_totp(session=session, user_id=user.id, now=now)
    codes = await _new_recovery_codes(session=session, settings=settings, user=user)
    await record_viewer_event(
        session=session,
        viewer=viewer,
        type=SecurityEventType.MFA_ENABLED,
        details={"method": "TOTP"},
    )
    await session.commit()
    return codes


async def _new_recovery_codes(
    *, session: AsyncSession, settings: Settings, user: User
) -> list[str]:
    codes = recovery_codes.new_recovery_codes()
    hashes = [
        recovery_codes.recovery_code_hash(code.replace("-", ""), key=settings.recovery_code_keys[0])
        for code in codes
    ]
    await mfa_crud.replace_recovery_codes(
        session=session, user_id=user.id, code_hashes=hashes, now=utc_now()
    )
    return codes


async def regenerate_recovery_codes(
    *, session: AsyncSession, settings: Settings, viewer: Viewer
) -> list[str]:
    """New recovery codes; every earlier one stops working."""
    status = await mfa_status(session=session, viewer=viewer)
    if not status.enabled:
        raise ConflictError(ErrorReason.MFA_NOT_ENABLED)
    require_recent_authentication(viewer=viewer, settings=settings, has_second_factor=True)
    codes = await _new_recovery_codes(session=session, settings=settings, user=viewer.user)
    await record_viewer_event(
        session=session, viewer=viewer, type=SecurityEventType.RECOVERY_CODES_REGENERATED
    )
    await session.commit()
    return codes


async def disable_totp(*, session: AsyncSession, settings: Settings, viewer: Viewer) -> None:
    """The app and every recovery code gone."""
    status = await mfa_status(session=session, viewer=viewer)
    require_recent_authentication(
        viewer=viewer, settings=settings, has_second_factor=status.enabled
    )
    await mfa_crud.delete_factors(session=session, user_id=viewer.user.id)
    await record_viewer_event(
        session=session,
        viewer=viewer,
        type=SecurityEventType.MFA_DISABLED,
        details={"method": "TOTP"},
    )
    await session.commit()


async def mfa_status(*, session: AsyncSession, viewer: Viewer) -> MfaStatus:
    user_id = viewer.user.id
    factor = await mfa_crud.get_totp(session=session, user_id=user_id)
    if factor is None or factor.confirmed_at is None:
        return MfaStatus(enabled=False, methods=[], recovery_codes_remaining=0)
    remaining = await mfa_crud.count_unused_recovery_codes(session=session, user_id=user_id)
    methods = [MfaMethod.TOTP] + ([MfaMethod.RECOVERY_CODE] if remaining else [])
    if await passkeys_crud.count_for_user(session=session, user_id=user_id):
        methods.append(MfaMethod.PASSKEY)
    return MfaStatus(enabled=True, methods=methods, recovery_codes_remaining=remaining)


async def reset_user_mfa(
    *, session: AsyncSession, settings: Settings, viewer: Viewer, user: User
) -> User:
    """Another account's second factors and passkeys gone, and its sessions ended
    (superusers only; the resolver checks): whoever held them signs in again with the
    password alone. For
    one's own account, the same proof as disableTotp."""
    if user.id == viewer.user.id:
        status = await mfa_status(session=session, viewer=viewer)
        require_recent_authentication(
            viewer=viewer, settings=settings, has_second_factor=status.enabled
        )
    await mfa_crud.delete_factors(session=session, user_id=user.id)
    await passkeys_crud.delete_for_user(session=session, user_id=user.id)
    await sessions_crud.revoke_all_for_user(session=session, user_id=user.id, now=utc_now())
    if user.id == viewer.user.id:
        await record_viewer_event(
            session=session,
            viewer=viewer,
            type=SecurityEventType.MFA_DISABLED,
            details={"method": "TOTP"},
        )
    else:
        # The superuser's address and client are theirs, not for the owner's trail.
        await record_security_event(
            session=session,
            type=SecurityEventType.MFA_DISABLED,
            user_id=user.id,
            details={"by_admin": str(viewer.user.id)},
        )
    await session.commit()
    return user


async def second_factor_enabled(*, session: AsyncSession, user_id: uuid.UUID) -> bool:
    return await mfa_crud.totp_enabled(session=session, user_id=user_id)


async def end_pending_sign_ins(*, session: AsyncSession, user_id: uuid.UUID) -> None:
    """Challenges a password started are dropped (the caller commits)."""
    await mfa_crud.delete_challenges(session=session, user_id=user_id)


async def accounts_with_second_factor(
    *, session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    return await mfa_crud.users_with_totp(session=session, user_ids=user_ids)
