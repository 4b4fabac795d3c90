from email_validator import EmailNotValidError, validate_email

from gql_app.error_reasons import FieldErrorCode
from gql_app.errors import FieldError
from gql_app.models.passkey import PASSKEY_NAME_MAX_LENGTH
from gql_app.models.user import EMAIL_MAX_LENGTH, FULL_NAME_MAX_LENGTH

SEARCH_MAX_LENGTH = EMAIL_MAX_LENGTH


def normalize_email(raw: str, *, field: str = "email") -> str | FieldError:
    """The canonical, lowercased form of an address, or why it is not one."""
    candidate = raw.strip()
    if not candidate:
        return FieldError(field=field, code=FieldErrorCode.REQUIRED, message="Email is required")
    if len(candidate) > EMAIL_MAX_LENGTH:
        return FieldError(field=field, code=FieldErrorCode.TOO_LONG, message="Email is too long")
    try:
        validated = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as error:
        return FieldError(
            field=field,
            code=FieldErrorCode.INVALID_EMAIL,
            message=f"Invalid email address: {error}",
        )
    return validated.normalized.lower()


def clean_full_name(raw: str | None, *, field: str = "full_name") -> str | FieldError | None:
    return _clean_text(raw, field=field, label="Full name", max_length=FULL_NAME_MAX_LENGTH)


def clean_search(raw: str | None, *, field: str = "search") -> str | FieldError | None:
    return _clean_text(raw, field=field, label="Search", max_length=SEARCH_MAX_LENGTH)


def clean_passkey_name(raw: str | None, *, field: str = "name") -> str | FieldError | None:
    return _clean_text(raw, field=field, label="Name", max_length=PASSKEY_NAME_MAX_LENGTH)


def _clean_text(
    raw: str | None, *, field: str, label: str, max_length: int
) -> str | FieldError | None:
    """Free text with its whitespace collapsed; blank means absent."""
    if raw is None:
        return None
    text = " ".join(raw.split())
    if not text:
        return None
    if len(text) > max_length:
        return FieldError(
            field=field,
            code=FieldErrorCode.TOO_LONG,
            message=f"{label} must be at most {max_length} characters",
        )
    if any(not character.isprintable() for character in text):
        return FieldError(
            field=field,
            code=FieldErrorCode.INVALID_CHARACTERS,
            message=f"{label} contains invalid characters",
        )
    return text
