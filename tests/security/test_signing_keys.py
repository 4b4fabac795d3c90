import json
import os
import re

import jwt
import pytest

from gql_app.security.key_derivation import derive_key
from gql_app.security.signing_keys import (
    PRIVATE_JWK_MEMBERS,
    SIGNING_ALGORITHMS,
    KeyDecryptionError,
    SigningAlgorithm,
    decrypt_private_key,
    encrypt_private_key,
    generate_key,
    load_private_key,
    load_public_key,
    new_kid,
)

ENCRYPTION_KEY = derive_key("a-secret-key-that-is-long-enough-0123456789", purpose="test")
ASYMMETRIC: list[SigningAlgorithm] = ["ES256", "EdDSA", "RS256"]
# RFC 7518 and RFC 8037: the members of each public key, and the fixed ones' values.
PUBLIC_MEMBERS = {
    "ES256": ({"kty", "crv", "x", "y"}, {"kty": "EC", "crv": "P-256"}),
    "EdDSA": ({"kty", "crv", "x"}, {"kty": "OKP", "crv": "Ed25519"}),
    "RS256": ({"kty", "n", "e"}, {"kty": "RSA"}),
}


class TestGeneratedKeys:
    @pytest.mark.parametrize("algorithm", ASYMMETRIC)
    def test_the_public_jwk_is_what_verifiers_read_and_nothing_private(
        self, algorithm: SigningAlgorithm
    ) -> None:
        key = generate_key(algorithm)

        jwk = key.public_jwk
        assert (jwk["kid"], jwk["alg"], jwk["use"]) == (key.kid, algorithm, "sig")
        members, fixed = PUBLIC_MEMBERS[algorithm]
        assert jwk.keys() == members | {"kid", "alg", "use"}
        assert fixed.items() <= jwk.items()
        assert not PRIVATE_JWK_MEMBERS & jwk.keys()
        # What a verifier elsewhere does with the published JWK.
        assert jwt.PyJWK(jwk).algorithm_name == algorithm

    def test_an_hmac_key_describes_itself_without_its_secret(self) -> None:
        key = generate_key("HS256")

        assert key.public_jwk == {"kty": "oct", "kid": key.kid, "alg": "HS256", "use": "sig"}
        assert isinstance(key.private_key, bytes)
        assert len(key.private_key) == 32

    def test_every_key_is_new_and_has_its_own_kid(self) -> None:
        first, second = generate_key("ES256"), generate_key("ES256")

        assert first.kid != second.kid
        assert first.public_jwk["x"] != second.public_jwk["x"]

    def test_a_kid_is_one_word_a_command_line_takes_as_an_argument(self) -> None:
        kids = {new_kid() for _ in range(200)}

        assert len(kids) == 200
        assert all(re.fullmatch(r"[0-9a-f]{16}", kid) for kid in kids)

    @pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)
    def test_a_key_signs_what_its_published_half_verifies(
        self, algorithm: SigningAlgorithm
    ) -> None:
        key = generate_key(algorithm)
        private = load_private_key(key.private_bytes, algorithm=algorithm)
        verifying = (
            private
            if algorithm == "HS256"
            else load_public_key(key.public_jwk, algorithm=algorithm)
        )

        token = jwt.encode({"sub": "x"}, private, algorithm=algorithm)

        assert jwt.decode(token, verifying, algorithms=[algorithm]) == {"sub": "x"}


class TestEncryptionAtRest:
    @pytest.mark.parametrize("algorithm", SIGNING_ALGORITHMS)
    def test_round_trip(self, algorithm: SigningAlgorithm) -> None:
        key = generate_key(algorithm)

        stored = encrypt_private_key(key.private_bytes, encryption_key=ENCRYPTION_KEY, kid=key.kid)

        assert key.private_bytes not in stored
        assert decrypt_private_key(stored, encryption_keys=[ENCRYPTION_KEY], kid=key.kid) == (
            key.private_bytes
        )

    def test_each_encryption_uses_its_own_nonce(self) -> None:
        key = generate_key("ES256")

        first, second = (
            encrypt_private_key(key.private_bytes, encryption_key=ENCRYPTION_KEY, kid=key.kid)
            for _ in range(2)
        )

        assert first != second

    def test_another_encryption_key_cannot_read_it(self) -> None:
        key = generate_key("ES256")
        stored = encrypt_private_key(key.private_bytes, encryption_key=ENCRYPTION_KEY, kid=key.kid)

        with pytest.raises(KeyDecryptionError, match=f"signing key {key.kid} cannot be decrypted"):
            decrypt_private_key(stored, encryption_keys=[os.urandom(32)], kid=key.kid)

    def test_a_stored_key_moved_to_another_kid_does_not_decrypt(self) -> None:
        key = generate_key("ES256")
        stored = encrypt_private_key(key.private_bytes, encryption_key=ENCRYPTION_KEY, kid=key.kid)

        with pytest.raises(KeyDecryptionError):
            decrypt_private_key(stored, encryption_keys=[ENCRYPTION_KEY], kid="another-kid")

    def test_a_tampered_ciphertext_does_not_decrypt(self) -> None:
        key = generate_key("ES256")
        stored = bytearray(
            encrypt_private_key(key.private_bytes, encryption_key=ENCRYPTION_KEY, kid=key.kid)
        )
        stored[-1] ^= 1

        with pytest.raises(KeyDecryptionError):
            decrypt_private_key(bytes(stored), encryption_keys=[ENCRYPTION_KEY], kid=key.kid)


class TestKeyDerivation:
    def test_each_purpose_gets_its_own_key(self) -> None:
        secret = "a-secret-key-that-is-long-enough-0123456789"

        keys = {derive_key(secret, purpose=purpose) for purpose in ("one", "two", "three")}

        assert len(keys) == 3
        assert all(len(key) == 32 for key in keys)
        assert secret.encode() not in keys

    def test_the_same_secret_and_purpose_give_the_same_key(self) -> None:
        assert derive_key("s" * 40, purpose="p") == derive_key("s" * 40, purpose="p")
        assert derive_key("s" * 40, purpose="p") != derive_key("t" * 40, purpose="p")


def test_the_jwk_survives_a_json_round_trip() -> None:
    # Stored as JSON in the database and served as JSON: nothing in it may need more.
    key = generate_key("RS256")

    assert json.loads(json.dumps(key.public_jwk)) == key.public_jwk
