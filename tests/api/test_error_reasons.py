"""Every ErrorReason, each produced by a real request, with the code it belongs to.

One scenario per reason: it makes the request a client would and answers the error's
``extensions``. A new reason without a scenario fails the first test. Scenarios name the
fixtures they use; those are set up before the test runs (an async fixture cannot be set up
from inside the running test), and a scenario reads them with ``request.getfixturevalue``.

Access tokens are minted for sessions made in the database rather than signed in for:
each sign-in costs a password hash, and only the reasons about signing in pay for one.
"""

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from graphql import get_introspection_query
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.api import documents
from gql_app.api.check_budget import time_budget
from gql_app.api.error_codes import ErrorCode, ErrorReason, FieldErrorCode
from gql_app.api.media_types import GRAPHQL_RESPONSE_JSON
from gql_app.config import Settings
from gql_app.models import Passkey, User
from gql_app.models.base import utc_now
from gql_app.security import passwords
from gql_app.services import users as users_service
from tests.api.test_document_shape import fan_out
from tests.api.test_outages import (
    LOGIN_BODY,
    REFUSING_REDIS,
    app_with,
    database_down,  # noqa: F401 - a fixture, set up by name
    hashing_busy,  # noqa: F401 - a fixture, set up by name
)
from tests.api.test_persisted_queries import TYPENAME, persisted
from tests.auth_factories import create_auth_session, create_refresh_token, signed_access_token
from tests.factories import USER_PASSWORD, create_user
from tests.graphql import LOGIN, GraphQLClient
from tests.operations import (
    DELETE_USER,
    ME,
    REFRESH_TOKEN,
    REQUEST_EMAIL_VERIFICATION,
    REQUEST_PASSWORD_RESET,
    REVOKE_SESSION,
    UPDATE_ME,
    UPDATE_USER,
)
from tests.passkey_flows import (
    DELETE_PASSKEY,
    FINISH_PASSKEY_SIGN_IN,
    RP_ID,
    START_PASSKEY_REGISTRATION,
    START_PASSKEY_SIGN_IN,
    authenticator,
    finish_registration,
    start_registration,
    start_sign_in,
)
from tests.server.test_protocol import (
    HEADER_TIMEOUT,
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
    Served,
    body_of,
    served,  # noqa: F401 - a fixture, set up by name
    status_of,
)
from tests.server.test_protocol import request as raw_request
from tests.services.test_mfa_service import enrolled
from tests.webauthn_authenticator import b64url, from_b64url

Extensions = dict[str, Any]

# Where a code has finer cases, which reasons refine it; every other reason is a code itself.
FINER_REASONS: dict[ErrorCode, set[ErrorReason]] = {
    ErrorCode.UNAUTHENTICATED: {
        ErrorReason.TOKEN_MISSING,
        ErrorReason.TOKEN_INVALID,
        ErrorReason.TOKEN_EXPIRED,
        ErrorReason.SESSION_ENDED,
        ErrorReason.INVALID_CREDENTIALS,
        ErrorReason.REFRESH_TOKEN_INVALID,
        ErrorReason.REFRESH_TOKEN_REUSED,
        ErrorReason.REFRESH_TOKEN_SUPERSEDED,
        ErrorReason.REFRESH_TOKEN_MISSING,
        ErrorReason.INVALID_MFA_CODE,
        ErrorReason.MFA_CHALLENGE_INVALID,
        ErrorReason.PASSKEY_CHALLENGE_INVALID,
        ErrorReason.PASSKEY_NOT_RECOGNISED,
        ErrorReason.PASSKEY_VERIFICATION_FAILED,
    },
    ErrorCode.FORBIDDEN: {
        ErrorReason.ACCOUNT_DISABLED,
        ErrorReason.EMAIL_NOT_VERIFIED,
        ErrorReason.SUPERUSER_REQUIRED,
        ErrorReason.CANNOT_DELETE_OWN_ACCOUNT,
        ErrorReason.REAUTHENTICATION_REQUIRED,
        ErrorReason.MFA_REQUIRED_FOR_ROLE,
        ErrorReason.CSRF_HEADER_MISSING,
    },
    ErrorCode.CONFLICT: {
        ErrorReason.EMAIL_TAKEN,
        ErrorReason.LAST_SUPERUSER,
        ErrorReason.MFA_ALREADY_ENABLED,
        ErrorReason.MFA_NOT_ENABLED,
        ErrorReason.TOO_MANY_PASSKEYS,
        ErrorReason.PASSKEY_ALREADY_REGISTERED,
    },
    ErrorCode.NOT_FOUND: {
        ErrorReason.USER_NOT_FOUND,
        ErrorReason.SESSION_NOT_FOUND,
        ErrorReason.PASSKEY_NOT_FOUND,
    },
    ErrorCode.RATE_LIMITED: {ErrorReason.LOGIN_LOCKED},
    ErrorCode.SERVICE_UNAVAILABLE: {
        ErrorReason.DATABASE_UNAVAILABLE,
        ErrorReason.RATE_LIMITER_UNAVAILABLE,
        ErrorReason.PASSKEY_CHALLENGES_UNAVAILABLE,
        ErrorReason.PASSWORD_HASHING_BUSY,
        ErrorReason.DEADLINE_EXCEEDED,
        ErrorReason.TOO_MANY_CONNECTIONS,
    },
    ErrorCode.GRAPHQL_VALIDATION_FAILED: {
        ErrorReason.UNKNOWN_OPERATION,
        ErrorReason.FRAGMENT_CYCLE,
        ErrorReason.TOO_MANY_FIELDS,
        ErrorReason.TOO_MANY_REPEATED_FIELDS,
        ErrorReason.TOO_DEEP,
        ErrorReason.TOO_MANY_ALIASES,
        ErrorReason.TOO_MANY_DIRECTIVES,
        ErrorReason.CHECK_TIME_EXCEEDED,
    },
}
_CODES = {code.value for code in ErrorCode}
EXPECTED_CODE: dict[ErrorReason, ErrorCode] = {
    **{reason: ErrorCode(reason.value) for reason in ErrorReason if reason.value in _CODES},
    **{reason: code for code, reasons in FINER_REASONS.items() for reason in reasons},
}


Run = Callable[[pytest.FixtureRequest], Awaitable[Extensions]]


@dataclass(frozen=True)
class Scenario:
    fixtures: tuple[str, ...]
    run: Run


SCENARIOS: dict[ErrorReason, Scenario] = {}


def produces(reason: ErrorReason, *fixtures: str) -> Callable[[Run], Scenario]:
    """Register the decorated function as the scenario of ``reason``, using ``fixtures``."""

    def register(run: Run) -> Scenario:
        assert reason not in SCENARIOS, f"two scenarios for {reason}"
        SCENARIOS[reason] = Scenario(fixtures=fixtures, run=run)
        return SCENARIOS[reason]

    return register


def the_error(body: dict[str, Any]) -> Extensions:
    errors = body["errors"]
    assert len(errors) == 1, body
    extensions: Extensions = errors[0]["extensions"]
    return extensions


def refusal(response: Response, status: int) -> Extensions:
    assert response.status_code == status, response.text
    return the_error(response.json())


async def graphql_error(
    request: pytest.FixtureRequest,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Extensions:
    gql: GraphQLClient = request.getfixturevalue("gql")
    response = await gql(query, variables, token=token, headers=headers)
    return the_error(response.body)


async def access_token(
    request: pytest.FixtureRequest,
    user: User,
    *,
    revoked_at: datetime | None = None,
    issued_at: datetime | None = None,
) -> str:
    """An access token for a new session of ``user``, as signing in would issue it."""
    db_session: AsyncSession = request.getfixturevalue("db_session")
    settings: Settings = request.getfixturevalue("settings")
    auth_session = await create_auth_session(db_session, user, revoked_at=revoked_at)
    return await signed_access_token(
        db_session, settings, user_id=user.id, session_id=auth_session.id, now=issued_at
    )


async def token_for_test_user(request: pytest.FixtureRequest) -> str:
    return await access_token(request, request.getfixturevalue("test_user"))


async def superuser(request: pytest.FixtureRequest) -> tuple[User, str]:
    # Not test_superuser: its own password would cost one more hash.
    db_session: AsyncSession = request.getfixturevalue("db_session")
    admin = await create_user(db_session, email="admin@example.com", is_superuser=True)
    return admin, await access_token(request, admin)


@asynccontextmanager
async def changed_app(
    request: pytest.FixtureRequest, **changes: object
) -> AsyncIterator[GraphQLClient]:
    """The application with ``changes`` to the test settings, on the test database."""
    settings: Settings = request.getfixturevalue("settings")
    app = app_with(settings, request.getfixturevalue("async_test_db"), **changes)
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
            yield GraphQLClient(http)
    finally:
        await app.state.rate_limiter.aclose()
        await app.state.persisted_queries.storage.aclose()
        await app.state.passkey_challenges.aclose()
        await app.state.engine.dispose()


async def login_error(gql: GraphQLClient, email: str, password: str) -> Extensions:
    response = await gql(LOGIN, {"input": {"email": email, "password": password}})
    return the_error(response.body)


COMPLETE_LOGIN = """
mutation CompleteLogin($input: CompleteLoginInput!) {
  completeLogin(input: $input) { accessToken refreshToken user { id } }
}
"""
START_TOTP_ENROLLMENT = "mutation { startTotpEnrollment { secret otpauthUri qrCodeSvg } }"
CONFIRM_TOTP_ENROLLMENT = "mutation ($code: String!) { confirmTotpEnrollment(code: $code) }"
DISABLE_TOTP = "mutation { disableTotp }"
REGENERATE_RECOVERY_CODES = "mutation { regenerateRecoveryCodes }"


async def with_authenticator_app(request: pytest.FixtureRequest, user: User) -> str:
    """Turns the authenticator app on for ``user`` through the services, without the
    requests enrolling takes: the scenarios are about what comes after. Answers its secret."""
    db_session: AsyncSession = request.getfixturevalue("db_session")
    secret, _ = await enrolled(db_session, request.getfixturevalue("settings"), user)
    return secret


def a_code_the_app_does_not_show(secret: str) -> str:
    """Six digits the app shows at no step near now: a mistyped code, never a lucky one."""
    app = pyotp.TOTP(secret)
    now = time.time()
    near = {app.at(now + offset * app.interval) for offset in range(-2, 3)}
    return next(code for code in (str(digit) * 6 for digit in range(10)) if code not in near)


# UNAUTHENTICATED


@produces(ErrorReason.TOKEN_MISSING, "gql")
async def anonymous_asks_for_me(request: pytest.FixtureRequest) -> Extensions:
    return await graphql_error(request, ME)


@produces(ErrorReason.TOKEN_INVALID, "gql")
async def a_token_that_is_no_jwt(request: pytest.FixtureRequest) -> Extensions:
    return await graphql_error(request, ME, headers={"Authorization": "Bearer not-a-jwt"})


@produces(ErrorReason.TOKEN_EXPIRED, "gql", "test_user", "db_session")
async def a_token_past_its_lifetime(request: pytest.FixtureRequest) -> Extensions:
    settings: Settings = request.getfixturevalue("settings")
    long_ago = utc_now() - timedelta(seconds=settings.access_token_expire_seconds + 60)
    token = await access_token(request, request.getfixturevalue("test_user"), issued_at=long_ago)
    return await graphql_error(request, ME, token=token)


@produces(ErrorReason.SESSION_ENDED, "gql", "test_user", "db_session")
async def a_token_of_a_signed_out_session(request: pytest.FixtureRequest) -> Extensions:
    user = request.getfixturevalue("test_user")
    token = await access_token(request, user, revoked_at=utc_now())
    return await graphql_error(request, ME, token=token)


@produces(ErrorReason.INVALID_CREDENTIALS, "gql", "test_user")
async def a_wrong_password(request: pytest.FixtureRequest) -> Extensions:
    user: User = request.getfixturevalue("test_user")
    return await login_error(request.getfixturevalue("gql"), user.email, "not-the-password")


@produces(ErrorReason.REFRESH_TOKEN_INVALID, "gql")
async def a_made_up_refresh_token(request: pytest.FixtureRequest) -> Extensions:
    return await graphql_error(request, REFRESH_TOKEN, {"refreshToken": "made-up"})


@produces(ErrorReason.REFRESH_TOKEN_MISSING, "gql")
async def a_refresh_with_no_token_and_no_cookie(request: pytest.FixtureRequest) -> Extensions:
    return await graphql_error(request, "mutation { refreshToken { accessToken } }")


@produces(ErrorReason.CSRF_HEADER_MISSING, "test_user")
async def a_refresh_by_cookie_without_the_csrf_header(
    request: pytest.FixtureRequest,
) -> Extensions:
    user: User = request.getfixturevalue("test_user")
    async with changed_app(request, refresh_token_cookie=True) as gql:
        signed_in = await gql(LOGIN, {"input": {"email": user.email, "password": USER_PASSWORD}})
        assert signed_in.errors == [], signed_in.body
        cookie = signed_in.headers["set-cookie"].split(";")[0]
        refused = await gql("mutation { logout }", headers={"cookie": cookie})
    return the_error(refused.body)


@produces(ErrorReason.REFRESH_TOKEN_REUSED, "test_user", "db_session", "async_test_db")
async def a_refresh_token_replayed_after_the_grace_window(
    request: pytest.FixtureRequest,
) -> Extensions:
    db_session: AsyncSession = request.getfixturevalue("db_session")
    auth_session = await create_auth_session(db_session, request.getfixturevalue("test_user"))
    token, _ = await create_refresh_token(db_session, auth_session)
    # Without a grace window, any second use of a rotated token is a replay.
    async with changed_app(request, refresh_reuse_grace_seconds=0) as gql:
        rotated = await gql(REFRESH_TOKEN, {"refreshToken": token})
        assert rotated.errors == [], rotated.body
        replayed = await gql(REFRESH_TOKEN, {"refreshToken": token})
    return the_error(replayed.body)


@produces(ErrorReason.REFRESH_TOKEN_SUPERSEDED, "gql", "test_user", "db_session")
async def a_refresh_token_whose_successor_was_rotated_too(
    request: pytest.FixtureRequest,
) -> Extensions:
    gql: GraphQLClient = request.getfixturevalue("gql")
    db_session: AsyncSession = request.getfixturevalue("db_session")
    auth_session = await create_auth_session(db_session, request.getfixturevalue("test_user"))
    first, _ = await create_refresh_token(db_session, auth_session)
    token = first
    for _ in range(2):
        response = await gql(REFRESH_TOKEN, {"refreshToken": token})
        assert response.errors == [], response.body
        token = response.data["refreshToken"]["refreshToken"]
    # Within the grace window, but two rotations behind.
    return await graphql_error(request, REFRESH_TOKEN, {"refreshToken": first})


@produces(ErrorReason.INVALID_MFA_CODE, "gql", "test_user", "db_session")
async def a_sign_in_completed_with_a_wrong_code(request: pytest.FixtureRequest) -> Extensions:
    user: User = request.getfixturevalue("test_user")
    secret = await with_authenticator_app(request, user)
    gql: GraphQLClient = request.getfixturevalue("gql")
    required = await login_error(gql, user.email, USER_PASSWORD)
    factor = {"totpCode": a_code_the_app_does_not_show(secret)}
    variables = {"input": {"challenge": required["challenge"], "factor": factor}}
    return await graphql_error(request, COMPLETE_LOGIN, variables)


@produces(ErrorReason.MFA_CHALLENGE_INVALID, "gql")
async def a_sign_in_completed_under_a_made_up_challenge(
    request: pytest.FixtureRequest,
) -> Extensions:
    # The challenge is looked up before the factor: any code will do.
    variables = {"input": {"challenge": "made-up", "factor": {"totpCode": "123456"}}}
    return await graphql_error(request, COMPLETE_LOGIN, variables)


def a_stray_assertion(challenge: bytes = b"any challenge") -> dict[str, Any]:
    """A well-formed answer of an authenticator no account knows."""
    device = authenticator()
    registration = {
        "rp": {"id": RP_ID},
        "user": {"id": b64url(b"someone")},
        "challenge": b64url(challenge),
    }
    device.create(registration)
    return device.get({"rpId": RP_ID, "challenge": b64url(challenge)})


@produces(ErrorReason.PASSKEY_CHALLENGE_INVALID, "gql")
async def a_passkey_sign_in_finished_under_a_made_up_challenge(
    request: pytest.FixtureRequest,
) -> Extensions:
    variables = {"input": {"challengeId": "made-up", "credential": a_stray_assertion()}}
    return await graphql_error(request, FINISH_PASSKEY_SIGN_IN, variables)


@produces(ErrorReason.PASSKEY_NOT_RECOGNISED, "gql")
async def a_sign_in_with_a_passkey_no_account_has(request: pytest.FixtureRequest) -> Extensions:
    gql: GraphQLClient = request.getfixturevalue("gql")
    ceremony = await start_sign_in(gql)
    credential = a_stray_assertion(from_b64url(ceremony["options"]["challenge"]))
    variables = {"input": {"challengeId": ceremony["challengeId"], "credential": credential}}
    return await graphql_error(request, FINISH_PASSKEY_SIGN_IN, variables)


@produces(ErrorReason.PASSKEY_VERIFICATION_FAILED, "gql", "test_user", "db_session")
async def a_passkey_made_on_another_site(request: pytest.FixtureRequest) -> Extensions:
    gql: GraphQLClient = request.getfixturevalue("gql")
    token = await token_for_test_user(request)
    ceremony = await start_registration(gql, token)
    credential = authenticator().create(ceremony["options"], origin="https://evil.example")
    return the_error(
        (await finish_registration(gql, token, ceremony["challengeId"], credential)).body
    )


# MFA_REQUIRED


@produces(ErrorReason.MFA_REQUIRED, "gql", "test_user", "db_session")
async def the_right_password_of_an_account_with_an_authenticator_app(
    request: pytest.FixtureRequest,
) -> Extensions:
    user: User = request.getfixturevalue("test_user")
    await with_authenticator_app(request, user)
    extensions = await login_error(request.getfixturevalue("gql"), user.email, USER_PASSWORD)
    # What a client finishes the sign-in with: the README's error table promises these.
    assert isinstance(extensions["challenge"], str), extensions
    assert extensions["challenge"]
    assert (extensions["methods"], extensions["expiresIn"]) == (["TOTP", "RECOVERY_CODE"], 300)
    return extensions


# FORBIDDEN


@produces(ErrorReason.ACCOUNT_DISABLED, "gql", "db_session")
async def a_token_of_a_disabled_account(request: pytest.FixtureRequest) -> Extensions:
    db_session: AsyncSession = request.getfixturevalue("db_session")
    disabled = await create_user(db_session, email="disabled@example.com", is_active=False)
    return await graphql_error(request, ME, token=await access_token(request, disabled))


@produces(ErrorReason.EMAIL_NOT_VERIFIED, "test_user", "async_test_db")
async def an_unverified_account_signs_in_where_that_is_required(
    request: pytest.FixtureRequest,
) -> Extensions:
    user: User = request.getfixturevalue("test_user")
    async with changed_app(request, require_verified_email=True) as gql:
        return await login_error(gql, user.email, USER_PASSWORD)


@produces(ErrorReason.SUPERUSER_REQUIRED, "gql", "test_user", "db_session")
async def a_user_lists_the_users(request: pytest.FixtureRequest) -> Extensions:
    token = await token_for_test_user(request)
    return await graphql_error(request, "{ users { totalCount } }", token=token)


@produces(ErrorReason.CANNOT_DELETE_OWN_ACCOUNT, "gql", "db_session")
async def a_superuser_deletes_their_own_account(request: pytest.FixtureRequest) -> Extensions:
    admin, token = await superuser(request)
    return await graphql_error(request, DELETE_USER, {"id": str(admin.id)}, token=token)


@produces(ErrorReason.REAUTHENTICATION_REQUIRED, "gql", "test_user", "db_session")
async def the_app_turned_off_from_a_session_signed_in_with_the_password_only(
    request: pytest.FixtureRequest,
) -> Extensions:
    user: User = request.getfixturevalue("test_user")
    await with_authenticator_app(request, user)
    # A new session, signed in just now, but with the password alone ("pwd").
    token = await access_token(request, user)
    return await graphql_error(request, DISABLE_TOTP, token=token)


@produces(ErrorReason.MFA_REQUIRED_FOR_ROLE, "db_session", "async_test_db")
async def a_superuser_without_a_second_factor_lists_the_users(
    request: pytest.FixtureRequest,
) -> Extensions:
    _, token = await superuser(request)
    async with changed_app(request, require_mfa_for_superusers=True) as gql:
        response = await gql("{ users { totalCount } }", token=token)
    return the_error(response.body)


# CONFLICT


@produces(ErrorReason.EMAIL_TAKEN, "gql", "test_user", "db_session")
async def a_user_takes_another_accounts_address(request: pytest.FixtureRequest) -> Extensions:
    db_session: AsyncSession = request.getfixturevalue("db_session")
    other = await create_user(db_session, email="other@example.com")
    token = await token_for_test_user(request)
    return await graphql_error(request, UPDATE_ME, {"input": {"email": other.email}}, token=token)


@produces(ErrorReason.LAST_SUPERUSER, "gql", "db_session")
async def the_only_superuser_steps_down(request: pytest.FixtureRequest) -> Extensions:
    admin, token = await superuser(request)
    variables = {"id": str(admin.id), "input": {"isSuperuser": False}}
    return await graphql_error(request, UPDATE_USER, variables, token=token)


@produces(ErrorReason.MFA_ALREADY_ENABLED, "gql", "test_user", "db_session")
async def an_authenticator_app_set_up_a_second_time(request: pytest.FixtureRequest) -> Extensions:
    user: User = request.getfixturevalue("test_user")
    await with_authenticator_app(request, user)
    return await graphql_error(
        request, START_TOTP_ENROLLMENT, token=await access_token(request, user)
    )


@produces(ErrorReason.MFA_NOT_ENABLED, "gql", "test_user", "db_session")
async def recovery_codes_renewed_without_an_authenticator_app(
    request: pytest.FixtureRequest,
) -> Extensions:
    token = await token_for_test_user(request)
    return await graphql_error(request, REGENERATE_RECOVERY_CODES, token=token)


async def stored_passkey(request: pytest.FixtureRequest, user: User, credential_id: bytes) -> None:
    db_session: AsyncSession = request.getfixturevalue("db_session")
    db_session.add(
        Passkey(
            user_id=user.id,
            credential_id=credential_id,
            public_key=b"unused",
            sign_count=0,
            transports=[],
            aaguid=str(uuid.UUID(int=0)),
            name="Stored",
        )
    )
    await db_session.commit()


@produces(ErrorReason.TOO_MANY_PASSKEYS, "gql", "test_user", "db_session")
async def an_eleventh_passkey(request: pytest.FixtureRequest) -> Extensions:
    user: User = request.getfixturevalue("test_user")
    for number in range(10):
        await stored_passkey(request, user, credential_id=bytes([number]) * 16)
    token = await token_for_test_user(request)
    return await graphql_error(request, START_PASSKEY_REGISTRATION, token=token)


@produces(ErrorReason.PASSKEY_ALREADY_REGISTERED, "gql", "test_user", "db_session")
async def a_passkey_registered_a_second_time(request: pytest.FixtureRequest) -> Extensions:
    user: User = request.getfixturevalue("test_user")
    taken = b"registered already"
    await stored_passkey(request, user, credential_id=taken)
    gql: GraphQLClient = request.getfixturevalue("gql")
    token = await token_for_test_user(request)
    ceremony = await start_registration(gql, token)
    # An authenticator that ignores excludeCredentials, as a client may.
    credential = authenticator().create(
        {**ceremony["options"], "excludeCredentials": []}, credential_id=taken
    )
    return the_error(
        (await finish_registration(gql, token, ceremony["challengeId"], credential)).body
    )


# NOT_FOUND


@produces(ErrorReason.USER_NOT_FOUND, "gql", "db_session")
async def a_superuser_deletes_an_unknown_account(request: pytest.FixtureRequest) -> Extensions:
    _, token = await superuser(request)
    return await graphql_error(request, DELETE_USER, {"id": str(uuid.uuid4())}, token=token)


@produces(ErrorReason.SESSION_NOT_FOUND, "gql", "test_user", "db_session")
async def a_user_revokes_an_unknown_session(request: pytest.FixtureRequest) -> Extensions:
    token = await token_for_test_user(request)
    return await graphql_error(request, REVOKE_SESSION, {"id": str(uuid.uuid4())}, token=token)


@produces(ErrorReason.NOT_FOUND, "client")
async def a_path_the_app_does_not_serve(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    return refusal(await client.get("/no-such-path"), 404)


@produces(ErrorReason.PASSKEY_NOT_FOUND, "gql", "test_user", "db_session")
async def a_user_deletes_an_unknown_passkey(request: pytest.FixtureRequest) -> Extensions:
    token = await token_for_test_user(request)
    return await graphql_error(request, DELETE_PASSKEY, {"id": str(uuid.uuid4())}, token=token)


# BAD_USER_INPUT, RATE_LIMITED, EMAIL_DELIVERY_FAILED, INTERNAL_SERVER_ERROR


@produces(ErrorReason.BAD_USER_INPUT, "gql")
async def a_reset_for_an_address_that_is_none(request: pytest.FixtureRequest) -> Extensions:
    return await graphql_error(request, REQUEST_PASSWORD_RESET, {"email": "not an email"})


@produces(ErrorReason.RATE_LIMITED, "async_test_db")
async def a_refresh_past_the_limit(request: pytest.FixtureRequest) -> Extensions:
    async with changed_app(request, rate_limit_enabled=True, refreshes_per_ip="1/minute") as gql:
        await gql(REFRESH_TOKEN, {"refreshToken": "made-up"})
        response = await gql(REFRESH_TOKEN, {"refreshToken": "made-up"})
    return the_error(response.body)


@produces(ErrorReason.LOGIN_LOCKED, "async_test_db")
async def a_sign_in_to_an_address_out_of_attempts(request: pytest.FixtureRequest) -> Extensions:
    limited = {"rate_limit_enabled": True, "login_attempts_per_account": "1/hour"}
    async with changed_app(request, **limited) as gql:
        # Every attempt counts before the password is looked at: one refused as input spends
        # the address's budget as a wrong password would, without the cost of a hash.
        spent = await login_error(gql, "nobody@example.com", "")
        assert spent["code"] == ErrorCode.BAD_USER_INPUT
        return await login_error(gql, "nobody@example.com", "not-the-password")


@produces(ErrorReason.EMAIL_DELIVERY_FAILED, "gql", "test_user", "db_session", "failing_email")
async def a_verification_mail_the_server_cannot_send(
    request: pytest.FixtureRequest,
) -> Extensions:
    token = await token_for_test_user(request)
    return await graphql_error(request, REQUEST_EMAIL_VERIFICATION, token=token)


@produces(ErrorReason.INTERNAL_SERVER_ERROR, "gql", "test_user", "db_session")
async def a_resolver_that_fails_unexpectedly(request: pytest.FixtureRequest) -> Extensions:
    async def explode(**_: object) -> User:
        raise RuntimeError("a bug")

    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(users_service, "get_user", explode)
    user: User = request.getfixturevalue("test_user")
    _, token = await superuser(request)
    query = "query ($id: ID!) { user(id: $id) { id } }"
    return await graphql_error(request, query, {"id": str(user.id)}, token=token)


# SERVICE_UNAVAILABLE


@produces(ErrorReason.DATABASE_UNAVAILABLE, "database_down")
async def a_sign_in_while_the_database_refuses_connections(
    request: pytest.FixtureRequest,
) -> Extensions:
    http: AsyncClient = request.getfixturevalue("database_down")
    return the_error((await http.post("/graphql", json=LOGIN_BODY)).json())


@produces(ErrorReason.RATE_LIMITER_UNAVAILABLE, "async_test_db")
async def a_sign_in_while_redis_refuses_connections(
    request: pytest.FixtureRequest,
) -> Extensions:
    async with changed_app(request, rate_limit_enabled=True, redis_url=REFUSING_REDIS) as gql:
        return await login_error(gql, "testuser@example.com", USER_PASSWORD)


@produces(ErrorReason.PASSKEY_CHALLENGES_UNAVAILABLE, "async_test_db")
async def a_passkey_sign_in_while_redis_refuses_connections(
    request: pytest.FixtureRequest,
) -> Extensions:
    async with changed_app(request, redis_url=REFUSING_REDIS) as gql:
        return the_error((await gql(START_PASSKEY_SIGN_IN)).body)


@produces(ErrorReason.PASSWORD_HASHING_BUSY, "hashing_busy", "client")
async def a_sign_in_while_every_hashing_thread_is_busy(
    request: pytest.FixtureRequest,
) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    return the_error((await client.post("/graphql", json=LOGIN_BODY)).json())


@produces(ErrorReason.DEADLINE_EXCEEDED, "test_user", "async_test_db")
async def a_sign_in_whose_password_check_outlasts_the_request(
    request: pytest.FixtureRequest,
) -> Extensions:
    release = threading.Event()

    def stalled(password: str, hashed: str) -> passwords.VerifyResult:
        release.wait(timeout=30)
        return passwords.VerifyResult(valid=False)

    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(passwords, "_verify_and_update", stalled)
    user: User = request.getfixturevalue("test_user")
    try:
        async with changed_app(request, request_timeout_seconds=0.1) as gql:
            return await login_error(gql, user.email, USER_PASSWORD)
    finally:
        release.set()


@produces(ErrorReason.TOO_MANY_CONNECTIONS, "served")
async def a_connection_beyond_the_servers_cap(request: pytest.FixtureRequest) -> Extensions:
    server: Served = request.getfixturevalue("served")
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(MAX_CONNECTIONS)]
    try:
        await asyncio.sleep(0.1)  # the server accepts the held connections meanwhile
        answer = await server.exchange(raw_request(), wait=HEADER_TIMEOUT / 2)
    finally:
        for _, writer in held:
            writer.close()
    assert status_of(answer) == 503, answer
    return the_error(body_of(answer))


# The document


@produces(ErrorReason.GRAPHQL_PARSE_FAILED, "gql")
async def a_document_cut_short(request: pytest.FixtureRequest) -> Extensions:
    return await graphql_error(request, "{ me { ")


@produces(ErrorReason.GRAPHQL_VALIDATION_FAILED, "gql")
async def a_field_the_schema_lacks(request: pytest.FixtureRequest) -> Extensions:
    return await graphql_error(request, "{ nope }")


@produces(ErrorReason.UNKNOWN_OPERATION, "client")
async def an_operation_name_the_document_lacks(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    response = await client.post(
        "/graphql",
        json={"query": "query Me { me { id } }", "operationName": "Other"},
        headers={"accept": GRAPHQL_RESPONSE_JSON},
    )
    return refusal(response, 422)


@produces(ErrorReason.FRAGMENT_CYCLE, "gql")
async def a_fragment_that_spreads_itself(request: pytest.FixtureRequest) -> Extensions:
    return await graphql_error(request, "{ me { ...A } } fragment A on User { ...A }")


@produces(ErrorReason.TOO_MANY_FIELDS, "gql")
async def fragments_that_fan_out(request: pytest.FixtureRequest) -> Extensions:
    return await graphql_error(request, fan_out(levels=8, spreads=30))


@produces(ErrorReason.TOO_MANY_REPEATED_FIELDS, "gql")
async def one_field_selected_over_and_over(request: pytest.FixtureRequest) -> Extensions:
    settings: Settings = request.getfixturevalue("settings")
    copies = settings.graphql_max_fields_per_key + 1
    return await graphql_error(request, "{ " + "me { id } " * copies + "}")


@produces(ErrorReason.TOO_DEEP, "gql")
async def selections_nested_too_deep(request: pytest.FixtureRequest) -> Extensions:
    settings: Settings = request.getfixturevalue("settings")
    # Sized before it is validated: the fields need not exist.
    levels = settings.graphql_max_depth + 1
    return await graphql_error(request, "{ " + "me { " * levels + "id" + " }" * levels + " }")


@produces(ErrorReason.TOO_MANY_ALIASES, "gql")
async def too_many_aliases(request: pytest.FixtureRequest) -> Extensions:
    settings: Settings = request.getfixturevalue("settings")
    aliases = " ".join(f"a{n}: __typename" for n in range(settings.graphql_max_aliases + 1))
    return await graphql_error(request, f"{{ {aliases} }}")


@produces(ErrorReason.TOO_MANY_DIRECTIVES, "gql")
async def too_many_directives(request: pytest.FixtureRequest) -> Extensions:
    settings: Settings = request.getfixturevalue("settings")
    directives = " @include(if: true)" * (settings.graphql_max_directives + 1)
    return await graphql_error(request, f"{{ __typename{directives} }}")


@produces(ErrorReason.CHECK_TIME_EXCEEDED, "gql")
async def a_document_checked_past_its_budget(request: pytest.FixtureRequest) -> Extensions:
    # The real timer, with a microsecond's budget: introspection takes milliseconds to check.
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(documents, "time_budget", lambda seconds: time_budget(1e-6))
    return await graphql_error(request, get_introspection_query())


@produces(ErrorReason.PERSISTED_QUERY_NOT_FOUND, "client")
async def a_hash_the_server_has_not_seen(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    return refusal(await client.post("/graphql", json=persisted(TYPENAME)), 200)


@produces(ErrorReason.PERSISTED_QUERY_HASH_MISMATCH, "client")
async def a_hash_of_another_document(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    body = persisted(TYPENAME) | {"query": "{ me { email } }"}
    return refusal(await client.post("/graphql", json=body), 200)


@produces(ErrorReason.PERSISTED_QUERY_INVALID, "client")
async def a_persisted_query_of_another_version(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    body = {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}}}
    return refusal(await client.post("/graphql", json=body), 200)


# The HTTP request


@produces(ErrorReason.BAD_REQUEST, "client")
async def a_body_that_is_not_json(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    response = await client.post(
        "/graphql", content=b"{", headers={"content-type": "application/json"}
    )
    return refusal(response, 400)


@produces(ErrorReason.METHOD_NOT_ALLOWED, "client")
async def a_put(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    return refusal(await client.put("/graphql", json={"query": TYPENAME}), 405)


@produces(ErrorReason.NOT_ACCEPTABLE, "client")
async def an_accept_header_of_nothing_served(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    response = await client.post(
        "/graphql", json={"query": TYPENAME}, headers={"accept": "text/plain"}
    )
    return refusal(response, 406)


@produces(ErrorReason.REQUEST_TIMEOUT, "served")
async def headers_that_never_end(request: pytest.FixtureRequest) -> Extensions:
    server: Served = request.getfixturevalue("served")
    answer = await server.exchange(b"GET / HTTP/1.1\r\nHost: test\r\n", wait=HEADER_TIMEOUT * 10)
    assert status_of(answer) == 408, answer
    return the_error(body_of(answer))


@produces(ErrorReason.PAYLOAD_TOO_LARGE, "client")
async def a_body_over_the_limit(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    settings: Settings = request.getfixturevalue("settings")
    body = {"query": TYPENAME, "pad": "x" * settings.max_body_bytes}
    return refusal(await client.post("/graphql", json=body), 413)


@produces(ErrorReason.UNSUPPORTED_MEDIA_TYPE, "client")
async def a_body_of_plain_text(request: pytest.FixtureRequest) -> Extensions:
    client: AsyncClient = request.getfixturevalue("client")
    response = await client.post("/graphql", content="x", headers={"content-type": "text/plain"})
    return refusal(response, 415)


@produces(ErrorReason.REQUEST_HEADER_FIELDS_TOO_LARGE, "served")
async def a_header_over_the_limit(request: pytest.FixtureRequest) -> Extensions:
    server: Served = request.getfixturevalue("served")
    big = b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n"
    answer = await server.exchange(raw_request(big))
    assert status_of(answer) == 431, answer
    return the_error(body_of(answer))


@pytest.fixture
def scenario_fixtures(request: pytest.FixtureRequest, reason: ErrorReason) -> None:
    """Set up what the scenario of ``reason`` uses, before its test starts."""
    scenario = SCENARIOS.get(reason)
    for name in scenario.fixtures if scenario else ():
        request.getfixturevalue(name)


def test_every_reason_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(ErrorReason)


def test_every_reason_belongs_to_a_code() -> None:
    assert set(EXPECTED_CODE) == set(ErrorReason)


@pytest.mark.parametrize("reason", list(ErrorReason))
@pytest.mark.usefixtures("scenario_fixtures")
async def test_the_scenario_produces_the_reason(
    request: pytest.FixtureRequest, reason: ErrorReason
) -> None:
    extensions = await SCENARIOS[reason].run(request)

    assert (extensions["reason"], extensions["code"]) == (reason, EXPECTED_CODE[reason])
    if reason is ErrorReason.BAD_USER_INPUT:
        assert [(entry["field"], entry["code"]) for entry in extensions["fields"]] == [
            ("email", FieldErrorCode.INVALID_EMAIL)
        ]


async def test_a_wrong_code_confirming_the_app_is_wrong_code_on_code(
    request: pytest.FixtureRequest, gql: GraphQLClient, test_user: User
) -> None:
    token = await access_token(request, test_user)
    started = await gql(START_TOTP_ENROLLMENT, token=token)
    assert started.errors == [], started.body
    secret = started.data["startTotpEnrollment"]["secret"]

    variables = {"code": a_code_the_app_does_not_show(secret)}
    response = await gql(CONFIRM_TOTP_ENROLLMENT, variables, token=token)

    fields = response.single_error(ErrorCode.BAD_USER_INPUT)["extensions"]["fields"]
    assert [(entry["field"], entry["code"]) for entry in fields] == [
        ("code", FieldErrorCode.WRONG_CODE)
    ]


def _readme_errors_section() -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("name", [*ErrorReason, *FieldErrorCode])
def test_every_reason_and_field_code_is_documented_in_the_readme(name: str) -> None:
    assert f"`{name}`" in _readme_errors_section()
