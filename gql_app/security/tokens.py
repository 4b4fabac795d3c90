"""Access tokens: short-lived JWTs naming a session. Refresh and emailed tokens: opaque,
stored hashed."""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt

from gql_app.config import Settings
from gql_app.error_reasons import ErrorReason
from gql_app.errors import AuthenticationError
from gql_app.security.signing_keys import PrivateKey, PublicKey

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
REQUIRED_CLAIMS = ["exp", "iat", "sub", "sid", "jti", "type", "iss", "aud"]
# Ours are under a hundred; a longer header is not one of ours, whatever it holds.
MAX_HEADER_CHARACTERS = 1024


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class TokenSigner:
    """A key that signs tokens naming it by ``kid``, with its own algorithm."""

    kid: str
    algorithm: str
    key: PrivateKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class TokenVerifier:
    """A key that checks tokens naming its ``kid``, with its own algorithm only."""

    kid: str
    algorithm: str
    key: PublicKey = field(repr=False)


def create_access_token(
    *,
    signing_key: TokenSigner,
    settings: Settings,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    now: datetime,
    auth_methods: Sequence[str] = ("pwd",),
    authenticated_at: datetime | None = None,
) -> str:
    """``auth_methods`` and ``authenticated_at``: how and when the session last proved who
    it is, as ``amr`` (RFC 8176) and ``auth_time`` (OpenID Connect)."""
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "type": ACCESS_TOKEN_TYPE,
        "iat": now,
        "exp": now + timedelta(seconds=settings.access_token_expire_seconds),
        "jti": uuid.uuid4().hex,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "amr": list(auth_methods),
        "auth_time": int((authenticated_at or now).timestamp()),
    }
    return jwt.encode(
        claims,
        signing_key.key,
        algorithm=signing_key.algorithm,
        headers={"kid": signing_key.kid},
    )


def key_id_of(token: str) -> str | None:
    """The ``kid`` a token names, read before its signature is checked; None when it names
    none (as tokens signed before there were signing keys)."""
    # Only the header: PyJWT's get_unverified_header decodes the whole token, which the
    # check that follows does again (a third of an HS256 check, measured).
    segment = token.split(".", 1)[0]
    if len(segment) > MAX_HEADER_CHARACTERS:
        raise AuthenticationError(ErrorReason.TOKEN_INVALID)
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError) as error:
        # RecursionError: a header of deeply nested brackets.
        raise AuthenticationError(ErrorReason.TOKEN_INVALID) from error
    if not isinstance(header, dict):
        raise AuthenticationError(ErrorReason.TOKEN_INVALID)
    kid = header.get("kid")
    if kid is None:
        return None
    if not isinstance(kid, str) or not kid:
        raise AuthenticationError(ErrorReason.TOKEN_INVALID)
    return kid


def signed_before_signing_keys(token: str, *, settings: Settings) -> bool:
    """Whether a token without a ``kid`` is one this server issued before it had signing
    keys (HS256 under SECRET_KEY itself). Such a token is never accepted: this only lets
    its holder be told to refresh (TOKEN_EXPIRED) rather than to sign in again."""
    try:
        jwt.decode(
            token,
            settings.secret_key_value,
            algorithms=["HS256"],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"verify_exp": False},
        )
    except jwt.PyJWTError:
        return False
    return True


def decode_access_token(token: str, *, key: TokenVerifier, settings: Settings) -> AccessTokenClaims:
    """The claims of a token signed by ``key``, checked with ``key``'s algorithm alone:
    whatever the header says, an ES256 key never checks an HMAC, and ``none`` nothing."""
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as error:
        raise AuthenticationError(ErrorReason.TOKEN_EXPIRED) from error
    except jwt.PyJWTError as error:
        raise AuthenticationError(ErrorReason.TOKEN_INVALID) from error
    if claims["type"] != ACCESS_TOKEN_TYPE:
        raise AuthenticationError(ErrorReason.TOKEN_INVALID)
    try:
        return AccessTokenClaims(
            user_id=uuid.UUID(claims["sub"]), session_id=uuid.UUID(claims["sid"])
        )
    except (TypeError, ValueError, AttributeError) as error:
        raise AuthenticationError(ErrorReason.TOKEN_INVALID) from error


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def successor_refresh_token(previous: str, *, key: bytes) -> str:
    """The refresh token that replaces ``previous`` when it is rotated.

    Derived, not drawn: however often ``previous`` is presented, and however many of those
    presentations race, they all lead to this one token, so a session's tokens form one
    chain and never branch. Without the key it is as unpredictable as a random token.
    """
    message = b"gql-app refresh token successor\x00" + previous.encode("utf-8", "surrogatepass")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_opaque_token(token: str) -> str:
    # The token carries 256 random bits, so a fast hash is enough: nothing to brute-force.
    # surrogatepass: a malformed string from a client hashes to something no token matches
    # instead of raising.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
