"""WebAuthn ceremonies through py_webauthn: the options a browser passes to
``PublicKeyCredential.parse*OptionsFromJSON``, and the checks of what it sends back
(``credential.toJSON()``). Nothing here reads or writes the database."""

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from webauthn.helpers.structs import (
        AuthenticationCredential,
        PublicKeyCredentialDescriptor,
        RegistrationCredential,
    )

# py_webauthn is imported where a ceremony first needs it: with pyOpenSSL and the attestation
# formats it costs each worker about 5 MB and 0.2 s, for nothing where passkeys go unused.
# ruff: noqa: PLC0415

CHALLENGE_BYTES = 32
# What a ceremony waits for in the browser, as long as its challenge lives.
CEREMONY_MILLISECONDS = 300_000

# WebAuthn §5.1: at most 1023 bytes. Client data is a small JSON object; more is an attack.
MAX_CREDENTIAL_ID_BYTES = 1023
MAX_CLIENT_DATA_BYTES = 4096


@cache
def _parse_errors() -> tuple[type[Exception], ...]:
    """What a malformed credential can raise deep in the library's decoders, not only its own
    errors (deeply nested JSON: RecursionError)."""
    from webauthn.helpers.exceptions import WebAuthnException

    return (WebAuthnException, ValueError, TypeError, KeyError, IndexError, RecursionError)


class MalformedCredentialError(Exception):
    """Not a credential at all: not the JSON a browser's credential.toJSON() answers."""


class CredentialRejectedError(Exception):
    """A credential that does not prove what it must (its message says why, for the log)."""


@dataclass(frozen=True, slots=True)
class RelyingParty:
    id: str
    name: str
    user_verification: Literal["preferred", "required"]
    accepts_origin: Callable[[str], bool]

    @property
    def requires_user_verification(self) -> bool:
        return self.user_verification == "required"


@dataclass(frozen=True, slots=True)
class PasskeyOptions:
    """A ceremony to run in the browser: its options, and the id to send back with its
    answer (the challenge itself is kept by the server)."""

    challenge_id: str
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KnownCredential:
    """A credential the account holds, for excludeCredentials and allowCredentials."""

    credential_id: bytes
    transports: Sequence[str]


@dataclass(frozen=True, slots=True)
class RegisteredCredential:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    backup_eligible: bool
    backed_up: bool
    transports: list[str]


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    sign_count: int
    user_verified: bool
    backup_eligible: bool
    backed_up: bool


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_BYTES)


def registration_options(
    *,
    relying_party: RelyingParty,
    challenge: bytes,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    existing: Sequence[KnownCredential],
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptionsJSON: a discoverable credential, no attestation,
    none of the account's authenticators twice."""
    from webauthn import generate_registration_options
    from webauthn.helpers import options_to_json_dict
    from webauthn.helpers.structs import (
        AttestationConveyancePreference,
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    options = generate_registration_options(
        rp_id=relying_party.id,
        rp_name=relying_party.name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=CEREMONY_MILLISECONDS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement(relying_party.user_verification),
        ),
        exclude_credentials=_descriptors(existing),
    )
    return options_to_json_dict(options)


def authentication_options(
    *, relying_party: RelyingParty, challenge: bytes, allowed: Sequence[KnownCredential]
) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptionsJSON; with nothing ``allowed``, any passkey of the
    site (a discoverable credential) may answer."""
    from webauthn import generate_authentication_options
    from webauthn.helpers import options_to_json_dict
    from webauthn.helpers.structs import UserVerificationRequirement

    options = generate_authentication_options(
        rp_id=relying_party.id,
        challenge=challenge,
        timeout=CEREMONY_MILLISECONDS,
        allow_credentials=_descriptors(allowed),
        user_verification=UserVerificationRequirement(relying_party.user_verification),
    )
    return options_to_json_dict(options)


def _descriptors(credentials: Sequence[KnownCredential]) -> "list[PublicKeyCredentialDescriptor]":
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    return [
        PublicKeyCredentialDescriptor(
            id=known.credential_id,
            transports=[AuthenticatorTransport(name) for name in known.transports],
        )
        for known in credentials
    ]


def parse_registration(credential: object) -> "RegistrationCredential":
    from webauthn.helpers.parse_registration_credential_json import (
        parse_registration_credential_json,
    )

    if not isinstance(credential, Mapping):
        raise MalformedCredentialError("the credential must be a JSON object")
    try:
        parsed = parse_registration_credential_json(dict(credential))
    except _parse_errors() as error:
        raise MalformedCredentialError(str(error)) from error
    _check_client_data_size(parsed.response.client_data_json)
    return parsed


def parse_authentication(credential: object) -> "AuthenticationCredential":
    from webauthn.helpers.parse_authentication_credential_json import (
        parse_authentication_credential_json,
    )

    if not isinstance(credential, Mapping):
        raise MalformedCredentialError("the credential must be a JSON object")
    try:
        parsed = parse_authentication_credential_json(dict(credential))
    except _parse_errors() as error:
        raise MalformedCredentialError(str(error)) from error
    _check_client_data_size(parsed.response.client_data_json)
    return parsed


def _check_client_data_size(client_data_json: bytes) -> None:
    if len(client_data_json) > MAX_CLIENT_DATA_BYTES:
        raise MalformedCredentialError("clientDataJSON is too long")


def verify_registration(
    *, relying_party: RelyingParty, credential: "RegistrationCredential", challenge: bytes
) -> RegisteredCredential:
    from webauthn import verify_registration_response
    from webauthn.helpers.structs import CredentialDeviceType

    origin = _accepted_origin(relying_party, credential.response.client_data_json)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=relying_party.id,
            expected_origin=origin,
            require_user_verification=relying_party.requires_user_verification,
        )
    except _parse_errors() as error:
        raise CredentialRejectedError(str(error)) from error
    if len(verified.credential_id) > MAX_CREDENTIAL_ID_BYTES:
        raise CredentialRejectedError("the credential id is longer than WebAuthn allows")
    return RegisteredCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type is CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
        transports=list(
            dict.fromkeys(transport.value for transport in credential.response.transports or [])
        ),
    )


def verify_assertion(
    *,
    relying_party: RelyingParty,
    credential: "AuthenticationCredential",
    challenge: bytes,
    public_key: bytes,
) -> VerifiedAssertion:
    """Checks everything but the signature counter, which the caller compares with the
    stored one under a lock (two sign-ins racing must not both pass)."""
    from webauthn import verify_authentication_response
    from webauthn.helpers.structs import CredentialDeviceType

    origin = _accepted_origin(relying_party, credential.response.client_data_json)
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=relying_party.id,
            expected_origin=origin,
            credential_public_key=public_key,
            # Zero switches the library's own counter check off; see the docstring.
            credential_current_sign_count=0,
            require_user_verification=relying_party.requires_user_verification,
        )
    except _parse_errors() as error:
        raise CredentialRejectedError(str(error)) from error
    return VerifiedAssertion(
        sign_count=verified.new_sign_count,
        user_verified=verified.user_verified,
        backup_eligible=verified.credential_device_type is CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
    )


def _accepted_origin(relying_party: RelyingParty, client_data_json: bytes) -> str:
    from webauthn.helpers import parse_client_data_json

    try:
        client_data = parse_client_data_json(client_data_json)
    except _parse_errors() as error:
        raise CredentialRejectedError("clientDataJSON is malformed") from error
    origin = client_data.origin
    if not isinstance(origin, str) or not relying_party.accepts_origin(origin):
        raise CredentialRejectedError(f"origin {origin!r} is not one passkeys are used from")
    if client_data.cross_origin:
        # A ceremony in a frame of another site's page: the site's own pages never frame it.
        raise CredentialRejectedError("the ceremony ran in a cross-origin frame")
    return origin
