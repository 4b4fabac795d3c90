import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from freezegun import freeze_time
from pydantic import SecretStr

from gql_app.config import Settings
from gql_app.errors import AuthenticationError
from gql_app.security import tokens
from gql_app.security.tokens import AccessTokenClaims

NOW = datetime(2030, 3, 3, 3, 3, 3, tzinfo=UTC)
USER_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
SESSION_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")
OTHER_SECRET = "another-secret-key-that-is-long-enough-for-hs256-9876543210"


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


def sign(claims: dict[str, Any], settings: Settings, *, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, settings.signing_key, algorithm=algorithm)


def decode_at_now(token: str, settings: Settings) -> AccessTokenClaims:
    with freeze_time(NOW):
        return tokens.decode_access_token(token, settings=settings)


class TestAccessTokenRoundTrip:
    def test_decoding_gives_back_the_user_and_session(self, settings: Settings) -> None:
        token = tokens.create_access_token(
            settings=settings, user_id=USER_ID, session_id=SESSION_ID, now=NOW
        )

        assert decode_at_now(token, settings) == AccessTokenClaims(
            user_id=USER_ID, session_id=SESSION_ID
        )

    def test_token_carries_the_standard_claims(self, settings: Settings) -> None:
        token = tokens.create_access_token(
            settings=settings, user_id=USER_ID, session_id=SESSION_ID, now=NOW
        )

        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        assert header["alg"] == "HS256"
        assert claims["type"] == "access"
        assert (claims["iss"], claims["aud"]) == (settings.jwt_issuer, settings.jwt_audience)
        assert claims["iat"] == int(NOW.timestamp())
        assert claims["exp"] == int(NOW.timestamp()) + settings.access_token_expire_seconds

    def test_every_token_has_its_own_jti(self, settings: Settings) -> None:
        first, second = (
            tokens.create_access_token(
                settings=settings, user_id=USER_ID, session_id=SESSION_ID, now=NOW
            )
            for _ in range(2)
        )

        unverified = {"verify_signature": False}
        assert (
            jwt.decode(first, options=unverified)["jti"]
            != jwt.decode(second, options=unverified)["jti"]
        )

    def test_still_valid_just_before_expiry(self, settings: Settings) -> None:
        token = tokens.create_access_token(
            settings=settings, user_id=USER_ID, session_id=SESSION_ID, now=NOW
        )

        with freeze_time(NOW + timedelta(seconds=settings.access_token_expire_seconds - 1)):
            claims = tokens.decode_access_token(token, settings=settings)

        assert claims.user_id == USER_ID


class TestAccessTokenRejected:
    def test_expired_token(self, settings: Settings) -> None:
        token = tokens.create_access_token(
            settings=settings, user_id=USER_ID, session_id=SESSION_ID, now=NOW
        )

        with (
            freeze_time(NOW + timedelta(seconds=settings.access_token_expire_seconds + 1)),
            pytest.raises(AuthenticationError, match=r"^Access token has expired$"),
        ):
            tokens.decode_access_token(token, settings=settings)

    def test_signed_with_another_key(self, settings: Settings) -> None:
        token = jwt.encode(valid_claims(settings), OTHER_SECRET, algorithm="HS256")

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings)

    def test_tampered_payload(self, settings: Settings) -> None:
        header, _, signature = sign(valid_claims(settings), settings).split(".")
        forged_payload = sign(valid_claims(settings, sub=str(uuid.uuid4())), settings).split(".")[1]

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
        token = sign(valid_claims(settings, **overrides), settings)

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings)

    @pytest.mark.parametrize("claim", tokens.REQUIRED_CLAIMS)
    def test_missing_required_claim(self, settings: Settings, claim: str) -> None:
        claims = valid_claims(settings)
        del claims[claim]
        token = sign(claims, settings)

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings)

    def test_unsigned_alg_none_token(self, settings: Settings) -> None:
        token = jwt.encode(valid_claims(settings), key=None, algorithm="none")

        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings)

    def test_token_signed_with_hs512_and_the_right_key(self, settings: Settings) -> None:
        # 64 bytes, so PyJWT has no reason to warn about the key when signing with HS512.
        long_key_settings = settings.model_copy(update={"secret_key": SecretStr("k" * 64)})
        token = sign(valid_claims(settings), long_key_settings, algorithm="HS512")
        same_claims_hs256 = sign(valid_claims(settings), long_key_settings)

        assert decode_at_now(same_claims_hs256, long_key_settings).user_id == USER_ID
        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, long_key_settings)

    @pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "Bearer x.y.z"])
    def test_not_a_jwt(self, settings: Settings, token: str) -> None:
        with pytest.raises(AuthenticationError, match=r"^Invalid access token$"):
            decode_at_now(token, settings)


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
    KEY = "k" * 48

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
        assert tokens.successor_refresh_token(token, key="o" * 48) != successor
        assert successor != token

    def test_a_malformed_token_still_has_a_successor(self) -> None:
        # A lone surrogate from a client must not raise on the way to "unknown token".
        assert len(tokens.successor_refresh_token("\udcff", key=self.KEY)) == 43
