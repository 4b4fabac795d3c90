"""Secrets at rest: AES-256-GCM, each bound to what it belongs to (associated data), so a
value copied onto another row does not decrypt there."""

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class DecryptionError(Exception):
    """None of the keys given decrypts the value, or it was changed."""


def seal(plaintext: bytes, *, key: bytes, bound_to: bytes) -> bytes:
    """The nonce, then the ciphertext and its tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, bound_to)


def unseal(stored: bytes, *, keys: Sequence[bytes], bound_to: bytes) -> bytes:
    """The plaintext, with the first of ``keys`` that decrypts it (the current key first,
    then those it replaced)."""
    nonce, ciphertext = stored[:NONCE_BYTES], stored[NONCE_BYTES:]
    if len(nonce) != NONCE_BYTES:
        raise DecryptionError
    for key in keys:
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, bound_to)
        except InvalidTag:
            continue
    raise DecryptionError
