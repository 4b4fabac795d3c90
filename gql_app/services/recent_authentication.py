"""Recent authentication ("step-up"): the changes a stolen session should not make alone
ask that the session proved who it is a short while ago."""

from datetime import timedelta

from gql_app.config import Settings
from gql_app.error_reasons import ErrorReason
from gql_app.errors import PermissionDeniedError
from gql_app.models.base import utc_now
from gql_app.services.viewer import Viewer

# RFC 8176 authentication method references: how a session proved who it is.
PASSWORD_METHOD = "pwd"  # noqa: S105 - a method name, not a password
ONE_TIME_CODE_METHOD = "otp"
MULTIPLE_FACTORS_METHOD = "mfa"
# A passkey: a key held in hardware, and "user" when the authenticator verified the person
# (a PIN or biometric), which makes it two factors in one.
HARDWARE_KEY_METHOD = "hwk"
USER_VERIFIED_METHOD = "user"


def proves_multiple_factors(auth_methods: list[str]) -> bool:
    return MULTIPLE_FACTORS_METHOD in auth_methods or (
        HARDWARE_KEY_METHOD in auth_methods and USER_VERIFIED_METHOD in auth_methods
    )


def require_recent_authentication(
    *, viewer: Viewer, settings: Settings, has_second_factor: bool
) -> None:
    """Refuses the change unless the session proved who it is within
    REAUTH_MAX_AGE_SECONDS, with a second factor when the account has one."""
    auth_session = viewer.auth_session
    recent = utc_now() - auth_session.authenticated_at <= timedelta(
        seconds=settings.reauth_max_age_seconds
    )
    with_factor = proves_multiple_factors(auth_session.auth_methods)
    if not recent or (has_second_factor and not with_factor):
        raise PermissionDeniedError(ErrorReason.REAUTHENTICATION_REQUIRED)
