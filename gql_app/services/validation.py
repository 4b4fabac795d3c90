from email_validator import EmailNotValidError, validate_email

from gql_app.errors import FieldError
from gql_app.models.user import EMAIL_MAX_LENGTH, FULL_NAME_MAX_LENGTH

SEARCH_MAX_LENGTH = EMAIL_MAX_LENGTH


def normalize_email(raw: str, *, field: str = "email") -> str | FieldError:
    """The canonical, lowercased form of an address, or why it is not one."""
    candidate = raw.strip()
    if not candidate:
        return FieldError(field=field, message="Email is required")
    if len(candidate) > EMAIL_MAX_LENGTH:
        return FieldError(field=field, message="Email is too long")
    try:
        validated = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as error:
        return FieldError(field=field, message=f"Invalid email address: {error}")
    return validated.normalized.lower()


def clean_full_name(raw: str | None, *, field: str = "full_name") -> str | FieldError | None:
    if raw is None:
        return None
    name = " ".join(raw.split())
    if not name:
        return None
    if len(name) > FULL_NAME_MAX_LENGTH:
        return FieldError(
            field=field, message=f"Full name must be at most {FULL_NAME_MAX_LENGTH} characters"
        )
    if any(not character.isprintable() for character in name):
        return FieldError(field=field, message="Full name contains invalid characters")
    return name


def clean_search(raw: str | None, *, field: str = "search") -> str | FieldError | None:
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if len(text) > SEARCH_MAX_LENGTH:
        return FieldError(
            field=field, message=f"Search must be at most {SEARCH_MAX_LENGTH} characters"
        )
    if any(not character.isprintable() for character in text):
        return FieldError(field=field, message="Search contains invalid characters")
    return text
