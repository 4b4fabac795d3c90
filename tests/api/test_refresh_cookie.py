"""Browser session mode (REFRESH_TOKEN_COOKIE): the refresh token only in an HttpOnly cookie.

The client here is what a browser is to these requests: httpx keeps the cookies the app
sets and sends them back to /graphql, at http://localhost in development (the cookie
without Secure) unless a test says otherwise. The CSRF header is sent only where a test
says so.
"""

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.api.refresh_cookie import CSRF_HEADER, LOCAL_COOKIE_NAME, SECURE_COOKIE_NAME
from gql_app.config import Settings
from gql_app.models import AuthSession, RefreshToken, User
from tests.auth_factories import create_action_token
from tests.factories import USER_PASSWORD
from tests.graphql import GraphQLClient, GraphQLResponse
from tests.operations import AUTH_PAYLOAD_FIELDS, ME, MY_SESSIONS, RESET_PASSWORD
from tests.passkey_flows import add_passkey, authenticator, passkey_sign_in
from tests.services.test_mfa_service import enrolled

CSRF = {CSRF_HEADER: "gql-app"}
LOGIN = f"""
mutation Login($input: LoginInput!) {{ login(input: $input) {{ {AUTH_PAYLOAD_FIELDS} }} }}
"""
REFRESH = f"mutation RefreshToken {{ refreshToken {{ {AUTH_PAYLOAD_FIELDS} }} }}"
REFRESH_WITH = f"""
mutation Refresh($token: String) {{
  refreshToken(refreshToken: $token) {{ {AUTH_PAYLOAD_FIELDS} }}
}}
"""
LOGOUT = "mutation Logout { logout }"
LOGOUT_ALL = "mutation { logoutAll }"
REVOKE = "mutation Revoke($id: ID!) { revokeSession(id: $id) }"
DELETE_ME = "mutation Delete($password: String!) { deleteMe(password: $password) }"
COMPLETE_LOGIN = f"""
mutation CompleteLogin($input: CompleteLoginInput!) {{
  completeLogin(input: $input) {{ {AUTH_PAYLOAD_FIELDS} }}
}}
"""
FRONTEND = "http://localhost:3000"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"refresh_token_cookie": True, "environment": "development"})


@pytest_asyncio.fixture
async def browser(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://localhost") as http:
        yield http


@pytest.fixture
def gql(browser: AsyncClient) -> GraphQLClient:
    return GraphQLClient(browser)


def set_cookies(response: httpx.Response | GraphQLResponse) -> dict[str, Any]:
    """The Set-Cookie headers of a response, by name: value and attributes."""
    headers = response.headers
    raw = (
        headers.get_list("set-cookie")
        if isinstance(headers, httpx.Headers)
        else [v for k, v in headers.items() if k == "set-cookie"]
    )
    found: dict[str, Any] = {}
    for header in raw:
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            found[name] = {"value": morsel.value, **{k: v for k, v in morsel.items() if v}}
    return found


async def login(gql: GraphQLClient, user: User) -> GraphQLResponse:
    return await gql(LOGIN, {"input": {"email": user.email, "password": USER_PASSWORD}})


def payload(response: GraphQLResponse, field: str) -> dict[str, Any]:
    assert response.errors == [], response.body
    data: dict[str, Any] = response.data[field]
    return data


def reason(response: GraphQLResponse) -> tuple[str, str]:
    assert len(response.errors) == 1, response.body
    extensions = response.errors[0]["extensions"]
    return extensions["code"], extensions["reason"]


async def refresh_rows(db_session: AsyncSession) -> list[tuple[str, bool]]:
    rows = (await db_session.scalars(select(RefreshToken))).all()
    return sorted((row.token_hash, row.rotated_at is not None) for row in rows)


async def session_rows(db_session: AsyncSession) -> list[bool]:
    db_session.expire_all()
    rows = (await db_session.scalars(select(AuthSession))).all()
    return [row.revoked_at is not None for row in rows]


class TestTheCookie:
    async def test_login_puts_the_refresh_token_in_an_http_only_cookie_and_not_the_body(
        self, gql: GraphQLClient, test_user: User, settings: Settings
    ) -> None:
        response = await login(gql, test_user)

        body = payload(response, "login")
        cookie = set_cookies(response)[LOCAL_COOKIE_NAME]
        assert body["refreshToken"] is None
        assert body["accessToken"]
        assert cookie["value"] not in response.text
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "strict"
        assert cookie["path"] == "/graphql"
        assert cookie["max-age"] == str(settings.refresh_token_expire_seconds)
        assert "secure" not in cookie  # http://localhost in development

    @pytest.mark.parametrize(
        ("environment", "base_url"),
        [
            ("development", "http://app.example"),
            ("test", "http://localhost"),
            ("production", "https://api.example"),
        ],
    )
    async def test_anywhere_else_it_is_secure_with_the_secure_prefix(
        self,
        app: FastAPI,
        test_user: User,
        settings: Settings,
        environment: str,
        base_url: str,
    ) -> None:
        app.state.settings = settings.model_copy(update={"environment": environment})
        async with AsyncClient(transport=ASGITransport(app=app), base_url=base_url) as http:
            response = await login(GraphQLClient(http), test_user)

        cookies = set_cookies(response)
        assert list(cookies) == [SECURE_COOKIE_NAME]
        assert cookies[SECURE_COOKIE_NAME]["secure"] is True
        assert cookies[SECURE_COOKIE_NAME]["httponly"] is True
        assert payload(response, "login")["refreshToken"] is None

    async def test_the_mode_off_sets_no_cookie_and_ignores_one(
        self, app: FastAPI, gql: GraphQLClient, test_user: User, settings: Settings
    ) -> None:
        app.state.settings = settings.model_copy(update={"refresh_token_cookie": False})
        response = await login(gql, test_user)
        refresh_token = payload(response, "login")["refreshToken"]

        refused = await gql(
            REFRESH, headers={**CSRF, "cookie": f"{LOCAL_COOKIE_NAME}={refresh_token}"}
        )

        assert set_cookies(response) == {}
        assert refresh_token
        assert reason(refused) == ("UNAUTHENTICATED", "REFRESH_TOKEN_MISSING")

    async def test_complete_login_sets_the_cookie(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession, settings: Settings
    ) -> None:
        _, recovery_codes = await enrolled(db_session, settings, test_user)
        challenge = (await login(gql, test_user)).single_error("MFA_REQUIRED")["extensions"][
            "challenge"
        ]

        response = await gql(
            COMPLETE_LOGIN,
            {"input": {"challenge": challenge, "factor": {"recoveryCode": recovery_codes[0]}}},
        )

        assert payload(response, "completeLogin")["refreshToken"] is None
        assert set_cookies(response)[LOCAL_COOKIE_NAME]["httponly"] is True
        refreshed = await gql(REFRESH, headers=CSRF)
        assert payload(refreshed, "refreshToken")["user"]["email"] == test_user.email

    async def test_passkey_sign_in_sets_the_cookie(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        device = authenticator()
        access = payload(await login(gql, test_user), "login")["accessToken"]
        await add_passkey(gql, access, device)

        response = await passkey_sign_in(gql, device)

        assert payload(response, "finishPasskeySignIn")["refreshToken"] is None
        assert set_cookies(response)[LOCAL_COOKIE_NAME]["httponly"] is True


class TestRefreshing:
    async def test_refresh_reads_the_cookie_and_rotates_it(
        self, gql: GraphQLClient, browser: AsyncClient, test_user: User, settings: Settings
    ) -> None:
        first = set_cookies(await login(gql, test_user))[LOCAL_COOKIE_NAME]["value"]

        response = await gql(REFRESH, headers=CSRF)

        body = payload(response, "refreshToken")
        rotated = set_cookies(response)[LOCAL_COOKIE_NAME]
        assert body["refreshToken"] is None
        assert body["accessToken"]
        assert rotated["value"] != first
        assert browser.cookies.get(LOCAL_COOKIE_NAME) == rotated["value"]
        # The session's remaining life, not a fresh 30 days.
        assert 0 < int(rotated["max-age"]) <= settings.refresh_token_expire_seconds
        me = await gql(ME, token=body["accessToken"])
        assert me.data == {"me": payload(response, "refreshToken")["user"]}

    async def test_without_the_csrf_header_the_cookie_counts_for_nothing(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(gql, test_user)
        before = await refresh_rows(db_session)

        for header in ({}, {CSRF_HEADER: ""}, {CSRF_HEADER: "  "}):
            response = await gql(REFRESH, headers=header)
            assert reason(response) == ("FORBIDDEN", "CSRF_HEADER_MISSING")
            assert response.data is None
            assert set_cookies(response) == {}

        assert await refresh_rows(db_session) == before

    async def test_no_cookie_and_no_argument_is_refresh_token_missing(
        self, gql: GraphQLClient
    ) -> None:
        response = await gql(REFRESH, headers=CSRF)

        assert reason(response) == ("UNAUTHENTICATED", "REFRESH_TOKEN_MISSING")

    async def test_an_argument_is_still_taken_and_its_successor_goes_into_the_cookie(
        self, gql: GraphQLClient, browser: AsyncClient, test_user: User
    ) -> None:
        token = set_cookies(await login(gql, test_user))[LOCAL_COOKIE_NAME]["value"]
        browser.cookies.clear()

        # No CSRF header: an argument proves the caller holds the token, a cookie does not.
        response = await gql(REFRESH_WITH, {"token": token})

        assert payload(response, "refreshToken")["refreshToken"] is None
        assert set_cookies(response)[LOCAL_COOKIE_NAME]["value"] != token

    async def test_a_refused_cookie_is_refused_as_the_argument_would_be(
        self, gql: GraphQLClient, browser: AsyncClient
    ) -> None:
        browser.cookies.set(LOCAL_COOKIE_NAME, "made-up", domain="localhost.local", path="/graphql")

        response = await gql(REFRESH, headers=CSRF)

        assert reason(response) == ("UNAUTHENTICATED", "REFRESH_TOKEN_INVALID")


class TestEndingSessions:
    @staticmethod
    def cleared(response: GraphQLResponse) -> bool:
        cookie = set_cookies(response).get(LOCAL_COOKIE_NAME)
        return cookie is not None and cookie["max-age"] == "0" and cookie["path"] == "/graphql"

    async def test_logout_ends_this_browsers_session_and_clears_the_cookie(
        self, gql: GraphQLClient, browser: AsyncClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(gql, test_user)

        response = await gql(LOGOUT, headers=CSRF)

        assert response.data == {"logout": True}
        assert self.cleared(response)
        assert browser.cookies.get(LOCAL_COOKIE_NAME) is None
        assert await session_rows(db_session) == [True]

    async def test_logout_without_the_header_changes_nothing(
        self, gql: GraphQLClient, browser: AsyncClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(gql, test_user)

        response = await gql(LOGOUT)

        assert reason(response) == ("FORBIDDEN", "CSRF_HEADER_MISSING")
        assert set_cookies(response) == {}
        assert browser.cookies.get(LOCAL_COOKIE_NAME) is not None
        assert await session_rows(db_session) == [False]

    async def test_logout_all_clears_the_cookie(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        access = payload(await login(gql, test_user), "login")["accessToken"]

        response = await gql(LOGOUT_ALL, token=access)

        assert response.data == {"logoutAll": True}
        assert self.cleared(response)
        assert await session_rows(db_session) == [True]

    async def test_revoking_this_session_clears_the_cookie_and_another_does_not(
        self, app: FastAPI, gql: GraphQLClient, test_user: User
    ) -> None:
        async with AsyncClient(
            transport=ASGITransport(app=app), base_url="http://localhost"
        ) as other_browser:
            await login(GraphQLClient(other_browser), test_user)
        access = payload(await login(gql, test_user), "login")["accessToken"]
        sessions = payload(await gql(MY_SESSIONS, token=access), "mySessions")
        other = next(s["id"] for s in sessions if not s["current"])
        this = next(s["id"] for s in sessions if s["current"])

        revoked_other = await gql(REVOKE, {"id": other}, token=access)
        revoked_this = await gql(REVOKE, {"id": this}, token=access)

        assert revoked_other.data == revoked_this.data == {"revokeSession": True}
        assert set_cookies(revoked_other) == {}
        assert self.cleared(revoked_this)

    async def test_a_password_reset_clears_the_cookie(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(gql, test_user)
        token, _ = await create_action_token(db_session, test_user)

        response = await gql(
            RESET_PASSWORD, {"input": {"token": token, "newPassword": "a brand new passphrase 42"}}
        )

        assert response.data == {"resetPassword": True}
        assert self.cleared(response)
        assert reason(await gql(REFRESH, headers=CSRF)) == (
            "UNAUTHENTICATED",
            "REFRESH_TOKEN_MISSING",
        )

    async def test_deleting_the_account_clears_the_cookie(
        self, gql: GraphQLClient, test_user: User
    ) -> None:
        access = payload(await login(gql, test_user), "login")["accessToken"]

        response = await gql(DELETE_ME, {"password": USER_PASSWORD}, token=access)

        assert response.data == {"deleteMe": True}
        assert self.cleared(response)

    async def test_a_failed_end_leaves_the_cookie(
        self, gql: GraphQLClient, browser: AsyncClient, test_user: User
    ) -> None:
        await login(gql, test_user)
        access = payload(await gql(REFRESH, headers=CSRF), "refreshToken")["accessToken"]

        response = await gql(REVOKE, {"id": "not-a-uuid"}, token=access)

        assert response.error_codes == ["BAD_USER_INPUT"]
        assert set_cookies(response) == {}
        assert browser.cookies.get(LOCAL_COOKIE_NAME) is not None


class TestBothPaths:
    async def test_the_general_path_sets_the_same_cookie_as_the_lean_lane(
        self, browser: AsyncClient, test_user: User
    ) -> None:
        credentials = {"input": {"email": test_user.email, "password": USER_PASSWORD}}
        lane = await browser.post("/graphql", json={"query": LOGIN, "variables": credentials})
        # A key the lane does not take sends the request down the general path.
        general = await browser.post(
            "/graphql", json={"query": LOGIN, "variables": credentials, "generalPath": True}
        )

        attributes = [
            {k: v for k, v in set_cookies(r)[LOCAL_COOKIE_NAME].items() if k != "value"}
            for r in (lane, general)
        ]
        assert attributes[0] == attributes[1]
        assert attributes[0]["httponly"] is True


async def preflight(client: AsyncClient, origin: str) -> httpx.Response:
    return await client.options(
        "/graphql",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-requested-with",
        },
    )


class TestCors:
    async def test_credentials_are_allowed_from_the_configured_origin_only(
        self, browser: AsyncClient
    ) -> None:
        allowed = await preflight(browser, FRONTEND)
        refused = await preflight(browser, "https://evil.example")

        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == FRONTEND
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "x-requested-with" in allowed.headers["access-control-allow-headers"].lower()
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

    async def test_a_credentialed_answer_names_the_origin_never_a_wildcard(
        self, browser: AsyncClient, test_user: User
    ) -> None:
        response = await browser.post(
            "/graphql",
            json={
                "query": LOGIN,
                "variables": {"input": {"email": test_user.email, "password": USER_PASSWORD}},
            },
            headers={"origin": FRONTEND},
        )

        assert response.headers["access-control-allow-origin"] == FRONTEND
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "origin" in response.headers["vary"].lower()

    def test_a_wildcard_origin_is_refused_with_the_cookie(self, settings: Settings) -> None:
        with pytest.raises(ValidationError, match="CORS_ORIGINS may not contain"):
            Settings.model_validate(
                {**settings.model_dump(), "cors_origins": ["*"], "refresh_token_cookie": True}
            )
        relaxed = Settings.model_validate(
            {**settings.model_dump(), "cors_origins": ["*"], "refresh_token_cookie": False}
        )
        assert relaxed.cors_origins == ["*"]


class TestCorsWithTheModeOff:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"refresh_token_cookie": False})

    async def test_no_credentials_are_allowed(self, browser: AsyncClient) -> None:
        allowed = await preflight(browser, FRONTEND)

        assert allowed.headers["access-control-allow-origin"] == FRONTEND
        assert "access-control-allow-credentials" not in allowed.headers
