"""An account's owner and their data: a copy of all of it (exportMyData, GDPR's right of
access), and deleting the account (deleteMe, as app stores require)."""

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import auth_sessions as sessions_crud
from gql_app.crud import mfa as mfa_crud
from gql_app.crud import passkeys as passkeys_crud
from gql_app.crud import security_events as events_crud
from gql_app.crud import users as users_crud
from gql_app.db import release_connection
from gql_app.error_reasons import FieldErrorCode
from gql_app.errors import EmailDeliveryError, InputValidationError
from gql_app.models.base import utc_now
from gql_app.security.passwords import verify_password
from gql_app.services.account_deletion import delete_account
from gql_app.services.jobs import JobContext
from gql_app.services.mfa import second_factor_enabled
from gql_app.services.recent_authentication import require_recent_authentication
from gql_app.services.security_events import SecurityEventType, record_viewer_event
from gql_app.services.viewer import Viewer

logger = logging.getLogger(__name__)

# Bumped when a field changes meaning or goes, so that readers of old exports can tell.
EXPORT_FORMAT = 1


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def export_my_data(
    *, session: AsyncSession, settings: Settings, viewer: Viewer
) -> dict[str, Any]:
    """Everything stored about the viewer, as JSON, without a secret, hash or key: the
    profile, every session, the second factors, the passkeys and the security events."""
    user = viewer.user
    has_factor = await second_factor_enabled(session=session, user_id=user.id)
    require_recent_authentication(viewer=viewer, settings=settings, has_second_factor=has_factor)
    totp = await mfa_crud.get_totp(session=session, user_id=user.id)
    exported = {
        "format": EXPORT_FORMAT,
        "exported_at": utc_now().isoformat(),
        "profile": {
            "id": str(user.id),
            "email": user.email,
            "full_name": user.full_name,
            "is_active": user.is_active,
            "is_superuser": user.is_superuser,
            "is_verified": user.is_verified,
            "created_at": _when(user.created_at),
            "updated_at": _when(user.updated_at),
        },
        "sessions": [
            {
                "id": str(auth_session.id),
                "created_at": _when(auth_session.created_at),
                "last_used_at": _when(auth_session.last_used_at),
                "expires_at": _when(auth_session.expires_at),
                "revoked_at": _when(auth_session.revoked_at),
                "user_agent": auth_session.user_agent,
                "ip_address": auth_session.ip_address,
                "auth_methods": list(auth_session.auth_methods),
                "authenticated_at": _when(auth_session.authenticated_at),
            }
            for auth_session in await sessions_crud.list_all_for_user(
                session=session, user_id=user.id
            )
        ],
        "second_factors": {
            "totp": None
            if totp is None
            else {"created_at": _when(totp.created_at), "confirmed_at": _when(totp.confirmed_at)},
            "recovery_codes": [
                {"created_at": _when(code.created_at), "used_at": _when(code.used_at)}
                for code in await mfa_crud.list_recovery_codes(session=session, user_id=user.id)
            ],
        },
        "passkeys": [
            {
                "id": str(passkey.id),
                "name": passkey.name,
                "created_at": _when(passkey.created_at),
                "last_used_at": _when(passkey.last_used_at),
                "backed_up": passkey.backed_up,
                "transports": list(passkey.transports),
                "authenticator_model": passkey.aaguid,
            }
            for passkey in await passkeys_crud.list_for_user(session=session, user_id=user.id)
        ],
        "security_events": [
            {
                "id": str(event.id),
                "type": event.type,
                "occurred_at": _when(event.occurred_at),
                "ip_address": event.ip_address,
                "user_agent": event.user_agent,
                "session_id": str(event.session_id) if event.session_id else None,
                "details": event.details,
            }
            for event in await events_crud.list_all_for_user(session=session, user_id=user.id)
        ],
    }
    await record_viewer_event(session=session, viewer=viewer, type=SecurityEventType.DATA_EXPORTED)
    await session.commit()
    return exported


async def delete_me(
    *, session: AsyncSession, settings: Settings, viewer: Viewer, password: str
) -> str | None:
    """The viewer's account deleted, once the password (and on an account with a second
    factor, a recent second factor) proves it is theirs; the address it had, for the
    confirmation mail, or None when it was deleted meanwhile."""
    user = viewer.user
    if await second_factor_enabled(session=session, user_id=user.id):
        require_recent_authentication(viewer=viewer, settings=settings, has_second_factor=True)
    # Checking the password takes a hashing thread for a while: no connection waits.
    await release_connection(session)
    if not (await verify_password(password, user.password_hash)).valid:
        raise InputValidationError.single(
            "password", FieldErrorCode.WRONG_PASSWORD, "The password is not right"
        )
    current = await users_crud.get_for_update(session=session, user_id=user.id)
    if current is None:
        return None
    await delete_account(session=session, user=current, viewer=viewer)
    await session.commit()
    return current.email


async def deliver_account_deleted_notice(context: JobContext, *, email: str) -> None:
    """The confirmation, to the address the account had. The account is gone, so a failure
    has nowhere to be noted but the log."""
    try:
        await context.email.send_security_notice(
            to=email, subject="Your account was deleted", template="security_account_deleted.txt"
        )
    except EmailDeliveryError:
        logger.warning("the notice of an account's deletion could not be sent")
