"""Time-based one-time passwords (RFC 6238) as every authenticator app reads them: SHA-1,
6 digits, a new code every 30 seconds."""

import base64
import io
import secrets
from datetime import datetime

import pyotp
import segno
from pyotp.utils import strings_equal

SECRET_BYTES = 20  # 160 bits, RFC 4226's recommended length
DIGITS = 6
PERIOD_SECONDS = 30
# A code is accepted one step either side of now: the phone's clock and the user's typing.
ALLOWED_DRIFT_STEPS = 1


def new_secret() -> str:
    """A random secret in base32, as authenticator apps take it."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_SECONDS)


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/…`` URI an app adds the account from."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_code_svg(uri: str) -> str:
    """The URI as a QR code, an SVG document a page can show as it is."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False)
    return buffer.getvalue().decode()


def matching_step(secret: str, code: str, *, at: datetime) -> int | None:
    """The time step whose code ``code`` is, within the allowed drift of ``at``; None when
    it is none of them. Callers refuse a step already used, so a code works once."""
    typed = "".join(code.split())
    if len(typed) != DIGITS or not typed.isascii() or not typed.isdigit():
        return None
    totp = _totp(secret)
    now_step = totp.timecode(at)
    for drift in range(-ALLOWED_DRIFT_STEPS, ALLOWED_DRIFT_STEPS + 1):
        step = now_step + drift
        # Every candidate is compared, in constant time, whichever matches.
        if strings_equal(typed, totp.generate_otp(step)):
            return step
    return None
