"""The reports service against a real gql-app: accounts made on it, signed in through it,
their tokens sent here."""

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from gql_app.testing import (
    Account,
    CreateUser,
    GqlAppError,
    GqlAppServer,
    GqlClient,
    LoginAs,
    MailOutbox,
)

from reports.app import TokenSettings, create_app

NEW_PASSWORD = "violet tangerine submarine 42"
REQUEST_RESET = "mutation Request($email: String!) { requestPasswordReset(email: $email) }"
RESET = "mutation Reset($input: ResetPasswordInput!) { resetPassword(input: $input) }"


def test_a_signed_in_user_reads_their_reports(
    reports: TestClient, create_user: CreateUser, login_as: LoginAs
) -> None:
    user = create_user(is_verified=True)

    answer = reports.get("/reports/mine", headers=login_as(user).headers)

    assert answer.status_code == 200
    assert answer.json() == {"owner": user.id, "reports": []}


def test_a_superuser_is_just_a_user_here(
    reports: TestClient, superuser: Account, login_as: LoginAs
) -> None:
    answer = reports.get("/reports/mine", headers=login_as(superuser).headers)

    assert answer.json()["owner"] == superuser.id


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["none", "garbage", "basic"],
)
def test_without_a_gql_app_token_it_is_401(reports: TestClient, headers: dict[str, str]) -> None:
    answer = reports.get("/reports/mine", headers=headers)

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_claims(token: str, claims: dict[str, Any]) -> str:
    """The token with its claims replaced and gql-app's signature kept."""
    header, _, signature = token.split(".")
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{signature}"


def _with_signature_flipped(token: str) -> str:
    signing_input, _, signature = token.rpartition(".")
    flipped = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    flipped[len(flipped) // 2] ^= 0x01
    return f"{signing_input}.{_b64(bytes(flipped))}"


def test_a_token_gql_app_did_not_sign_is_refused(
    reports: TestClient, create_user: CreateUser, login_as: LoginAs
) -> None:
    token = login_as(create_user()).access_token
    # The genuine token passes: what each forgery changes is what gets it refused.
    assert reports.get("/reports/mine", headers={"Authorization": f"Bearer {token}"}).is_success
    kid = jwt.get_unverified_header(token)["kid"]
    real = jwt.decode(token, options={"verify_signature": False})
    another_key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    forgeries = {
        "another key, gql-app's kid": jwt.encode(real, another_key, "ES256", {"kid": kid}),
        "another key, its own kid": jwt.encode(real, another_key, "ES256", {"kid": "mine"}),
        "signature tampered with": _with_signature_flipped(token),
        "another audience": _with_claims(token, {**real, "aud": "gql-app"}),
        "expired": _with_claims(token, {**real, "iat": now - 120, "exp": now - 60}),
        "not an access token": _with_claims(token, {**real, "type": "refresh"}),
    }

    for name, forged in forgeries.items():
        answer = reports.get("/reports/mine", headers={"Authorization": f"Bearer {forged}"})
        assert answer.status_code == 401, name


def test_a_token_for_another_audience_is_refused(
    gql_app_server: GqlAppServer, create_user: CreateUser, login_as: LoginAs
) -> None:
    # gql-app signs this suite's tokens for "reports"; a service of another audience that
    # trusts the same keys must not take them.
    billing = create_app(TokenSettings(jwks_url=gql_app_server.jwks_url, audience="billing"))
    tokens = login_as(create_user())

    with TestClient(billing) as client:
        answer = client.get("/reports/mine", headers=tokens.headers)

    assert answer.status_code == 401


def test_a_refresh_token_is_not_an_access_token(
    reports: TestClient, create_user: CreateUser, login_as: LoginAs
) -> None:
    tokens = login_as(create_user())

    answer = reports.get(
        "/reports/mine", headers={"Authorization": f"Bearer {tokens.refresh_token}"}
    )

    assert answer.status_code == 401


def test_after_a_password_reset_the_new_password_signs_in_here(
    reports: TestClient,
    create_user: CreateUser,
    login_as: LoginAs,
    gql_client: GqlClient,
    mail_outbox: MailOutbox,
) -> None:
    user = create_user()
    gql_client(REQUEST_RESET, {"email": user.email})
    mail = mail_outbox.wait_for(user.email)
    assert mail.link is not None
    assert mail.link.startswith("https://reports.example/reset-password?token=")

    gql_client(RESET, {"input": {"token": mail.token, "newPassword": NEW_PASSWORD}})

    with pytest.raises(GqlAppError) as old_password:
        login_as(user)
    assert (old_password.value.code, old_password.value.reason) == (
        "UNAUTHENTICATED",
        "INVALID_CREDENTIALS",
    )
    answer = reports.get("/reports/mine", headers=login_as(user, password=NEW_PASSWORD).headers)
    assert answer.json()["owner"] == user.id
