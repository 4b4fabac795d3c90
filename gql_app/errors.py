"""Domain errors raised by services; the API layer maps each to a GraphQL error code."""

from dataclasses import dataclass
from enum import StrEnum


class DomainError(Exception):
    default_message = "Request failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class AuthenticationError(DomainError):
    default_message = "Authentication required"


class InvalidCredentialsError(AuthenticationError):
    default_message = "Invalid credentials"


class PermissionDeniedError(DomainError):
    default_message = "You are not allowed to do this"


class NotFoundError(DomainError):
    default_message = "Not found"


class ConflictError(DomainError):
    default_message = "Conflict"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class InputValidationError(DomainError):
    default_message = "Invalid input"

    def __init__(self, fields: list[FieldError], message: str | None = None) -> None:
        if not fields:
            raise ValueError("an input validation error names at least one field")
        self.fields = fields
        super().__init__(message or fields[0].message)

    @classmethod
    def single(cls, field: str, message: str) -> "InputValidationError":
        return cls([FieldError(field=field, message=message)])


class EmailDeliveryError(DomainError):
    default_message = "The email could not be sent; try again later"


class RateLimitedError(DomainError):
    default_message = "Too many attempts; try again later"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        # Whole seconds until an attempt can succeed again; never less than one.
        self.retry_after = max(1, retry_after)
        super().__init__(message)


class Unavailable(StrEnum):
    """What the service is missing right now."""

    DATABASE = "database"
    RATE_LIMITER = "rate limiter"
    PASSWORD_HASHING = "password hashing"  # noqa: S105 - a name, not a secret


_UNAVAILABLE_MESSAGES = {
    Unavailable.DATABASE: "The service cannot reach its database; try again shortly",
    Unavailable.RATE_LIMITER: "The service cannot check its rate limits; try again shortly",
    Unavailable.PASSWORD_HASHING: "Too many sign-ins are being checked; try again shortly",
}


class ServiceUnavailableError(DomainError):
    """A dependency is down or saturated: the request did nothing and may be retried."""

    def __init__(self, missing: Unavailable, *, retry_after: int) -> None:
        self.missing = missing
        # Whole seconds a client should wait before retrying; never less than one.
        self.retry_after = max(1, retry_after)
        super().__init__(_UNAVAILABLE_MESSAGES[missing])
