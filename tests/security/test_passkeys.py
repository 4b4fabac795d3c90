"""The WebAuthn checks around py_webauthn: what no credential can make them do."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gql_app.security import passkeys
from gql_app.security.passkeys import RelyingParty
from tests.webauthn_authenticator import SoftwareAuthenticator, b64url

ORIGIN = "https://app.example"
RELYING_PARTY = RelyingParty(
    id="app.example",
    name="App",
    user_verification="preferred",
    accepts_origin=lambda origin: origin == ORIGIN,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "AA", "!!!", "public-key", "e30", "A"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
credential_fields = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "rawId": json_values,
        "type": st.sampled_from(["public-key", "other"]) | json_values,
        "authenticatorAttachment": json_values,
        "response": st.fixed_dictionaries(
            {},
            optional={
                "clientDataJSON": json_values,
                "attestationObject": json_values,
                "authenticatorData": json_values,
                "signature": json_values,
                "userHandle": json_values,
                "transports": json_values,
            },
        ),
    },
)


@settings(max_examples=150, deadline=None)
@given(credential=json_values | credential_fields)
def test_anything_parses_as_a_credential_or_is_called_malformed(credential: Any) -> None:
    for parse in (passkeys.parse_registration, passkeys.parse_authentication):
        try:
            parsed = parse(credential)
        except passkeys.MalformedCredentialError:
            continue
        # Parsed, it has the binary fields verification reads.
        assert isinstance(parsed.raw_id, bytes)
        assert isinstance(parsed.response.client_data_json, bytes)


def registration() -> tuple[SoftwareAuthenticator, dict[str, Any], bytes]:
    challenge = passkeys.new_challenge()
    options = passkeys.registration_options(
        relying_party=RELYING_PARTY,
        challenge=challenge,
        user_handle=b"user",
        user_name="ada@example.com",
        display_name="Ada",
        existing=[],
    )
    device = SoftwareAuthenticator(origin=ORIGIN)
    return device, device.create(options), challenge


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["clientDataJSON", "attestationObject"]),
    garbage=st.binary(max_size=64),
)
def test_a_well_formed_registration_with_garbage_inside_is_refused_not_raised(
    field: str, garbage: bytes
) -> None:
    _, credential, challenge = registration()
    credential["response"][field] = b64url(garbage)
    try:
        parsed = passkeys.parse_registration(credential)
    except passkeys.MalformedCredentialError:
        return
    with pytest.raises(passkeys.CredentialRejectedError):
        passkeys.verify_registration(
            relying_party=RELYING_PARTY, credential=parsed, challenge=challenge
        )


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["clientDataJSON", "authenticatorData", "signature"]),
    garbage=st.binary(max_size=64),
)
def test_a_well_formed_assertion_with_garbage_inside_is_refused_not_raised(
    field: str, garbage: bytes
) -> None:
    device, created, challenge = registration()
    registered = passkeys.verify_registration(
        relying_party=RELYING_PARTY,
        credential=passkeys.parse_registration(created),
        challenge=challenge,
    )
    sign_in = passkeys.new_challenge()
    options = passkeys.authentication_options(
        relying_party=RELYING_PARTY, challenge=sign_in, allowed=[]
    )
    assertion = device.get(options)
    assertion["response"][field] = b64url(garbage)
    parsed = passkeys.parse_authentication(assertion)
    with pytest.raises(passkeys.CredentialRejectedError):
        passkeys.verify_assertion(
            relying_party=RELYING_PARTY,
            credential=parsed,
            challenge=sign_in,
            public_key=registered.public_key,
        )


def test_a_right_assertion_verifies_and_reports_its_flags() -> None:
    device, created, challenge = registration()
    registered = passkeys.verify_registration(
        relying_party=RELYING_PARTY,
        credential=passkeys.parse_registration(created),
        challenge=challenge,
    )
    sign_in = passkeys.new_challenge()
    options = passkeys.authentication_options(
        relying_party=RELYING_PARTY, challenge=sign_in, allowed=[]
    )

    verified = passkeys.verify_assertion(
        relying_party=RELYING_PARTY,
        credential=passkeys.parse_authentication(device.get(options)),
        challenge=sign_in,
        public_key=registered.public_key,
    )

    assert (verified.sign_count, verified.user_verified, verified.backed_up) == (1, True, True)


@pytest.mark.parametrize(
    ("client_data", "refusal"),
    [
        # Nested past the JSON decoder's recursion limit, within the size allowed.
        (b"[" * 4000, passkeys.CredentialRejectedError),
        (b" " * (passkeys.MAX_CLIENT_DATA_BYTES + 1), passkeys.MalformedCredentialError),
    ],
    ids=["deeply-nested", "too-long"],
)
def test_hostile_client_data_is_refused_not_raised(
    client_data: bytes, refusal: type[Exception]
) -> None:
    _, created, challenge = registration()
    created["response"]["clientDataJSON"] = b64url(client_data)

    with pytest.raises(refusal):
        passkeys.verify_registration(
            relying_party=RELYING_PARTY,
            credential=passkeys.parse_registration(created),
            challenge=challenge,
        )
