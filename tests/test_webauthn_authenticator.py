"""The software authenticator the passkey tests sign with, checked against py_webauthn.

A mistake in it would pass or fail the server's tests for the wrong reason: what it makes has to
verify with the library the server uses, exactly as a browser's would.
"""

import json

import pytest
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from tests.webauthn_authenticator import InvalidStateError, SoftwareAuthenticator, from_b64url

ORIGIN = "http://localhost:8000"
RP_ID = "localhost"
USER_HANDLE = b"user-handle-0123"


def registration_options(
    *, exclude: list[bytes] | None = None
) -> PublicKeyCredentialCreationOptions:
    return generate_registration_options(
        rp_id=RP_ID,
        rp_name="gql-app",
        user_id=USER_HANDLE,
        user_name="ada@example.com",
        exclude_credentials=[PublicKeyCredentialDescriptor(id=id_) for id_ in exclude or ()],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
    )


def register(authenticator: SoftwareAuthenticator) -> VerifiedRegistration:
    options = registration_options()
    return verify_registration_response(
        credential=authenticator.create(json.loads(options_to_json(options))),
        expected_challenge=options.challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
    )


def test_a_registration_verifies_as_a_synced_passkey() -> None:
    authenticator = SoftwareAuthenticator()

    registration = register(authenticator)

    [stored] = authenticator.credentials
    assert registration.credential_id == stored.credential_id
    assert (stored.rp_id, stored.user_handle) == (RP_ID, USER_HANDLE)
    assert (registration.sign_count, registration.fmt) == (0, "none")
    assert registration.user_verified
    assert registration.credential_backed_up
    assert registration.credential_device_type == CredentialDeviceType.MULTI_DEVICE


@pytest.mark.parametrize("allow", [False, True], ids=["discoverable", "allowed"])
def test_an_assertion_verifies_and_moves_the_counter(allow: bool) -> None:
    authenticator = SoftwareAuthenticator()
    registration = register(authenticator)
    allowed = [PublicKeyCredentialDescriptor(id=registration.credential_id)] if allow else None
    options = generate_authentication_options(rp_id=RP_ID, allow_credentials=allowed)

    response = authenticator.get(json.loads(options_to_json(options)))

    authentication = verify_authentication_response(
        credential=response,
        expected_challenge=options.challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=registration.credential_public_key,
        credential_current_sign_count=registration.sign_count,
        require_user_verification=True,
    )
    assert authentication.credential_id == registration.credential_id
    assert authentication.new_sign_count == 1
    # What the server finds the account by when allowCredentials was empty.
    assert from_b64url(response["response"]["userHandle"]) == USER_HANDLE


def test_a_non_verifying_authenticator_leaves_uv_unset() -> None:
    authenticator = SoftwareAuthenticator(
        user_verifying=False, backup_eligible=False, backed_up=False
    )
    registration = register(authenticator)
    options = generate_authentication_options(
        rp_id=RP_ID, user_verification=UserVerificationRequirement.REQUIRED
    )

    authentication = verify_authentication_response(
        credential=authenticator.get(json.loads(options_to_json(options))),
        expected_challenge=options.challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=registration.credential_public_key,
        credential_current_sign_count=registration.sign_count,
    )

    assert not registration.user_verified
    assert not authentication.user_verified
    assert not authentication.credential_backed_up


def test_an_excluded_credential_is_not_registered_again() -> None:
    authenticator = SoftwareAuthenticator()
    registration = register(authenticator)
    options = registration_options(exclude=[registration.credential_id])

    with pytest.raises(InvalidStateError):
        authenticator.create(json.loads(options_to_json(options)))

    assert len(authenticator.credentials) == 1
