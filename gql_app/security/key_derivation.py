"""Keys for one purpose each, derived from one secret.

SECRET_KEY (or KEY_ENCRYPTION_KEY) is never used as a key itself: HKDF with a label per
purpose gives each use its own key, so one use can never stand in for another.
"""

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32


def derive_key(secret: str, *, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=f"gql-app {purpose}".encode(),
    ).derive(secret.encode())
