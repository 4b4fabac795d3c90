"""A software passkey authenticator and the browser around it, for tests of WebAuthn ceremonies.

It takes the options a relying party sends (PublicKeyCredentialCreationOptionsJSON and
PublicKeyCredentialRequestOptionsJSON, WebAuthn Level 3) and returns what a browser's
``PublicKeyCredential.toJSON()`` gives for them, so a test can post it where a frontend would.
Keys are ES256 (P-256), attestation is "none", and every credential is discoverable.

It is written from the specification with ``cryptography`` and ``cbor2`` only: py_webauthn, the
library the server verifies with, must not check its own output.
"""

import hashlib
import json
import secrets
import struct
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ES256 = -7
# A browser offers ES256 and RS256 when the RP names no algorithm (WebAuthn L3 [[Create]]).
DEFAULT_ALGORITHMS = (ES256, -257)
CREDENTIAL_ID_BYTES = 32
# Browsers zero the AAGUID along with the statement when attestation is "none".
NONE_AAGUID = bytes(16)

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_BE = 0x08
FLAG_BS = 0x10
FLAG_AT = 0x40


class WebAuthnClientError(Exception):
    """The ceremony failed in the browser, named after the DOMException a browser would raise."""


class InvalidStateError(WebAuthnClientError):
    """create(): the authenticator already holds a credential the RP excluded."""


class NotSupportedError(WebAuthnClientError):
    """create(): the RP accepts none of the authenticator's algorithms."""


class NotAllowedError(WebAuthnClientError):
    """get(): the authenticator holds no credential the RP would accept."""


def b64url(data: bytes) -> str:
    """base64url without padding, the encoding of every binary field in WebAuthn's JSON."""
    return urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(kw_only=True)
class StoredCredential:
    """A discoverable credential the authenticator holds."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()


class SoftwareAuthenticator:
    """A platform authenticator behind a browser at ``origin``.

    ``user_verifying`` is whether it verifies the user (UV) unless a call says otherwise;
    ``backup_eligible`` and ``backed_up`` are the BE and BS flags of a synced passkey;
    ``counter_step`` is how far each assertion moves the signature counter (0 for the
    authenticators, most synced passkeys among them, that always report 0).
    """

    def __init__(
        self,
        *,
        origin: str = "http://localhost:8000",
        user_verifying: bool = True,
        backup_eligible: bool = True,
        backed_up: bool = True,
        counter_step: int = 1,
    ) -> None:
        if backed_up and not backup_eligible:
            # Authenticator data with BS but not BE is malformed: no authenticator sends it.
            raise ValueError("a credential cannot be backed up without being backup eligible")
        if counter_step < 0:
            raise ValueError("counter_step must not be negative; pass sign_count to get()")
        self.origin = origin
        self.user_verifying = user_verifying
        self.backup_eligible = backup_eligible
        self.backed_up = backed_up
        self.counter_step = counter_step
        # Whether the page runs in a frame of another origin's page (clientData.crossOrigin).
        self.cross_origin = False
        self.credentials: list[StoredCredential] = []

    def create(
        self,
        options: Mapping[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        user_verified: bool | None = None,
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        """navigator.credentials.create(): a new credential, as RegistrationResponseJSON.

        ``credential_id`` gives the new credential an id already in use elsewhere, as a
        relying party may see a credential presented for registration a second time.

        ``origin`` and ``challenge`` replace what the browser would put in the client data;
        ``rp_id`` is the RP the authenticator binds the credential to (and hashes into the
        authenticator data) in place of the options'. ``user_verified`` defaults to
        ``user_verifying``, whatever the options require: the server has to refuse it.
        """
        origin = self.origin if origin is None else origin
        if rp_id is None:
            rp_id = _rp_id_of(options.get("rp", {}).get("id"), origin)
        excluded = _credential_ids(options.get("excludeCredentials"))
        if any(c.rp_id == rp_id and c.credential_id in excluded for c in self.credentials):
            raise InvalidStateError(f"a credential for {rp_id!r} in excludeCredentials exists")
        algorithms = [p["alg"] for p in options.get("pubKeyCredParams") or ()]
        if ES256 not in (algorithms or DEFAULT_ALGORITHMS):
            raise NotSupportedError(f"ES256 is not among pubKeyCredParams {algorithms}")

        credential = StoredCredential(
            credential_id=credential_id or secrets.token_bytes(CREDENTIAL_ID_BYTES),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id,
            user_handle=from_b64url(options["user"]["id"]),
            sign_count=0,
        )
        # Several credentials for one user are kept side by side, where a CTAP2 authenticator
        # would overwrite: a test may register twice and then sign with either.
        self.credentials.append(credential)

        attested = (
            NONE_AAGUID
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + _cose_key(credential.public_key)
        )
        authenticator_data = self._authenticator_data(
            rp_id=rp_id,
            user_verified=self._user_verified(user_verified),
            sign_count=credential.sign_count,
            attested_credential_data=attested,
        )
        attestation_object = cbor2.dumps(
            {"fmt": "none", "attStmt": {}, "authData": authenticator_data}
        )
        client_data = _client_data_json(
            "webauthn.create", options, challenge=challenge, origin=origin
        )
        public_key = credential.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return _public_key_credential(
            credential.credential_id,
            {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation_object),
                "authenticatorData": b64url(authenticator_data),
                "transports": ["internal"],
                "publicKeyAlgorithm": ES256,
                "publicKey": b64url(public_key),
            },
        )

    def get(
        self,
        options: Mapping[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        credential: StoredCredential | None = None,
        user_verified: bool | None = None,
        sign_count: int | None = None,
    ) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion, as AuthenticationResponseJSON.

        The credential is ``credential`` when given, whatever the options allow; otherwise the
        first one held for the options' RP that allowCredentials admits (any, when it is empty).
        ``rp_id`` changes only the RP ID hash signed, as an authenticator scoped elsewhere would.
        ``sign_count`` sets the counter (backwards too) instead of stepping it.
        """
        origin = self.origin if origin is None else origin
        options_rp_id = _rp_id_of(options.get("rpId"), origin)
        if credential is None:
            credential = self._select(options_rp_id, options.get("allowCredentials"))
        credential.sign_count = (
            credential.sign_count + self.counter_step if sign_count is None else sign_count
        )
        authenticator_data = self._authenticator_data(
            rp_id=options_rp_id if rp_id is None else rp_id,
            user_verified=self._user_verified(user_verified),
            sign_count=credential.sign_count,
        )
        client_data = _client_data_json(
            "webauthn.get",
            options,
            challenge=challenge,
            origin=origin,
            cross_origin=self.cross_origin,
        )
        signature = credential.private_key.sign(
            authenticator_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return _public_key_credential(
            credential.credential_id,
            {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(authenticator_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle),
            },
        )

    def _select(
        self, rp_id: str, allow_credentials: Iterable[Mapping[str, Any]] | None
    ) -> StoredCredential:
        allowed = _credential_ids(allow_credentials)
        for stored in self.credentials:
            if stored.rp_id == rp_id and (not allowed or stored.credential_id in allowed):
                return stored
        raise NotAllowedError(f"no credential for {rp_id!r} that allowCredentials admits")

    def _user_verified(self, user_verified: bool | None) -> bool:
        return self.user_verifying if user_verified is None else user_verified

    def _authenticator_data(
        self,
        *,
        rp_id: str,
        user_verified: bool,
        sign_count: int,
        attested_credential_data: bytes = b"",
    ) -> bytes:
        flags = FLAG_UP
        if user_verified:
            flags |= FLAG_UV
        if self.backup_eligible:
            flags |= FLAG_BE
        if self.backed_up:
            flags |= FLAG_BS
        if attested_credential_data:
            flags |= FLAG_AT
        return (
            hashlib.sha256(rp_id.encode()).digest()
            + struct.pack(">BI", flags, sign_count)
            + attested_credential_data
        )


def _rp_id_of(rp_id: str | None, origin: str) -> str:
    # An RP that names no RP ID gets the origin's effective domain, as browsers give it.
    return rp_id or urlsplit(origin).hostname or ""


def _credential_ids(descriptors: Iterable[Mapping[str, Any]] | None) -> set[bytes]:
    return {from_b64url(d["id"]) for d in descriptors or ()}


def _cose_key(public_key: ec.EllipticCurvePublicKey) -> bytes:
    numbers = public_key.public_numbers()
    # kty EC2, alg ES256, crv P-256, x, y: in CTAP2's canonical order already.
    return cbor2.dumps(
        {
            1: 2,
            3: ES256,
            -1: 1,
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
    )


def _client_data_json(
    ceremony: str,
    options: Mapping[str, Any],
    *,
    challenge: bytes | None,
    origin: str,
    cross_origin: bool = False,
) -> bytes:
    if challenge is None:
        challenge = from_b64url(options["challenge"])
    # Browsers serialise these members first, in this order and compactly (WebAuthn L3 5.8.1.1).
    data = {
        "type": ceremony,
        "challenge": b64url(challenge),
        "origin": origin,
        "crossOrigin": cross_origin,
    }
    return json.dumps(data, separators=(",", ":")).encode()


def _public_key_credential(credential_id: bytes, response: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": b64url(credential_id),
        "rawId": b64url(credential_id),
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
        "response": response,
    }
