"""The reports service against a real gql-app: accounts made on it, signed in through it,
their tokens sent here."""

import time

import jwt
import pytest
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


def test_a_token_gql_app_did_not_sign_is_refused(
    reports: TestClient, gql_app_server: GqlAppServer, create_user: CreateUser, login_as: LoginAs
) -> None:
    real = jwt.decode(
        login_as(create_user()).access_token,
        gql_app_server.secret_key,
        algorithms=["HS256"],
        audience="reports",
    )
    now = int(time.time())
    forgeries = {
        "another key": jwt.encode(real, "x" * 48, algorithm="HS256"),
        "another audience": jwt.encode(
            {**real, "aud": "gql-app"}, gql_app_server.secret_key, algorithm="HS256"
        ),
        "expired": jwt.encode(
            {**real, "iat": now - 120, "exp": now - 60}, gql_app_server.secret_key, "HS256"
        ),
        "not an access token": jwt.encode(
            {**real, "type": "refresh"}, gql_app_server.secret_key, algorithm="HS256"
        ),
    }

    for name, token in forgeries.items():
        answer = reports.get("/reports/mine", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, name


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
