"""Signing keys as cryptography objects: generated, serialised, encrypted at rest.

A key's algorithm is fixed when it is made; a token is checked with its key's own
algorithm, never the one its header names.
"""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gql_app.security.encryption import DecryptionError, seal, unseal

SigningAlgorithm = Literal["ES256", "EdDSA", "RS256", "HS256"]
SIGNING_ALGORITHMS: tuple[SigningAlgorithm, ...] = get_args(SigningAlgorithm)
# HS256 keys are secrets shared by this service's workers: never published.
PUBLISHED_ALGORITHMS = frozenset({"ES256", "EdDSA", "RS256"})
# The members of a JWK that belong to a private or secret key (RFC 7518, RFC 8037).
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
RSA_KEY_BITS = 2048
HMAC_KEY_BYTES = 32

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | bytes
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey | bytes


class KeyDecryptionError(Exception):
    """The stored private key cannot be decrypted with the key-encryption key configured."""


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    kid: str
    algorithm: SigningAlgorithm
    public_jwk: dict[str, Any]
    private_key: PrivateKey = field(repr=False)
    private_bytes: bytes = field(repr=False)


def new_kid() -> str:
    # Hexadecimal: a kid must never start with "-", where a command line takes it for an
    # option, and it stays one word wherever it is quoted.
    return secrets.token_hex(8)


def generate_key(algorithm: SigningAlgorithm) -> GeneratedKey:
    kid = new_kid()
    private_key = _new_private_key(algorithm)
    return GeneratedKey(
        kid=kid,
        algorithm=algorithm,
        public_jwk=public_jwk(private_key, kid=kid, algorithm=algorithm),
        private_key=private_key,
        private_bytes=_private_bytes(private_key),
    )


def _new_private_key(algorithm: SigningAlgorithm) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    return secrets.token_bytes(HMAC_KEY_BYTES)


def _private_bytes(private_key: PrivateKey) -> bytes:
    if isinstance(private_key, bytes):
        return private_key
    return private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(private_bytes: bytes, *, algorithm: str) -> PrivateKey:
    if algorithm == "HS256":
        return private_bytes
    key = serialization.load_der_private_key(private_bytes, password=None)
    return cast(PrivateKey, key)


def public_jwk(private_key: PrivateKey, *, kid: str, algorithm: SigningAlgorithm) -> dict[str, Any]:
    """The key's public half as a JWK, or for HS256 a description with no key material."""
    members: dict[str, Any]
    if isinstance(private_key, bytes):
        members = {"kty": "oct"}
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        members = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    elif isinstance(private_key, ed25519.Ed25519PrivateKey):
        members = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        members = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    # "use" says what the key is for; RFC 7517 asks for it or "key_ops", not both.
    public = {
        name: value
        for name, value in members.items()
        if name not in PRIVATE_JWK_MEMBERS and name != "key_ops"
    }
    return {**public, "kid": kid, "alg": algorithm, "use": "sig"}


def load_public_key(jwk: dict[str, Any], *, algorithm: str) -> PublicKey:
    """The verification key of a published JWK (an HS256 key verifies with its secret)."""
    if algorithm == "ES256":
        return cast(PublicKey, ECAlgorithm.from_jwk(jwk))
    if algorithm == "EdDSA":
        return cast(PublicKey, OKPAlgorithm.from_jwk(jwk))
    return cast(PublicKey, RSAAlgorithm.from_jwk(jwk))


def encrypt_private_key(private_bytes: bytes, *, encryption_key: bytes, kid: str) -> bytes:
    """Under the key-encryption key, bound to the kid: a stored key copied onto another row
    does not decrypt."""
    return seal(private_bytes, key=encryption_key, bound_to=kid.encode())


def decrypt_private_key(stored: bytes, *, encryption_keys: Sequence[bytes], kid: str) -> bytes:
    try:
        return unseal(stored, keys=encryption_keys, bound_to=kid.encode())
    except DecryptionError as error:
        raise KeyDecryptionError(
            f"signing key {kid} cannot be decrypted: SECRET_KEY or KEY_ENCRYPTION_KEY is not "
            "the one it was stored with"
        ) from error
