"""GraphiQL as a person uses it: in a real browser, against the real app, from this host only."""

import base64
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, expect

from gql_app.api import graphiql
from tests.live_server import live_server

EMAIL = "graphiql-user@example.com"
PASSWORD = "correct horse battery staple"
# Starting a browser and GraphiQL's 3.5 MB bundle on a busy CI runner can take a while.
TIMEOUT_MS = 60_000

REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) { email }
}
"""
LOGIN = f"""mutation {{
  login(input: {{ email: "{EMAIL}", password: "{PASSWORD}" }}) {{
    accessToken
  }}
}}
"""
ME = "{ me { email } }"

QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
HEADERS_TAB = '.graphiql-editor-tools button[data-name="headers"]'
# The variables and headers editors share a panel; the one not shown is marked hidden.
HEADERS_EDITOR = 'section.graphiql-editor-tool[aria-label="Headers"] .graphiql-editor:not(.hidden)'
RUN_BUTTON = ".graphiql-execute-button"
RESULT = ".graphiql-response .CodeMirror"


async def _register(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post(
            "/graphql",
            json={
                "query": REGISTER,
                "variables": {"input": {"email": EMAIL, "password": PASSWORD}},
            },
        )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"register": {"email": EMAIL}}}


async def _replace_text(page: Page, editor: str, text: str) -> None:
    await page.locator(editor).click()
    await page.keyboard.press("ControlOrMeta+a")
    # Typed key by key, the editor would close every bracket and quote a second time.
    await page.keyboard.insert_text(text)


async def _run(page: Page) -> None:
    await page.locator(RUN_BUTTON).click()


@pytest.mark.browser
@pytest.mark.slow
async def test_graphiql_signs_in_and_reads_me(
    tmp_path: Path, browser: Browser, artifacts_dir: Path
) -> None:
    async with live_server(tmp_path) as server:
        await _register(server.base_url)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        requested: list[str] = []
        page_errors: list[str] = []

        def record(request: Request) -> None:
            requested.append(request.url)

        page.on("request", record)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on(
            "console",
            lambda message: page_errors.append(message.text) if message.type == "error" else None,
        )

        await page.goto(f"{server.base_url}/graphql")
        await expect(page.locator(QUERY_EDITOR)).to_be_visible(timeout=TIMEOUT_MS)

        await _replace_text(page, QUERY_EDITOR, LOGIN)
        await expect(page.locator(QUERY_EDITOR)).to_contain_text("login(input:", timeout=TIMEOUT_MS)
        await _run(page)
        result = page.locator(RESULT)
        await expect(result).to_contain_text('"accessToken"', timeout=TIMEOUT_MS)
        match = re.search(r'"accessToken":\s*"([^"]+)"', await result.inner_text())
        assert match is not None, await result.inner_text()
        token = match.group(1)

        await page.locator(HEADERS_TAB).click()
        await expect(page.locator(HEADERS_EDITOR)).to_be_visible(timeout=TIMEOUT_MS)
        await _replace_text(page, HEADERS_EDITOR, json.dumps({"Authorization": f"Bearer {token}"}))
        await expect(page.locator(HEADERS_EDITOR)).to_contain_text("Bearer", timeout=TIMEOUT_MS)

        await _replace_text(page, QUERY_EDITOR, ME)
        await expect(page.locator(QUERY_EDITOR)).to_contain_text(ME, timeout=TIMEOUT_MS)
        await _run(page)
        await expect(result).to_contain_text(f'"email": "{EMAIL}"', timeout=TIMEOUT_MS)
        assert '"errors"' not in await result.inner_text()

        await page.screenshot(path=artifacts_dir / "graphiql.png", full_page=True)
        await page.close()

    app_origin = urlsplit(server.base_url)[:2]
    elsewhere = [
        url
        for url in requested
        if urlsplit(url).scheme not in {"data", "blob"} and urlsplit(url)[:2] != app_origin
    ]
    assert elsewhere == []
    assert any(url.endswith("/graphiql.min.js") for url in requested), requested
    assert page_errors == []


def test_page_loads_nothing_from_another_host() -> None:
    page = graphiql.page_html()
    assert re.findall(r"\b(?:https?:)?//", page) == []


def test_every_asset_the_page_names_is_vendored() -> None:
    page = graphiql.page_html()
    named = re.findall(rf'(?:src|href)="{re.escape(graphiql.ASSETS_PATH)}/([^"]+)"', page)
    assert sorted(named) == [
        "graphiql.min.css",
        "graphiql.min.js",
        "react-dom.production.min.js",
        "react.production.min.js",
    ]
    for name in named:
        assert (graphiql.ASSETS_DIRECTORY / name).is_file(), name


def test_content_security_policy_allows_the_inline_script() -> None:
    scripts = re.findall(r"<script>(.*?)</script>", graphiql.page_html(), flags=re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in graphiql.CONTENT_SECURITY_POLICY
