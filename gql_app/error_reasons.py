"""The stable identifiers a client branches on: ``extensions.reason`` and field error codes.

Every error carries ``extensions.code`` (the broad class, gql_app.api.error_codes) and
``extensions.reason`` (why, within that class). Where a code has no finer cases, its reason
is the code itself. The README's error table documents every member; a test walks them all.
Reasons never tell accounts apart: a stranger's address and a wrong password are both
INVALID_CREDENTIALS, and what only a right password earns (ACCOUNT_DISABLED,
EMAIL_NOT_VERIFIED) is said only after it was right.
"""

from enum import StrEnum


class ErrorReason(StrEnum):
    # UNAUTHENTICATED: send the user to sign in, except TOKEN_EXPIRED (refresh, then retry).
    TOKEN_MISSING = "TOKEN_MISSING"  # noqa: S105 - a reason, not a secret
    TOKEN_INVALID = "TOKEN_INVALID"  # noqa: S105
    TOKEN_EXPIRED = "TOKEN_EXPIRED"  # noqa: S105
    SESSION_ENDED = "SESSION_ENDED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    REFRESH_TOKEN_INVALID = "REFRESH_TOKEN_INVALID"  # noqa: S105
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"  # noqa: S105
    REFRESH_TOKEN_SUPERSEDED = "REFRESH_TOKEN_SUPERSEDED"  # noqa: S105
    # refreshToken or logout with no argument and no refresh cookie to fall back on.
    REFRESH_TOKEN_MISSING = "REFRESH_TOKEN_MISSING"  # noqa: S105
    # completeLogin: the factor was wrong (try again), or the challenge is spent, expired,
    # unknown or was failed too often (sign in again).
    INVALID_MFA_CODE = "INVALID_MFA_CODE"
    MFA_CHALLENGE_INVALID = "MFA_CHALLENGE_INVALID"
    # Passkeys: the challenge is unknown, used, expired or for another ceremony; no
    # passkey of the account (or of any account, at sign-in) has this credential id; the
    # credential does not prove what it must (origin, RP ID, signature, counter, flags).
    PASSKEY_CHALLENGE_INVALID = "PASSKEY_CHALLENGE_INVALID"
    PASSKEY_NOT_RECOGNISED = "PASSKEY_NOT_RECOGNISED"
    PASSKEY_VERIFICATION_FAILED = "PASSKEY_VERIFICATION_FAILED"

    # MFA_REQUIRED: the password was right; complete the sign-in with a second factor.
    MFA_REQUIRED = "MFA_REQUIRED"

    # FORBIDDEN
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    EMAIL_NOT_VERIFIED = "EMAIL_NOT_VERIFIED"
    SUPERUSER_REQUIRED = "SUPERUSER_REQUIRED"
    CANNOT_DELETE_OWN_ACCOUNT = "CANNOT_DELETE_OWN_ACCOUNT"
    # Sign in again, or reauthenticate, and retry: the change needs a recent proof.
    REAUTHENTICATION_REQUIRED = "REAUTHENTICATION_REQUIRED"
    MFA_REQUIRED_FOR_ROLE = "MFA_REQUIRED_FOR_ROLE"
    # The refresh cookie was to authorise the operation, but the request lacks the header
    # only a page the API trusts can add (X-Requested-With): perhaps a cross-site forgery.
    CSRF_HEADER_MISSING = "CSRF_HEADER_MISSING"

    # CONFLICT
    EMAIL_TAKEN = "EMAIL_TAKEN"
    LAST_SUPERUSER = "LAST_SUPERUSER"
    MFA_ALREADY_ENABLED = "MFA_ALREADY_ENABLED"
    MFA_NOT_ENABLED = "MFA_NOT_ENABLED"
    TOO_MANY_PASSKEYS = "TOO_MANY_PASSKEYS"
    PASSKEY_ALREADY_REGISTERED = "PASSKEY_ALREADY_REGISTERED"

    # NOT_FOUND
    USER_NOT_FOUND = "USER_NOT_FOUND"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    PASSKEY_NOT_FOUND = "PASSKEY_NOT_FOUND"

    # BAD_USER_INPUT: extensions.fields[].code says what is wrong with each field.
    BAD_USER_INPUT = "BAD_USER_INPUT"

    # RATE_LIMITED: wait extensions.retryAfter seconds.
    RATE_LIMITED = "RATE_LIMITED"
    # Sign-ins to one address, after its failed attempts; the same for every address.
    LOGIN_LOCKED = "LOGIN_LOCKED"

    EMAIL_DELIVERY_FAILED = "EMAIL_DELIVERY_FAILED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"

    # SERVICE_UNAVAILABLE: what is missing; retry after extensions.retryAfter seconds.
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
    RATE_LIMITER_UNAVAILABLE = "RATE_LIMITER_UNAVAILABLE"
    PASSKEY_CHALLENGES_UNAVAILABLE = "PASSKEY_CHALLENGES_UNAVAILABLE"
    PASSWORD_HASHING_BUSY = "PASSWORD_HASHING_BUSY"  # noqa: S105
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"

    # The document.
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    UNKNOWN_OPERATION = "UNKNOWN_OPERATION"
    FRAGMENT_CYCLE = "FRAGMENT_CYCLE"
    TOO_MANY_FIELDS = "TOO_MANY_FIELDS"
    TOO_MANY_REPEATED_FIELDS = "TOO_MANY_REPEATED_FIELDS"
    TOO_DEEP = "TOO_DEEP"
    TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
    TOO_MANY_DIRECTIVES = "TOO_MANY_DIRECTIVES"
    CHECK_TIME_EXCEEDED = "CHECK_TIME_EXCEEDED"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    PERSISTED_QUERY_INVALID = "PERSISTED_QUERY_INVALID"

    # The HTTP request itself, refused before any GraphQL work.
    BAD_REQUEST = "BAD_REQUEST"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    REQUEST_HEADER_FIELDS_TOO_LARGE = "REQUEST_HEADER_FIELDS_TOO_LARGE"


class FieldErrorCode(StrEnum):
    """``extensions.fields[].code``: what is wrong with one input field."""

    REQUIRED = "REQUIRED"
    TOO_SHORT = "TOO_SHORT"
    TOO_LONG = "TOO_LONG"
    TOO_COMMON = "TOO_COMMON"
    TOO_SIMILAR_TO_ACCOUNT = "TOO_SIMILAR_TO_ACCOUNT"
    INVALID_CHARACTERS = "INVALID_CHARACTERS"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_ID = "INVALID_ID"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    INVALID_CURSOR = "INVALID_CURSOR"
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - a code, not a secret
    WRONG_PASSWORD = "WRONG_PASSWORD"  # noqa: S105
    # A one-time code that is not the current one (or was used already).
    WRONG_CODE = "WRONG_CODE"
    # The same value twice where each must be unique (emails in a `gql-app seed` file).
    DUPLICATE = "DUPLICATE"
    # A variable that does not fit its GraphQL type.
    INVALID_VALUE = "INVALID_VALUE"
