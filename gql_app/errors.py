"""Domain errors raised by services; the API layer maps each to a GraphQL error code.

Each error carries its reason (gql_app.error_reasons), which a client branches on; the
message, for people, comes with the reason unless a service has something more precise.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from gql_app.error_reasons import ErrorReason, FieldErrorCode
from gql_app.security.passkeys import PasskeyOptions

MESSAGES: dict[ErrorReason, str] = {
    ErrorReason.TOKEN_MISSING: "Authentication required",
    ErrorReason.TOKEN_INVALID: "Invalid access token",
    ErrorReason.TOKEN_EXPIRED: "Access token has expired",
    ErrorReason.SESSION_ENDED: "Session has ended",
    ErrorReason.INVALID_CREDENTIALS: "Invalid credentials",
    ErrorReason.REFRESH_TOKEN_INVALID: "Invalid refresh token",
    ErrorReason.REFRESH_TOKEN_REUSED: (
        "Refresh token was already used; the session has been revoked"
    ),
    ErrorReason.REFRESH_TOKEN_SUPERSEDED: (
        "Refresh token was replaced twice already; use the newest one"
    ),
    ErrorReason.REFRESH_TOKEN_MISSING: "No refresh token: pass one, or sign in again",
    ErrorReason.INVALID_MFA_CODE: "That code is not right",
    ErrorReason.MFA_CHALLENGE_INVALID: "This sign-in has expired; sign in again",
    ErrorReason.PASSKEY_CHALLENGE_INVALID: "This passkey request has expired; start again",
    ErrorReason.PASSKEY_NOT_RECOGNISED: "This passkey is not registered here",
    ErrorReason.PASSKEY_VERIFICATION_FAILED: "The passkey could not be verified",
    ErrorReason.MFA_REQUIRED: "Confirm it is you with a second factor to finish signing in",
    ErrorReason.REAUTHENTICATION_REQUIRED: "Confirm it is you to make this change",
    ErrorReason.MFA_REQUIRED_FOR_ROLE: "Superusers must sign in with a second factor",
    ErrorReason.CSRF_HEADER_MISSING: (
        "Requests that use the session cookie must send the X-Requested-With header"
    ),
    ErrorReason.ACCOUNT_DISABLED: "This account is disabled",
    ErrorReason.EMAIL_NOT_VERIFIED: "Confirm your email address before signing in",
    ErrorReason.SUPERUSER_REQUIRED: "Superuser privileges required",
    ErrorReason.CANNOT_DELETE_OWN_ACCOUNT: "You cannot delete your own account",
    ErrorReason.EMAIL_TAKEN: "An account with this email already exists",
    ErrorReason.LAST_SUPERUSER: "The last active superuser must stay an active superuser",
    ErrorReason.MFA_ALREADY_ENABLED: "An authenticator app is already set up; disable it first",
    ErrorReason.MFA_NOT_ENABLED: "No authenticator app is set up",
    ErrorReason.TOO_MANY_PASSKEYS: "This account has as many passkeys as it may; remove one first",
    ErrorReason.PASSKEY_ALREADY_REGISTERED: "This passkey is registered already",
    ErrorReason.USER_NOT_FOUND: "User not found",
    ErrorReason.SESSION_NOT_FOUND: "Session not found",
    ErrorReason.PASSKEY_NOT_FOUND: "Passkey not found",
    ErrorReason.BAD_USER_INPUT: "Invalid input",
    ErrorReason.RATE_LIMITED: "Too many attempts; try again later",
    ErrorReason.LOGIN_LOCKED: "Too many failed sign-ins for this address; try again later",
    ErrorReason.EMAIL_DELIVERY_FAILED: "The email could not be sent; try again later",
}


class DomainError(Exception):
    default_reason: ClassVar[ErrorReason]

    def __init__(self, reason: ErrorReason | None = None, *, message: str | None = None) -> None:
        self.reason = reason or self.default_reason
        self.message = message or MESSAGES[self.reason]
        super().__init__(self.message)


class AuthenticationError(DomainError):
    default_reason = ErrorReason.TOKEN_MISSING


class InvalidCredentialsError(AuthenticationError):
    default_reason = ErrorReason.INVALID_CREDENTIALS


class WrongSecondFactorError(AuthenticationError):
    """A wrong second factor for the account ``email``: it counts toward that account's
    sign-in lockout, as a wrong password does."""

    default_reason = ErrorReason.INVALID_MFA_CODE

    def __init__(self, *, email: str) -> None:
        self.email = email
        super().__init__()


class PermissionDeniedError(DomainError):
    default_reason = ErrorReason.SUPERUSER_REQUIRED


class NotFoundError(DomainError):
    default_reason = ErrorReason.USER_NOT_FOUND


class ConflictError(DomainError):
    default_reason = ErrorReason.EMAIL_TAKEN


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    code: FieldErrorCode
    message: str


class InputValidationError(DomainError):
    default_reason = ErrorReason.BAD_USER_INPUT

    def __init__(self, fields: list[FieldError], message: str | None = None) -> None:
        if not fields:
            raise ValueError("an input validation error names at least one field")
        self.fields = fields
        super().__init__(message=message or fields[0].message)

    @classmethod
    def single(cls, field: str, code: FieldErrorCode, message: str) -> "InputValidationError":
        return cls([FieldError(field=field, code=code, message=message)])


class MfaRequiredError(DomainError):
    """The password was right, and the account has a second factor: the sign-in waits for
    it, under ``challenge``."""

    default_reason = ErrorReason.MFA_REQUIRED

    def __init__(
        self,
        *,
        challenge: str,
        methods: list[str],
        expires_in: int,
        passkey_options: PasskeyOptions | None = None,
    ) -> None:
        self.challenge = challenge
        self.methods = methods
        self.expires_in = expires_in
        # With a passkey among the methods: the ceremony to answer with it.
        self.passkey_options = passkey_options
        super().__init__()


class EmailDeliveryError(DomainError):
    default_reason = ErrorReason.EMAIL_DELIVERY_FAILED


class RateLimitedError(DomainError):
    default_reason = ErrorReason.RATE_LIMITED

    def __init__(self, retry_after: int, reason: ErrorReason | None = None) -> None:
        # Whole seconds until an attempt can succeed again; never less than one.
        self.retry_after = max(1, retry_after)
        super().__init__(reason)


class Unavailable(StrEnum):
    """What the service is missing right now."""

    DATABASE = "database"
    RATE_LIMITER = "rate limiter"
    PASSWORD_HASHING = "password hashing"  # noqa: S105 - a name, not a secret
    PASSKEY_CHALLENGES = "passkey challenges"


UNAVAILABLE_REASONS: dict[Unavailable, ErrorReason] = {
    Unavailable.DATABASE: ErrorReason.DATABASE_UNAVAILABLE,
    Unavailable.RATE_LIMITER: ErrorReason.RATE_LIMITER_UNAVAILABLE,
    Unavailable.PASSWORD_HASHING: ErrorReason.PASSWORD_HASHING_BUSY,
    Unavailable.PASSKEY_CHALLENGES: ErrorReason.PASSKEY_CHALLENGES_UNAVAILABLE,
}

_UNAVAILABLE_MESSAGES = {
    Unavailable.DATABASE: "The service cannot reach its database; try again shortly",
    Unavailable.RATE_LIMITER: "The service cannot check its rate limits; try again shortly",
    Unavailable.PASSWORD_HASHING: "Too many sign-ins are being checked; try again shortly",
    Unavailable.PASSKEY_CHALLENGES: "The service cannot keep passkey requests; try again shortly",
}


class ServiceUnavailableError(DomainError):
    """A dependency is down or saturated: the request did nothing and may be retried."""

    default_reason = ErrorReason.DATABASE_UNAVAILABLE

    def __init__(self, missing: Unavailable, *, retry_after: int) -> None:
        self.missing = missing
        # Whole seconds a client should wait before retrying; never less than one.
        self.retry_after = max(1, retry_after)
        super().__init__(UNAVAILABLE_REASONS[missing], message=_UNAVAILABLE_MESSAGES[missing])
