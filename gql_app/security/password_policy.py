"""NIST SP 800-63B style password rules: length, not composition; no guessable passwords."""

import asyncio

from zxcvbn import zxcvbn

MIN_LENGTH = 12
MAX_LENGTH = 128
# zxcvbn's score 3 means "safely unguessable" (about 10^8 guesses or more).
MIN_STRENGTH_SCORE = 3


def password_problem(password: str, *, email: str, full_name: str | None = None) -> str | None:
    """Why the password is unacceptable, or None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"Password must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"Password must be at most {MAX_LENGTH} characters long"
    if not _encodable(password):
        return "Password contains characters that are not valid text"
    if password.strip().casefold() == email.casefold():
        return "Password must not be the same as the email address"
    user_inputs = [email, email.partition("@")[0], *(full_name.split() if full_name else [])]
    strength = zxcvbn(password, user_inputs=user_inputs, max_length=MAX_LENGTH)
    if strength["score"] < MIN_STRENGTH_SCORE:
        return "Password is too common or too easy to guess"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def assess_password(password: str, *, email: str, full_name: str | None = None) -> str | None:
    """password_problem() off the event loop: zxcvbn takes up to a few hundred ms on long input."""
    return await asyncio.to_thread(password_problem, password, email=email, full_name=full_name)
