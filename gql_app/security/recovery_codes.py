"""Recovery codes: one-use second factors for when the authenticator app is lost. Shown to
their owner once; stored only as keyed hashes."""

import hashlib
import hmac
import secrets

COUNT = 10
# No 0/O, 1/I/L: nothing a reader can take for something else.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
GROUPS = 3
GROUP_LENGTH = 4
# 12 characters of 31: 59 bits each, beyond guessing within any rate limit.
LENGTH = GROUPS * GROUP_LENGTH


def new_recovery_codes() -> list[str]:
    return [_new_code() for _ in range(COUNT)]


def _new_code() -> str:
    characters = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    groups = [characters[i : i + GROUP_LENGTH] for i in range(0, LENGTH, GROUP_LENGTH)]
    return "-".join(groups)


def normalized(code: str) -> str | None:
    """The code as stored, whatever case, dashes or spaces it was typed with; None when it
    cannot be a recovery code."""
    typed = "".join(code.split()).replace("-", "").upper()
    if len(typed) != LENGTH or any(character not in ALPHABET for character in typed):
        return None
    return typed


def recovery_code_hash(code: str, *, key: bytes) -> str:
    """A keyed hash of a normalized code: a leaked table cannot be searched for codes
    without the key."""
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()
