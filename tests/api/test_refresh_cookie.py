"""Browser session mode (REFRESH_TOKEN_COOKIE): the refresh token only in an HttpOnly cookie.

The client here is what a browser is to these requests: httpx keeps the cookies the app
sets and sends them back to /graphql, at http://localhost in development (the cookie
without Secure) unless a test says otherwise. The CSRF header is sent only where a test
says so.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.api.refresh_cookie import CSRF_HEADER, LOCAL_COOKIE_NAME, SECURE_COOKIE_NAME
from gql_app.api.router import GraphQLEndpoint
from gql_app.config import Settings
from gql_app.models import AuthSession, RefreshToken, User
from gql_app.services import throttling
from tests.auth_factories import create_action_token
from tests.factories import USER_PASSWORD, create_user
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


def plant(browser: AsyncClient, value: str) -> None:
    """Put ``value`` in the browser's refresh cookie, as a browser holding it would send it."""
    browser.cookies.set(LOCAL_COOKIE_NAME, value, domain="localhost.local", path="/graphql")


def cleared(response: httpx.Response | GraphQLResponse, name: str = LOCAL_COOKIE_NAME) -> bool:
    """Whether the answer deletes the cookie (as the last word on it, for a browser)."""
    cookie = set_cookies(response).get(name)
    return cookie is not None and cookie["max-age"] == "0" and cookie["path"] == "/graphql"


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
            ("development", "https://localhost"),
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

            ended = await http.post("/graphql", json={"query": LOGOUT}, headers=CSRF)

        cookies = set_cookies(response)
        assert list(cookies) == [SECURE_COOKIE_NAME]
        assert cookies[SECURE_COOKIE_NAME]["secure"] is True
        assert cookies[SECURE_COOKIE_NAME]["httponly"] is True
        assert payload(response, "login")["refreshToken"] is None
        # Deleted with the same attributes, or browsers would keep it; over plain http the
        # client sent no Secure cookie back, and there is nothing to delete.
        if base_url.startswith("https:"):
            assert ended.json()["data"] == {"logout": True}
            assert cleared(ended, SECURE_COOKIE_NAME)
            assert set_cookies(ended)[SECURE_COOKIE_NAME]["secure"] is True

    async def test_the_mode_off_sets_no_cookie_and_ignores_one(
        self, app: FastAPI, gql: GraphQLClient, test_user: User, settings: Settings
    ) -> None:
        app.state.settings = settings.model_copy(update={"refresh_token_cookie": False})
        response = await login(gql, test_user)
        refresh_token = payload(response, "login")["refreshToken"]

        refused = await gql(
            REFRESH, headers={**CSRF, "cookie": f"{LOCAL_COOKIE_NAME}={refresh_token}"}
        )

        assert "set-cookie" not in response.headers
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
            assert "set-cookie" not in response.headers

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

    async def test_the_cookie_lives_as_long_as_the_session_has_left(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(gql, test_user)
        auth_session = await db_session.scalar(select(AuthSession))
        assert auth_session is not None
        auth_session.expires_at = datetime.now(UTC) + timedelta(hours=1)
        await db_session.commit()

        rotated = set_cookies(await gql(REFRESH, headers=CSRF))[LOCAL_COOKIE_NAME]

        assert 3590 <= int(rotated["max-age"]) <= 3600

    async def test_a_refused_cookie_is_refused_as_the_argument_would_be_and_cleared(
        self, gql: GraphQLClient, browser: AsyncClient
    ) -> None:
        plant(browser, "made-up")

        response = await gql(REFRESH, headers=CSRF)

        assert reason(response) == ("UNAUTHENTICATED", "REFRESH_TOKEN_INVALID")
        assert cleared(response)
        assert browser.cookies.get(LOCAL_COOKIE_NAME) is None

    async def test_a_cookie_of_a_revoked_session_is_cleared_with_the_refusal(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(gql, test_user)
        await db_session.execute(update(AuthSession).values(revoked_at=datetime.now(UTC)))
        await db_session.commit()

        response = await gql(REFRESH, headers=CSRF)

        assert reason(response) == ("UNAUTHENTICATED", "SESSION_ENDED")
        assert cleared(response)

    async def test_a_replayed_cookie_is_cleared_with_the_refusal(
        self, app: FastAPI, gql: GraphQLClient, browser: AsyncClient, test_user: User
    ) -> None:
        app.state.settings = app.state.settings.model_copy(
            update={"refresh_reuse_grace_seconds": 0}
        )
        await login(gql, test_user)
        retired = browser.cookies[LOCAL_COOKIE_NAME]
        payload(await gql(REFRESH, headers=CSRF), "refreshToken")
        plant(browser, retired)

        response = await gql(REFRESH, headers=CSRF)

        assert reason(response) == ("UNAUTHENTICATED", "REFRESH_TOKEN_REUSED")
        assert cleared(response)

    async def test_a_superseded_cookie_is_left_for_the_newer_one_another_tab_got(
        self, gql: GraphQLClient, browser: AsyncClient, test_user: User
    ) -> None:
        await login(gql, test_user)
        oldest = browser.cookies.get(LOCAL_COOKIE_NAME)
        payload(await gql(REFRESH, headers=CSRF), "refreshToken")
        payload(await gql(REFRESH, headers=CSRF), "refreshToken")
        browser.cookies.set(
            LOCAL_COOKIE_NAME, oldest or "", domain="localhost.local", path="/graphql"
        )

        response = await gql(REFRESH, headers=CSRF)

        assert reason(response) == ("UNAUTHENTICATED", "REFRESH_TOKEN_SUPERSEDED")
        assert "set-cookie" not in response.headers

    async def test_two_cookies_of_the_name_count_as_none(
        self, browser: AsyncClient, test_user: User, db_session: AsyncSession
    ) -> None:
        # A sibling subdomain may set one for the parent domain: the browser sends both.
        gql = GraphQLClient(browser)
        ours = set_cookies(await login(gql, test_user))[LOCAL_COOKIE_NAME]["value"]
        browser.cookies.clear()
        before = await refresh_rows(db_session)

        for pair in (
            f"{ours}; {LOCAL_COOKIE_NAME}=planted",
            f"planted; {LOCAL_COOKIE_NAME}={ours}",
        ):
            response = await gql(REFRESH, headers={**CSRF, "cookie": f"{LOCAL_COOKIE_NAME}={pair}"})
            assert reason(response) == ("UNAUTHENTICATED", "REFRESH_TOKEN_INVALID")
            assert "set-cookie" not in response.headers

        assert await refresh_rows(db_session) == before


class TestEndingSessions:
    async def test_logout_ends_this_browsers_session_and_clears_the_cookie(
        self, gql: GraphQLClient, browser: AsyncClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(gql, test_user)

        response = await gql(LOGOUT, headers=CSRF)

        assert response.data == {"logout": True}
        assert cleared(response)
        assert browser.cookies.get(LOCAL_COOKIE_NAME) is None
        assert await session_rows(db_session) == [True]

    async def test_logout_without_the_header_changes_nothing(
        self, gql: GraphQLClient, browser: AsyncClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(gql, test_user)

        response = await gql(LOGOUT)

        assert reason(response) == ("FORBIDDEN", "CSRF_HEADER_MISSING")
        assert "set-cookie" not in response.headers
        assert browser.cookies.get(LOCAL_COOKIE_NAME) is not None
        assert await session_rows(db_session) == [False]

    async def test_logout_all_clears_the_cookie(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        access = payload(await login(gql, test_user), "login")["accessToken"]

        response = await gql(LOGOUT_ALL, token=access)

        assert response.data == {"logoutAll": True}
        assert cleared(response)
        assert await session_rows(db_session) == [True]

    async def test_revoking_this_session_clears_the_cookie_and_another_does_not(
        self, app: FastAPI, gql: GraphQLClient, test_user: User
    ) -> None:
        async with AsyncClient(
            transport=ASGITransport(app=app), base_url="http://localhost"
        ) as other_browser:
            await login(GraphQLClient(other_browser), test_user)
        access = payload(await login(gql, test_user), "login")["accessToken"]
        sessions: list[dict[str, Any]] = (await gql(MY_SESSIONS, token=access)).data["mySessions"]
        other = next(s["id"] for s in sessions if not s["current"])
        this = next(s["id"] for s in sessions if s["current"])

        revoked_other = await gql(REVOKE, {"id": other}, token=access)
        revoked_this = await gql(REVOKE, {"id": this}, token=access)

        assert revoked_other.data == revoked_this.data == {"revokeSession": True}
        assert "set-cookie" not in revoked_other.headers
        assert cleared(revoked_this)

    async def test_a_password_reset_clears_the_cookie(
        self, gql: GraphQLClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(gql, test_user)
        token, _ = await create_action_token(db_session, test_user)

        response = await gql(
            RESET_PASSWORD, {"input": {"token": token, "newPassword": "a brand new passphrase 42"}}
        )

        assert response.data == {"resetPassword": True}
        assert cleared(response)
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
        assert cleared(response)

    async def test_a_failed_end_leaves_the_cookie(
        self, gql: GraphQLClient, browser: AsyncClient, test_user: User
    ) -> None:
        await login(gql, test_user)
        access = payload(await gql(REFRESH, headers=CSRF), "refreshToken")["accessToken"]

        response = await gql(REVOKE, {"id": "not-a-uuid"}, token=access)

        assert response.error_codes == ["BAD_USER_INPUT"]
        assert "set-cookie" not in response.headers
        assert browser.cookies.get(LOCAL_COOKIE_NAME) is not None


class TestSeveralInOneDocument:
    async def test_a_refresh_then_a_logout_leave_the_cookie_deleted(
        self, browser: AsyncClient, test_user: User, db_session: AsyncSession
    ) -> None:
        await login(GraphQLClient(browser), test_user)

        response = await browser.post(
            "/graphql",
            json={"query": "mutation { refreshToken { accessToken } logout }"},
            headers=CSRF,
        )

        assert response.json()["data"]["logout"] is True
        # The last field's word only: clients that read several Set-Cookie headers of one
        # name differently (browsers keep the last, some libraries the first) agree.
        assert len(response.headers.get_list("set-cookie")) == 1
        assert cleared(response)
        assert browser.cookies.get(LOCAL_COOKIE_NAME) is None
        assert await session_rows(db_session) == [True]

    async def test_logout_with_an_argument_leaves_this_browsers_cookie(
        self, app: FastAPI, gql: GraphQLClient, browser: AsyncClient, test_user: User
    ) -> None:
        async with AsyncClient(
            transport=ASGITransport(app=app), base_url="http://localhost"
        ) as other:
            elsewhere = set_cookies(await login(GraphQLClient(other), test_user))
        await login(gql, test_user)

        response = await gql(
            "mutation Logout($token: String) { logout(refreshToken: $token) }",
            {"token": elsewhere[LOCAL_COOKIE_NAME]["value"]},
        )

        assert response.data == {"logout": True}
        assert "set-cookie" not in response.headers
        assert browser.cookies.get(LOCAL_COOKIE_NAME) is not None


@pytest.fixture
def general_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry for each request GraphQLEndpoint.run (the general path) answered."""
    runs: list[int] = []
    original = GraphQLEndpoint.run

    async def counted(self: GraphQLEndpoint, *args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(GraphQLEndpoint, "run", counted)
    return runs


# A key the lane does not take sends the request down the general path.
GENERAL_PATH = {"generalPath": True}


class TestBothPaths:
    async def test_the_general_path_sets_the_same_cookies_as_the_lean_lane(
        self, browser: AsyncClient, test_user: User, general_runs: list[int]
    ) -> None:
        credentials = {"input": {"email": test_user.email, "password": USER_PASSWORD}}
        answers: dict[str, list[dict[str, Any]]] = {}
        for path, extra in (("lane", {}), ("general", GENERAL_PATH)):
            signed_in = await browser.post(
                "/graphql", json={"query": LOGIN, "variables": credentials, **extra}
            )
            rotated = await browser.post("/graphql", json={"query": REFRESH, **extra}, headers=CSRF)
            ended = await browser.post("/graphql", json={"query": LOGOUT, **extra}, headers=CSRF)
            answers[path] = [
                {k: v for k, v in set_cookies(r)[LOCAL_COOKIE_NAME].items() if k != "value"}
                for r in (signed_in, rotated, ended)
            ]

        assert general_runs == [1, 1, 1]
        assert answers["lane"] == answers["general"]
        assert answers["lane"][2]["max-age"] == "0"

    async def test_concurrent_sign_ins_on_the_general_path_each_get_their_own_cookie(
        self, browser: AsyncClient, db_session: AsyncSession, general_runs: list[int]
    ) -> None:
        # Strawberry keeps each request's response on the shared router for a moment.
        users = [await create_user(db_session, email=f"user-{n}@example.com") for n in range(12)]

        async def sign_in(user: User) -> str:
            credentials = {"input": {"email": user.email, "password": USER_PASSWORD}}
            response = await browser.post(
                "/graphql", json={"query": LOGIN, "variables": credentials, **GENERAL_PATH}
            )
            value: str = set_cookies(response)[LOCAL_COOKIE_NAME]["value"]
            return value

        cookies = await asyncio.gather(*(sign_in(user) for user in users))
        browser.cookies.clear()
        owners = []
        for cookie in cookies:
            refreshed = await browser.post(
                "/graphql",
                json={"query": REFRESH},
                headers={**CSRF, "cookie": f"{LOCAL_COOKIE_NAME}={cookie}"},
            )
            owners.append(refreshed.json()["data"]["refreshToken"]["user"]["email"])

        assert len(general_runs) == 12
        assert owners == [user.email for user in users]


class TestTheDeadline:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"request_timeout_seconds": 1.0})

    @pytest.mark.parametrize("extra", [{}, GENERAL_PATH], ids=["lane", "general path"])
    async def test_a_cookie_set_before_the_deadline_goes_with_its_answer(
        self,
        browser: AsyncClient,
        test_user: User,
        monkeypatch: pytest.MonkeyPatch,
        extra: dict[str, Any],
    ) -> None:
        async def frozen(**_: Any) -> None:
            await asyncio.sleep(30)

        monkeypatch.setattr(throttling, "refresh", frozen)
        document = """mutation ($input: LoginInput!) {
          login(input: $input) { accessToken }
          refreshToken(refreshToken: "stuck") { accessToken }
        }"""
        credentials = {"input": {"email": test_user.email, "password": USER_PASSWORD}}

        response = await browser.post(
            "/graphql", json={"query": document, "variables": credentials, **extra}
        )

        assert response.json()["errors"][0]["extensions"]["reason"] == "DEADLINE_EXCEEDED"
        # The session the login started was committed: its cookie is the browser's way in.
        assert set_cookies(response)[LOCAL_COOKIE_NAME]["httponly"] is True


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
