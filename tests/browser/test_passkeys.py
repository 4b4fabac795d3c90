"""Passkeys as a person uses them: a real browser's WebAuthn against the real app.

Chromium's virtual authenticator (DevTools' WebAuthn domain) stands in for the platform
authenticator, so the ceremonies run end to end with no person to touch a key.
"""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, CDPSession, Page, Request, Route, expect

from tests.live_server import live_server

EMAIL = "passkey-user@example.com"
PASSWORD = "correct horse battery staple"
PASSKEY_NAME = "This browser"
# Starting a browser on a busy CI runner can take a while.
TIMEOUT_MS = 60_000
PAGE_HTML = Path(__file__).with_name("passkey_page.html").read_text()
PAGE_PATH = "/passkey-demo"

REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) { email }
}
"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken }
}
"""
MY_PASSKEYS = "{ myPasskeys { name lastUsedAt transports } }"

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    # Answers every ceremony at once, as if a person had touched the sensor.
    "automaticPresenceSimulation": True,
}


def _page_origin(base_url: str) -> str:
    # An IP address is no valid relying party ID: the page must be on localhost, the RP ID
    # the app uses in development, at the live server's port so it is one origin with /graphql.
    port = urlsplit(base_url).port
    return f"http://localhost:{port}"


async def _graphql(
    base_url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _register(base_url: str) -> None:
    credentials = {"input": {"email": EMAIL, "password": PASSWORD}}
    assert await _graphql(base_url, REGISTER, credentials) == {"register": {"email": EMAIL}}


async def _stored_passkeys(base_url: str) -> list[dict[str, Any]]:
    credentials = {"input": {"email": EMAIL, "password": PASSWORD}}
    token = (await _graphql(base_url, LOGIN, credentials))["login"]["accessToken"]
    passkeys: list[dict[str, Any]] = (await _graphql(base_url, MY_PASSKEYS, token=token))[
        "myPasskeys"
    ]
    return passkeys


async def add_authenticator(page: Page) -> tuple[CDPSession, str]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    authenticator_id: str = added["authenticatorId"]
    return cdp, authenticator_id


async def _click_and_expect_status(page: Page, button: str, status: str) -> None:
    await page.get_by_role("button", name=button).click()
    outcome = page.locator("#status")
    finished = re.compile(rf"^(?:{re.escape(status)}|Failed)$")
    await expect(outcome).to_have_text(finished, timeout=TIMEOUT_MS)
    # Together, so that a failure shows the error the page reported.
    shown = (await outcome.inner_text(), await page.locator("#error").inner_text())
    assert shown == (status, ""), f"{button}: {shown}"


@pytest.mark.browser
@pytest.mark.slow
async def test_signs_in_with_a_passkey_added_after_a_password_sign_in(
    tmp_path: Path, browser: Browser, artifacts_dir: Path
) -> None:
    async with live_server(tmp_path) as server:
        await _register(server.base_url)
        origin = _page_origin(server.base_url)
        page = await browser.new_page(viewport={"width": 900, "height": 600})
        page.set_default_timeout(TIMEOUT_MS)
        requested: list[str] = []
        page_errors: list[str] = []

        def record(request: Request) -> None:
            requested.append(request.url)

        async def serve_page(route: Route) -> None:
            # Fulfilled here rather than by the app, yet same-origin with its /graphql.
            await route.fulfill(body=PAGE_HTML, content_type="text/html; charset=utf-8")

        page.on("request", record)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on(
            "console",
            lambda message: page_errors.append(message.text) if message.type == "error" else None,
        )
        await page.route(f"{origin}{PAGE_PATH}", serve_page)
        cdp, authenticator_id = await add_authenticator(page)

        await page.goto(f"{origin}{PAGE_PATH}")
        await page.get_by_label("Email").fill(EMAIL)
        await page.get_by_label("Password").fill(PASSWORD)
        await _click_and_expect_status(page, "Sign in with password", "Signed in with password")
        await expect(page.locator("#me")).to_have_text(EMAIL, timeout=TIMEOUT_MS)

        await _click_and_expect_status(page, "Add passkey", f"Passkey added: {PASSKEY_NAME}")

        await _click_and_expect_status(page, "Sign out", "Signed out")
        await expect(page.locator("#me")).to_have_text("")

        await _click_and_expect_status(page, "Sign in with passkey", "Signed in with passkey")
        await expect(page.locator("#me")).to_have_text(EMAIL, timeout=TIMEOUT_MS)

        held = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
        credentials = held["credentials"]
        assert len(credentials) == 1, credentials
        assert credentials[0]["isResidentCredential"] is True
        assert credentials[0]["rpId"] == "localhost"

        await page.screenshot(path=artifacts_dir / "passkey-sign-in.png", full_page=True)
        await page.close()

        passkeys = await _stored_passkeys(server.base_url)
        assert [passkey["name"] for passkey in passkeys] == [PASSKEY_NAME]
        assert passkeys[0]["lastUsedAt"] is not None
        assert passkeys[0]["transports"] == ["internal"]

    elsewhere = [url for url in requested if not url.startswith(f"{origin}/")]
    assert elsewhere == []
    assert page_errors == []
