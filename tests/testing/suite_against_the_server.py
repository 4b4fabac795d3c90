"""A suite as a team whose code trusts gql-app writes it: run by tests/testing/test_plugin.py
with pytester, with ``-p gql_app.testing`` and the conftest.py that test writes beside it.

Its name does not start with ``test_``: the project's own run does not collect it.
"""

import asyncio

import jwt
import pytest

from gql_app.errors import InputValidationError
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

ME = "query { me { id email fullName isSuperuser isVerified isActive } }"
USER = "query User($id: ID!) { user(id: $id) { id email } }"
REGISTER = """
mutation Register($input: RegisterInput!) { register(input: $input) { id email isVerified } }
"""
VERIFY_EMAIL = "mutation Verify($token: String!) { verifyEmail(token: $token) { isVerified } }"
REQUEST_RESET = "mutation Request($email: String!) { requestPasswordReset(email: $email) }"
RESET = "mutation Reset($input: ResetPasswordInput!) { resetPassword(input: $input) }"


def test_an_account_signs_in_and_reads_itself(
    create_user: CreateUser, login_as: LoginAs, gql_client: GqlClient
) -> None:
    user = create_user(full_name="Ada Lovelace", is_verified=True)

    tokens = login_as(user)

    me = gql_client(ME, token=tokens.access_token)["me"]
    assert me == {
        "id": user.id,
        "email": user.email,
        "fullName": "Ada Lovelace",
        "isSuperuser": False,
        "isVerified": True,
        "isActive": True,
    }
    # conftest.py's gql_app_settings reached the server.
    assert tokens.expires_in == 120
    assert tokens.headers == {"Authorization": f"Bearer {tokens.access_token}"}


def test_every_account_is_new_and_unique(create_user: CreateUser) -> None:
    first, second = create_user(), create_user()

    assert first.email != second.email
    assert first.password != second.password
    assert (first.is_superuser, first.is_verified, first.is_active) == (False, False, True)


def test_a_chosen_email_is_stored_as_register_stores_it(
    create_user: CreateUser, login_as: LoginAs
) -> None:
    user = create_user(email="  Chosen.Once@Example.COM ", password=NEW_PASSWORD)

    assert (user.email, user.password) == ("chosen.once@example.com", NEW_PASSWORD)
    assert login_as(user).access_token
    with pytest.raises(ValueError, match="already registered"):
        create_user(email="chosen.once@example.com")
    with pytest.raises(InputValidationError, match="too common"):
        create_user(password="password1234")


def test_the_superuser_may_read_other_accounts(
    superuser: Account, create_user: CreateUser, login_as: LoginAs, gql_client: GqlClient
) -> None:
    other = create_user()

    found = gql_client(USER, {"id": other.id}, token=login_as(superuser).access_token)

    assert found == {"user": {"id": other.id, "email": other.email}}
    assert (superuser.is_superuser, superuser.is_verified) == (True, True)
    forbidden = gql_client.refused(USER, {"id": other.id}, token=login_as(other).access_token)
    assert forbidden.code == "FORBIDDEN"


def test_errors_carry_code_fields_and_the_whole_answer(
    create_user: CreateUser, login_as: LoginAs, gql_client: GqlClient
) -> None:
    weak = gql_client.refused(REGISTER, {"input": {"email": "a@example.com", "password": "x"}})

    assert (weak.code, weak.reason, weak.status) == ("BAD_USER_INPUT", "BAD_USER_INPUT", 200)
    assert weak.fields == {"password": "Password must be at least 12 characters long"}
    assert weak.field_codes == {"password": "TOO_SHORT"}
    assert weak.response["data"] is None
    assert weak.errors == weak.response["errors"]
    assert str(weak) == "BAD_USER_INPUT: Password must be at least 12 characters long"

    with pytest.raises(AssertionError, match="expected an error"):
        gql_client.refused("query { __typename }")
    unknown = gql_client.refused("query { nothing }")
    assert (unknown.code, unknown.status) == ("GRAPHQL_VALIDATION_FAILED", 200)

    with pytest.raises(GqlAppError) as wrong_password:
        login_as(create_user(), password="not the password at all")
    assert (wrong_password.value.code, wrong_password.value.reason) == (
        "UNAUTHENTICATED",
        "INVALID_CREDENTIALS",
    )
    assert wrong_password.value.fields == {}

    with pytest.raises(GqlAppError) as disabled:
        login_as(create_user(is_active=False))
    assert (disabled.value.code, disabled.value.message) == (
        "FORBIDDEN",
        "This account is disabled",
    )


def test_a_wrong_url_is_an_error_too(gql_app_server: GqlAppServer) -> None:
    elsewhere = GqlClient(f"{gql_app_server.url}/no-such-endpoint")

    caught = elsewhere.refused(ME)

    assert (caught.code, caught.reason, caught.status) == ("NOT_FOUND", "NOT_FOUND", 404)


def test_an_answer_that_is_not_graphql_has_no_code() -> None:
    # What a proxy in front of the server might answer.
    caught = GqlAppError(status=502, response=None, text="<html>Bad Gateway</html>")

    assert (caught.code, caught.reason, caught.errors, caught.fields) == (None, None, [], {})
    assert caught.message == "HTTP 502: <html>Bad Gateway</html>"


def test_a_registration_is_confirmed_with_the_mailed_link(
    gql_client: GqlClient, mail_outbox: MailOutbox
) -> None:
    email = "Registers.Here@Example.com"
    registered = gql_client(REGISTER, {"input": {"email": email, "password": NEW_PASSWORD}})
    assert registered["register"]["isVerified"] is False

    mail = mail_outbox.wait_for(email)

    assert mail.to == "registers.here@example.com"
    assert mail.subject == "Confirm your email address"
    assert mail.link is not None
    assert mail.link.startswith("https://app.example/verify-email?token=")
    assert mail.token is not None
    assert mail.token in mail.body
    assert mail.message["To"] == "registers.here@example.com"
    assert gql_client(VERIFY_EMAIL, {"token": mail.token}) == {"verifyEmail": {"isVerified": True}}
    assert list(mail_outbox) == [mail]
    assert (len(mail_outbox), mail_outbox[0], mail_outbox[:1]) == (1, mail, [mail])


def test_a_password_is_reset_with_the_mailed_token(
    create_user: CreateUser, login_as: LoginAs, gql_client: GqlClient, mail_outbox: MailOutbox
) -> None:
    # The test before this one had mail; this test's outbox holds only its own.
    assert len(mail_outbox) == 0
    user = create_user()

    for _ in range(2):
        assert gql_client(REQUEST_RESET, {"email": user.email}) == {"requestPasswordReset": True}
    first, second = mail_outbox.wait_for(user.email), mail_outbox.wait_for(user.email)

    assert first.token != second.token
    # A newer link spends the older one.
    stale = gql_client.refused(
        RESET, {"input": {"token": first.token, "newPassword": NEW_PASSWORD}}
    )
    assert stale.field_codes == {"token": "INVALID_TOKEN"}
    assert gql_client(RESET, {"input": {"token": second.token, "newPassword": NEW_PASSWORD}})
    assert login_as(user, password=NEW_PASSWORD).access_token
    # The owner hears of the reset, with no link in it: a notice is never a key.
    notice = mail_outbox.wait_for(user.email)
    assert (notice.subject, notice.token) == ("Your password was reset", None)
    with pytest.raises(AssertionError, match=f"no mail to {user.email} arrived within 0.1 s"):
        mail_outbox.wait_for(user.email, timeout=0.1)


def test_its_tokens_verify_with_the_keys_it_publishes(
    gql_app_server: GqlAppServer, create_user: CreateUser, login_as: LoginAs
) -> None:
    user = create_user()
    token = login_as(user).access_token

    # As a service that trusts gql-app verifies: the key the token names, from the JWKS,
    # with that key's own algorithm.
    key = jwt.PyJWKClient(gql_app_server.jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token, key.key, algorithms=[key.algorithm_name], audience="gql-app", issuer="gql-app"
    )

    assert (claims["sub"], claims["type"]) == (user.id, "access")
    assert gql_app_server.settings["RATE_LIMIT_ENABLED"] == "false"
    assert gql_app_server.database_url.startswith("sqlite+aiosqlite:///")
    assert gql_app_server.graphql_url == f"{gql_app_server.url}/graphql"
    assert gql_app_server.jwks_url == f"{gql_app_server.url}/.well-known/jwks.json"
    assert key.algorithm_name == "ES256"
    assert len(gql_app_server.secret_key) >= 32


@pytest.mark.asyncio
async def test_an_async_test_uses_the_fixtures_too(
    create_user: CreateUser, login_as: LoginAs, gql_client: GqlClient
) -> None:
    # The fixtures block; an async test already running its own event loop still works.
    user = create_user()
    await asyncio.sleep(0)

    me = gql_client(ME, token=login_as(user).access_token)

    assert me["me"]["id"] == user.id
