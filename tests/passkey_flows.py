"""Passkey ceremonies through GraphQL, with the software authenticator as the browser."""

from typing import Any

from tests.graphql import GraphQLClient, GraphQLResponse
from tests.operations import AUTH_PAYLOAD_FIELDS
from tests.webauthn_authenticator import SoftwareAuthenticator

# The suite's FRONTEND_BASE_URL is http://localhost:3000: its origin, and localhost the RP ID.
ORIGIN = "http://localhost:3000"
RP_ID = "localhost"

PASSKEY_FIELDS = "id name createdAt lastUsedAt backedUp transports"
MY_PASSKEYS = f"query {{ myPasskeys {{ {PASSKEY_FIELDS} }} }}"
START_PASSKEY_REGISTRATION = "mutation { startPasskeyRegistration { challengeId options } }"
FINISH_PASSKEY_REGISTRATION = f"""
mutation Finish($input: FinishPasskeyRegistrationInput!) {{
  finishPasskeyRegistration(input: $input) {{ {PASSKEY_FIELDS} }}
}}
"""
RENAME_PASSKEY = f"""
mutation Rename($id: ID!, $name: String!) {{
  renamePasskey(id: $id, name: $name) {{ {PASSKEY_FIELDS} }}
}}
"""
DELETE_PASSKEY = "mutation Delete($id: ID!) { deletePasskey(id: $id) }"
START_PASSKEY_SIGN_IN = "mutation { startPasskeySignIn { challengeId options } }"
FINISH_PASSKEY_SIGN_IN = f"""
mutation Finish($input: FinishPasskeySignInInput!) {{
  finishPasskeySignIn(input: $input) {{ {AUTH_PAYLOAD_FIELDS} }}
}}
"""


def data_of(response: GraphQLResponse, field: str) -> Any:
    assert response.errors == [], response.body
    return response.data[field]


def reason_of(response: GraphQLResponse, code: str) -> str:
    reason: str = response.single_error(code)["extensions"]["reason"]
    return reason


def authenticator(**options: Any) -> SoftwareAuthenticator:
    return SoftwareAuthenticator(origin=ORIGIN, **options)


async def start_registration(gql: GraphQLClient, token: str) -> dict[str, Any]:
    ceremony: dict[str, Any] = data_of(
        await gql(START_PASSKEY_REGISTRATION, token=token), "startPasskeyRegistration"
    )
    return ceremony


async def finish_registration(
    gql: GraphQLClient,
    token: str,
    challenge_id: str,
    credential: object,
    name: str | None = None,
) -> GraphQLResponse:
    payload: dict[str, Any] = {"challengeId": challenge_id, "credential": credential}
    if name is not None:
        payload["name"] = name
    return await gql(FINISH_PASSKEY_REGISTRATION, {"input": payload}, token=token)


async def add_passkey(
    gql: GraphQLClient, token: str, device: SoftwareAuthenticator, name: str | None = None
) -> dict[str, Any]:
    """Both halves of a registration, as a browser runs them."""
    ceremony = await start_registration(gql, token)
    credential = device.create(ceremony["options"])
    response = await finish_registration(gql, token, ceremony["challengeId"], credential, name)
    passkey: dict[str, Any] = data_of(response, "finishPasskeyRegistration")
    return passkey


async def start_sign_in(gql: GraphQLClient) -> dict[str, Any]:
    ceremony: dict[str, Any] = data_of(await gql(START_PASSKEY_SIGN_IN), "startPasskeySignIn")
    return ceremony


async def finish_sign_in(
    gql: GraphQLClient, challenge_id: str, credential: object
) -> GraphQLResponse:
    return await gql(
        FINISH_PASSKEY_SIGN_IN,
        {"input": {"challengeId": challenge_id, "credential": credential}},
    )


async def passkey_sign_in(
    gql: GraphQLClient, device: SoftwareAuthenticator, **assertion: Any
) -> GraphQLResponse:
    """startPasskeySignIn, the authenticator's answer (``assertion`` goes to its get()),
    finishPasskeySignIn."""
    ceremony = await start_sign_in(gql)
    credential = device.get(ceremony["options"], **assertion)
    return await finish_sign_in(gql, ceremony["challengeId"], credential)
