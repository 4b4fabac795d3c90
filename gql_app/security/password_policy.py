"""NIST SP 800-63B style password rules: length, not composition; no guessable passwords."""

import asyncio
from dataclasses import dataclass
from typing import Any

from zxcvbn import zxcvbn

from gql_app.error_reasons import FieldErrorCode
from gql_app.errors import FieldError

MIN_LENGTH = 12
MAX_LENGTH = 128
# zxcvbn's score 3 means "safely unguessable" (about 10^8 guesses or more).
MIN_STRENGTH_SCORE = 3
GUESSABLE = "Password is too common or too easy to guess"
SIMILAR_TO_ACCOUNT = "Password is too easy to guess from the account's email or name"


@dataclass(frozen=True, slots=True)
class PasswordProblem:
    """Why a password is refused: a code a form branches on, and a sentence it can show."""

    code: FieldErrorCode
    message: str

    def for_field(self, field: str) -> FieldError:
        return FieldError(field=field, code=self.code, message=self.message)


def password_problem(
    password: str, *, email: str, full_name: str | None = None
) -> PasswordProblem | None:
    """Why the password is unacceptable, or None when it is fine."""
    return _form_problem(password, email=email) or _strength_problem(
        password, email=email, full_name=full_name
    )


def _form_problem(password: str, *, email: str) -> PasswordProblem | None:
    if len(password) < MIN_LENGTH:
        return PasswordProblem(
            FieldErrorCode.TOO_SHORT, f"Password must be at least {MIN_LENGTH} characters long"
        )
    if len(password) > MAX_LENGTH:
        return PasswordProblem(
            FieldErrorCode.TOO_LONG, f"Password must be at most {MAX_LENGTH} characters long"
        )
    if not _encodable(password):
        return PasswordProblem(
            FieldErrorCode.INVALID_CHARACTERS,
            "Password contains characters that are not valid text",
        )
    if password.strip().casefold() == email.casefold():
        return PasswordProblem(
            FieldErrorCode.TOO_SIMILAR_TO_ACCOUNT,
            "Password must not be the same as the email address",
        )
    return None


def _strength_problem(
    password: str, *, email: str, full_name: str | None
) -> PasswordProblem | None:
    user_inputs = [email, email.partition("@")[0], *(full_name.split() if full_name else [])]
    strength = zxcvbn(password, user_inputs=user_inputs, max_length=MAX_LENGTH)
    if strength["score"] >= MIN_STRENGTH_SCORE:
        return None
    if _built_from_account(strength):
        return PasswordProblem(
            FieldErrorCode.TOO_SIMILAR_TO_ACCOUNT, _with_feedback(SIMILAR_TO_ACCOUNT, strength)
        )
    return PasswordProblem(FieldErrorCode.TOO_COMMON, _with_feedback(GUESSABLE, strength))


def _built_from_account(strength: dict[str, Any]) -> bool:
    return any(match.get("dictionary_name") == "user_inputs" for match in strength["sequence"])


def _with_feedback(summary: str, strength: dict[str, Any]) -> str:
    """The summary, then zxcvbn's own warning and suggestions, for a form to show."""
    feedback = strength["feedback"]
    advice = [feedback["warning"], *feedback["suggestions"]]
    return " ".join([f"{summary}.", *(line for line in advice if line)])


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def assess_password(
    password: str, *, email: str, full_name: str | None = None
) -> PasswordProblem | None:
    """password_problem() off the event loop: zxcvbn takes up to a few hundred ms on long input."""
    return await asyncio.to_thread(password_problem, password, email=email, full_name=full_name)
