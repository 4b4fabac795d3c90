import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from freezegun import freeze_time

from gql_app.config import Settings
from gql_app.errors import AuthenticationError
from gql_app.security import tokens
from gql_app.security.signing_keys import (
    SIGNING_ALGORITHMS,
    GeneratedKey,
    SigningAlgorithm,
    generate_key,
    load_public_key,
)
from gql_app.security.tokens import AccessTokenClaims, TokenSigner, TokenVerifier

NOW = datetime(2030, 3, 3, 3, 3, 3, tzinfo=UTC)
USER_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
SESSION_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")
ASYMMETRIC = [algorithm for algorithm in SIGNING_ALGORITHMS if algorithm != "HS256"]


@cache
def _generated(algorithm: SigningAlgorithm, copy: int) -> GeneratedKey:
    # Generated once a process: an RSA key takes tens of milliseconds.
    return generate_key(algorithm)


def stored_key(algorithm: SigningAlgorithm, copy: int = 0) -> GeneratedKey:
    return _generated(algorithm, copy)


def signer(algorithm: SigningAlgorithm = "ES256", copy: int = 0) -> TokenSigner:
    key = stored_key(algorithm, copy)
    return TokenSigner(kid=key.kid, algorithm=algorithm, key=key.private_key)


def verifier(algorithm: SigningAlgorithm = "ES256") -> TokenVerifier:
    key = stored_key(algorithm)
    if isinstance(key.private_key, bytes):
        return TokenVerifier(kid=key.kid, algorithm=algorithm, key=key.private_key)
    return TokenVerifier(
        kid=key.kid, algorithm=algorithm, key=load_public_key(key.public_jwk, algorithm=algorithm)
    )


def valid_claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": str(USER_ID),
        "sid": str(SESSION_ID),
        "type": "access",
        "iat": NOW,
        "exp": NOW + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def sign(claims: dict[str, Any], key: TokenSigner | None = None) -> str:
    key = key or signer()
    return jwt.encode(claims, key.key, algorithm=key.algorithm, headers={"kid": key.kid})


def decode_at_now(
    token: str, settings: Settings, key: TokenVerifier | None = None
) -> AccessTokenClaims:
    with freeze_time(NOW):
        return tokens.decode_access_token(token, key=key or verifier(), settings=settings)


def issue(settings: Settings, algorithm: SigningAlgorithm = "ES256") -> str:
    return tokens.create_access_token(
        signing_key=signer(algorithm),
        settings=settings,
        user_id=USER_ID,
        session_id=SESSION_ID,
        now=NOW,
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_forged(claims: dict[str, Any], *, kid: str, secret: bytes) -> str:
    """An HS256 token made by hand: PyJWT refuses to sign with a public key as the secret,
    which is exactly what an attacker would do."""
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims, default=lambda moment: int(moment.timestamp())).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


class TestAccessTokenRoundTrip:
    @pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)
    def test_each_algorithm_gives_back_the_user_and_session(
        self, settings: Settings, algorithm: SigningAlgorithm
    ) -> None:
        token = issue(settings, algorithm)

        header = jwt.get_unverified_header(token)
        assert (header["alg"], header["kid"]) == (algorithm, stored_key(algorithm).kid)
        assert tokens.key_id_of(token) == stored_key(algorithm).kid
        assert decode_at_now(token, settings, verifier(algorithm)) == AccessTokenClaims(
            user_id=USER_ID, session_id=SESSION_ID
        )

    def test_token_carries_the_standard_claims(self, settings: Settings) -> None:
        token = issue(settings)

        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["type"] == "access"
        assert (claims["iss"], claims["aud"]) == (settings.jwt_issuer, settings.jwt_audience)
        assert claims["iat"] == int(NOW.timestamp())
        assert claims["exp"] == int(NOW.timestamp()) + settings.access_token_expire_seconds
        assert uuid.UUID(claims["sub"]) == USER_ID
        assert uuid.UUID(claims["sid"]) == SESSION_ID

    def test_every_token_has_its_own_jti(self, settings: Settings) -> None:
        first, second = issue(settings), issue(settings)

        unverified = {"verify_signature": False}
        assert (
            jwt.decode(first, options=unverified)["jti"]
            != jwt.decode(second, options=unverified)["jti"]
        )

    def test_still_valid_just_before_expiry(self, settings: Settings) -> None:
        token = issue(settings)

        with freeze_time(NOW + timedelta(seconds=settings.access_token_expire_seconds - 1)):
            claims = tokens.decode_access_token(token, key=verifier(), settings=settings)

        assert claims.user_id == USER_ID


class TestAccessTokenRejected:
    def test_expired_token(self, settings: Settings) -> None:
        token = issue(settings)

        with (
            freeze_time(NOW + timedelta(seconds=settings.access_token_expire_seconds + 1)),
            pytest.raises(AuthenticationError, match=r"^Access token has expired$"),
        ):
            tokens.decode_access_token(token, key=verifier(), settings=settings)

    @pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)
    def test_signed_by_another_key_under_the_same_kid(
        self, settings: Settings, algorithm: SigningAlgorithm
    ) -> None:
        impostor = signer(algorithm, copy=1)
        token = sign(
            valid_claims(settings),
            TokenSigner(kid=stored_key(algorithm).kid, algorithm=algorithm, key=impostor.key),
        )

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings, verifier(algorithm))

    def test_tampered_payload(self, settings: Settings) -> None:
        header, _, signature = sign(valid_claims(settings)).split(".")
        forged_payload = sign(valid_claims(settings, sub=str(uuid.uuid4()))).split(".")[1]

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(f"{header}.{forged_payload}.{signature}", settings)

    @pytest.mark.parametrize(
        "overrides",
        [
            pytest.param({"aud": "someone-else"}, id="wrong-audience"),
            pytest.param({"iss": "someone-else"}, id="wrong-issuer"),
            pytest.param({"type": "refresh"}, id="wrong-type"),
            pytest.param({"sub": "not-a-uuid"}, id="sub-not-a-uuid"),
            pytest.param({"sid": "not-a-uuid"}, id="sid-not-a-uuid"),
            pytest.param({"sid": 12345}, id="sid-a-number"),
            pytest.param({"sub": 12345}, id="sub-a-number"),
        ],
    )
    def test_claims_that_do_not_fit(self, settings: Settings, overrides: dict[str, Any]) -> None:
        token = sign(valid_claims(settings, **overrides))

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings)

    @pytest.mark.parametrize("claim", tokens.REQUIRED_CLAIMS)
    def test_missing_required_claim(self, settings: Settings, claim: str) -> None:
        claims = valid_claims(settings)
        del claims[claim]
        token = sign(claims)

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings)

    def test_unsigned_alg_none_token(self, settings: Settings) -> None:
        token = jwt.encode(
            valid_claims(settings), key=None, algorithm="none", headers={"kid": signer().kid}
        )

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings)

    @pytest.mark.parametrize("algorithm", ASYMMETRIC)
    @pytest.mark.parametrize("secret_form", ["pem", "jwk"])
    def test_hmac_token_keyed_with_the_published_public_key(
        self, settings: Settings, algorithm: SigningAlgorithm, secret_form: str
    ) -> None:
        # The classic algorithm confusion: the public key is public, so anyone can make
        # this HMAC; a verifier that let the header choose the algorithm would accept it.
        key = stored_key(algorithm)
        public = load_public_key(key.public_jwk, algorithm=algorithm)
        assert not isinstance(public, bytes)
        secret = (
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            if secret_form == "pem"
            else json.dumps(key.public_jwk).encode()
        )
        token = hmac_forged(valid_claims(settings), kid=key.kid, secret=secret)

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings, verifier(algorithm))

    def test_token_of_another_algorithm_than_its_key(self, settings: Settings) -> None:
        eddsa = signer("EdDSA")
        token = sign(
            valid_claims(settings), TokenSigner(kid=signer().kid, algorithm="EdDSA", key=eddsa.key)
        )

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings, verifier("ES256"))

    @pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "Bearer x.y.z"])
    def test_not_a_jwt(self, settings: Settings, token: str) -> None:
        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            tokens.key_id_of(token)
        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings)

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({"kid": ""}, id="empty-kid"),
            pytest.param({"kid": 7}, id="kid-a-number"),
        ],
    )
    def test_a_token_must_name_its_key(self, settings: Settings, headers: dict[str, Any]) -> None:
        _, payload, signature = sign(valid_claims(settings)).split(".")
        header = b64(json.dumps({"alg": "ES256", "typ": "JWT", **headers}).encode())
        token = f"{header}.{payload}.{signature}"

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            tokens.key_id_of(token)


class TestRefreshTokens:
    def test_new_refresh_tokens_are_long_random_and_url_safe(self) -> None:
        generated = {tokens.new_opaque_token() for _ in range(50)}

        assert len(generated) == 50
        for token in generated:
            assert len(token) >= 43  # 32 random bytes
            assert set(token) <= set(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            )

    def test_hash_is_the_sha256_hex_digest(self) -> None:
        token = "a-refresh-token"

        assert tokens.hash_opaque_token(token) == hashlib.sha256(b"a-refresh-token").hexdigest()
        assert len(tokens.hash_opaque_token(token)) == 64

    def test_different_tokens_hash_differently(self) -> None:
        assert tokens.hash_opaque_token("token-a") != tokens.hash_opaque_token("token-b")


class TestSuccessorRefreshTokens:
    KEY = b"k" * 32

    def test_the_same_token_always_has_the_same_successor(self) -> None:
        token = tokens.new_opaque_token()

        assert tokens.successor_refresh_token(
            token, key=self.KEY
        ) == tokens.successor_refresh_token(token, key=self.KEY)

    def test_successors_look_like_any_other_refresh_token(self) -> None:
        successor = tokens.successor_refresh_token(tokens.new_opaque_token(), key=self.KEY)

        assert len(successor) == len(tokens.new_opaque_token()) == 43
        assert set(successor) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )

    def test_another_token_or_another_key_gives_another_successor(self) -> None:
        token = tokens.new_opaque_token()
        successor = tokens.successor_refresh_token(token, key=self.KEY)

        assert tokens.successor_refresh_token(token + "x", key=self.KEY) != successor
        assert tokens.successor_refresh_token(token, key=b"o" * 32) != successor
        assert successor != token

    def test_a_malformed_token_still_has_a_successor(self) -> None:
        # A lone surrogate from a client must not raise on the way to "unknown token".
        assert len(tokens.successor_refresh_token("\udcff", key=self.KEY)) == 43


def test_a_token_without_a_kid_names_no_key(settings: Settings) -> None:
    token = jwt.encode(valid_claims(settings), "k" * 32, algorithm="HS256")

    assert tokens.key_id_of(token) is None


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"[" * 5000 + b"]" * 5000, id="deeply-nested"),
        pytest.param(b'{"kid": "' + b"k" * 2000 + b'"}', id="too-long"),
    ],
)
def test_a_header_that_is_not_ours_is_refused_before_it_is_read(header: bytes) -> None:
    with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
        tokens.key_id_of(f"{b64(header)}.e30.c2ln")
