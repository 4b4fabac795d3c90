"""The reference web client (examples/web) in Chromium, against the app on PostgreSQL in
browser session mode: what a person does with it, and what another site cannot.

The app is built from its lock file with the API's address (the API runs on a free port)
and served as static files, as it would be in production, from http://localhost:<port>.
The API is at http://localhost:<other port>: another origin of the same site, so the
browser sends the SameSite=Strict refresh cookie with credentialed CORS requests. Pages of
http://127.0.0.1:<port> stand for another site.
"""

import asyncio
import functools
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, Response, expect
from playwright.async_api import Error as PlaywrightError

from bench.server import RunningServer
from tests.e2e.postgres import database_name, drop_database, postgres_server, recreate_database
from tests.live_server import live_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WEB_APP = Path(__file__).resolve().parents[2] / "examples" / "web"
EMAIL = "web-client@example.com"
PASSWORD = "a long and memorable passphrase"
# Short enough to wait out in a test, long enough for a page to load on a busy runner.
ACCESS_TOKEN_SECONDS = 6
TIMEOUT_MS = 60_000
COOKIE = "refresh_token"
CSRF_HEADER = "X-Requested-With"


class _AppFiles(SimpleHTTPRequestHandler):
    """The built app: its files, and index.html for every path it routes itself."""

    def send_head(self) -> Any:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.path = "/index.html"
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _OtherSite(SimpleHTTPRequestHandler):
    """A page of another site: whatever HTML the test puts in ``html``."""

    html = ""

    def do_GET(self) -> None:
        body = self.html.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _static_server(handler: Any) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to build examples/web (Node.js 20 or newer)", pytrace=False)
    return npm


def _build(graphql_url: str, out_dir: Path) -> None:
    """``npm ci`` when the installed packages are not the lock file's, then the build."""
    npm = _npm()
    lock = WEB_APP / "package-lock.json"
    installed = WEB_APP / "node_modules" / ".package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
            [npm, "ci", "--no-audit", "--no-fund"], cwd=WEB_APP, check=True
        )
    subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
        [npm, "run", "build", "--", "--outDir", str(out_dir), "--emptyOutDir"],
        cwd=WEB_APP,
        check=True,
        env={**os.environ, "VITE_GRAPHQL_URL": graphql_url},
    )


@dataclass
class Deployment:
    app_origin: str
    api_origin: str
    other_site: str


@pytest.fixture
def postgres_url(worker_id: str) -> Iterator[str]:
    with postgres_server() as server_url:
        name = database_name("gql_app_web", worker_id)
        yield recreate_database(server_url, name)
        drop_database(server_url, name)


@asynccontextmanager
async def deployed(tmp_path: Path, postgres_url: str) -> AsyncIterator[Deployment]:
    dist = tmp_path / "dist"
    dist.mkdir()
    with (
        _static_server(functools.partial(_AppFiles, directory=str(dist))) as app_port,
        _static_server(_OtherSite) as other_port,
    ):
        app_origin = f"http://localhost:{app_port}"
        server: RunningServer
        async with live_server(
            tmp_path,
            DATABASE_URL=postgres_url,
            REFRESH_TOKEN_COOKIE="true",
            # /dev/mail shows the messages the console prints.
            EMAIL_BACKEND="console",
            FRONTEND_BASE_URL=app_origin,
            ACCESS_TOKEN_EXPIRE_SECONDS=str(ACCESS_TOKEN_SECONDS),
            PASSWORD_HASHING_COST="minimal",
        ) as server:
            api_origin = server.base_url.replace("127.0.0.1", "localhost")
            await asyncio.to_thread(_build, f"{api_origin}/graphql", dist)
            yield Deployment(
                app_origin=app_origin,
                api_origin=api_origin,
                other_site=f"http://127.0.0.1:{other_port}",
            )


class Traffic:
    """The GraphQL operations a page sent, by operationName, and what went wrong."""

    def __init__(self, page: Page, api_origin: str) -> None:
        self.operations: list[str] = []
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        self._api = api_origin
        page.on("request", self._record)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _record(self, request: Request) -> None:
        if not request.url.startswith(("http://localhost:", "http://127.0.0.1:")):
            self.elsewhere.append(request.url)
        if request.url == f"{self._api}/graphql" and request.method == "POST":
            body = request.post_data_json or {}
            self.operations.append(body.get("operationName") or "")

    def since(self, mark: int) -> list[str]:
        return self.operations[mark:]


async def _page(context: BrowserContext, deployment: Deployment) -> tuple[Page, Traffic]:
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page, Traffic(page, deployment.api_origin)


async def _sign_in(page: Page, deployment: Deployment) -> None:
    await page.goto(f"{deployment.app_origin}/sign-in")
    await page.get_by_test_id("signin-email").fill(EMAIL)
    await page.get_by_test_id("signin-password").fill(PASSWORD)
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("page-account")).to_be_visible()
    await expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)


async def _refresh_cookie(context: BrowserContext, deployment: Deployment) -> dict[str, Any]:
    sent_to = f"{deployment.api_origin}/graphql"
    cookies = [c for c in await context.cookies(sent_to) if c["name"] == COOKIE]
    assert len(cookies) == 1, cookies
    return dict(cookies[0])


async def _readable_by_scripts(page: Page) -> str:
    """Everything the page's scripts can read of cookies and storage, as one string."""
    readable: str = await page.evaluate(
        """() => JSON.stringify({
            cookie: document.cookie,
            local: Object.entries(localStorage),
            session: Object.entries(sessionStorage),
        })"""
    )
    return readable


async def _retried_after_one_refresh(page: Page, traffic: Traffic, mark: int) -> None:
    """Until every query sent since ``mark`` has been sent twice, then a moment more (for
    a second refresh, were there one, to show)."""
    for _ in range(TIMEOUT_MS // 100):
        queries = [name for name in traffic.since(mark) if name != "RefreshToken"]
        if len(set(queries)) >= 3 and all(queries.count(name) >= 2 for name in queries):
            break
        await page.wait_for_timeout(100)
    await page.wait_for_timeout(1000)


async def _sign_up(page: Page, deployment: Deployment, *, name: str | None = None) -> None:
    await page.goto(f"{deployment.app_origin}/sign-up")
    await page.get_by_test_id("signup-email").fill(EMAIL)
    await page.get_by_test_id("signup-password").fill(PASSWORD)
    if name is not None:
        await page.get_by_test_id("signup-name").fill(name)
    await page.get_by_test_id("signup-submit").click()
    await expect(page.get_by_test_id("signup-done")).to_be_visible()


async def _verify_by_the_mailed_link(page: Page, deployment: Deployment) -> None:
    """The link as the development mailbox shows it, followed."""
    await page.goto(f"{deployment.api_origin}/dev/mail")
    link = page.locator(f'a[href^="{deployment.app_origin}/verify-email?token="]').first
    await link.click()
    await expect(page.get_by_test_id("verify-ok")).to_be_visible()


class Tokens:
    """Every access token the API handed the page, and what the page's scripts can read."""

    def __init__(self, page: Page, deployment: Deployment) -> None:
        self.access: list[str] = []
        self._page = page
        self._context = page.context
        self._deployment = deployment
        page.on("response", self._keep)

    async def _keep(self, response: Response) -> None:
        if response.url != f"{self._deployment.api_origin}/graphql":
            return
        try:
            text = await response.text()
        except PlaywrightError:
            # Its page navigated away first: what it answered is in no page's memory now.
            return
        self.access.extend(re.findall(r'"accessToken":"([^"]+)"', text))

    async def refresh_cookie(self) -> dict[str, Any]:
        return await _refresh_cookie(self._context, self._deployment)

    async def assert_none_readable_by_scripts(self) -> None:
        cookie = await self.refresh_cookie()
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/graphql"
        assert self.access
        readable = await _readable_by_scripts(self._page)
        assert cookie["value"] not in readable
        assert not any(token in readable for token in self.access)


async def _expire_and_act(page: Page, traffic: Traffic) -> list[str]:
    """Wait out the access token, reload the account page's queries; what was sent."""
    await page.wait_for_timeout((ACCESS_TOKEN_SECONDS + 1) * 1000)
    mark = len(traffic.operations)
    await page.get_by_test_id("account-reload").click()
    await _retried_after_one_refresh(page, traffic, mark)
    await expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)
    await expect(page.get_by_test_id("session-row")).to_have_count(1)
    return traffic.since(mark)


async def _revoke_the_other_session(page: Page) -> None:
    await expect(page.get_by_test_id("session-row")).to_have_count(2)
    other = page.locator('[data-testid="session-row"]:not([data-current="true"])')
    await other.get_by_test_id("session-revoke").click()
    await expect(page.get_by_test_id("session-row")).to_have_count(1)


async def test_a_person_signs_up_verifies_signs_in_stays_signed_in_and_signs_out(
    tmp_path: Path, browser: Browser, artifacts_dir: Path, postgres_url: str
) -> None:
    async with deployed(tmp_path, postgres_url) as deployment:
        first = await browser.new_context(viewport={"width": 1000, "height": 800})
        page, traffic = await _page(first, deployment)
        tokens = Tokens(page, deployment)

        await _sign_up(page, deployment, name="Web Client")
        await page.screenshot(path=artifacts_dir / "web-1-signed-up.png", full_page=True)
        await _verify_by_the_mailed_link(page, deployment)
        await page.screenshot(path=artifacts_dir / "web-2-verified.png", full_page=True)

        await _sign_in(page, deployment)
        await expect(page.get_by_test_id("session-row")).to_have_count(1)
        await page.screenshot(path=artifacts_dir / "web-3-account.png", full_page=True)
        await tokens.assert_none_readable_by_scripts()
        cookie = await tokens.refresh_cookie()

        # A reload keeps the session: the page has no token, the cookie gets it one.
        await page.reload()
        await expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)

        # The access token runs out; the next action refreshes once for all its queries,
        # each sent again after the refresh.
        sent = await _expire_and_act(page, traffic)
        queries = [name for name in sent if name != "RefreshToken"]
        assert sent.count("RefreshToken") == 1, sent
        assert len(set(queries)) >= 3, sent
        assert all(queries.count(name) == 2 for name in queries), sent
        assert page.url == f"{deployment.app_origin}/account"
        assert (await tokens.refresh_cookie())["value"] != cookie["value"]
        await tokens.assert_none_readable_by_scripts()

        # A second browser revokes the first one's session; the first lands on sign-in.
        second = await browser.new_context(viewport={"width": 1000, "height": 800})
        other_page, other_traffic = await _page(second, deployment)
        await _sign_in(other_page, deployment)
        await _revoke_the_other_session(other_page)
        await other_page.screenshot(path=artifacts_dir / "web-4-revoked.png", full_page=True)
        await page.get_by_test_id("account-reload").click()
        await expect(page.get_by_test_id("page-sign-in")).to_be_visible()
        await page.screenshot(path=artifacts_dir / "web-5-session-ended.png", full_page=True)

        # The second browser signs out: its cookie goes, and a reload finds nobody signed in.
        await other_page.get_by_test_id("sign-out").click()
        await expect(other_page.get_by_test_id("page-sign-in")).to_be_visible()
        assert [c for c in await second.cookies() if c["name"] == COOKIE] == []
        await other_page.goto(f"{deployment.app_origin}/account")
        await expect(other_page.get_by_test_id("page-sign-in")).to_be_visible()
        await other_page.screenshot(path=artifacts_dir / "web-6-signed-out.png", full_page=True)
        await first.close()
        await second.close()

    assert traffic.errors == other_traffic.errors == []
    assert traffic.elsewhere == other_traffic.elsewhere == []


async def test_tabs_that_find_the_token_expired_together_refresh_once_between_them(
    tmp_path: Path, browser: Browser, postgres_url: str
) -> None:
    async with deployed(tmp_path, postgres_url) as deployment:
        context = await browser.new_context()
        first, first_traffic = await _page(context, deployment)
        await _sign_up(first, deployment)
        await _sign_in(first, deployment)
        # A second tab of the same browser: it has the cookie, and gets a token of its own.
        second, second_traffic = await _page(context, deployment)
        await second.goto(f"{deployment.app_origin}/account")
        await expect(second.get_by_test_id("account-email")).to_have_text(EMAIL)

        await first.wait_for_timeout((ACCESS_TOKEN_SECONDS + 1) * 1000)
        marks = len(first_traffic.operations), len(second_traffic.operations)
        await asyncio.gather(
            first.get_by_test_id("account-reload").click(),
            second.get_by_test_id("account-reload").click(),
        )
        await _retried_after_one_refresh(first, first_traffic, marks[0])
        await _retried_after_one_refresh(second, second_traffic, marks[1])

        sent = first_traffic.since(marks[0]) + second_traffic.since(marks[1])
        assert sent.count("RefreshToken") == 1, sent
        for page in (first, second):
            assert page.url == f"{deployment.app_origin}/account"
            await expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)
        await context.close()

    assert first_traffic.errors == second_traffic.errors == []


FORGED_FORM = """
<form id="forged" method="POST" action="{api}/graphql" enctype="text/plain">
  <input type="hidden" name='{{"query": "mutation {{ refreshToken {{ accessToken }} }}", "x": "'
         value='"}}'>
</form>
"""
FETCH = """async ([url, init]) => {
    try {
        const response = await fetch(url, init);
        return { status: response.status, body: await response.text() };
    } catch (error) {
        return { failed: String(error) };
    }
}"""
REFRESH_BODY = json.dumps({"query": "mutation RefreshToken { refreshToken { accessToken } }"})


async def _fetch(page: Page, url: str, init: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(FETCH, [url, init])
    return result


async def test_another_site_cannot_use_the_refresh_cookie(
    tmp_path: Path, browser: Browser, postgres_url: str
) -> None:
    async with deployed(tmp_path, postgres_url) as deployment:
        context = await browser.new_context()
        page, _ = await _page(context, deployment)
        await _sign_up(page, deployment)
        await _sign_in(page, deployment)
        cookie = (await _refresh_cookie(context, deployment))["value"]
        graphql = f"{deployment.api_origin}/graphql"

        # A form on another site posting a JSON-looking text/plain body.
        _OtherSite.html = FORGED_FORM.format(api=deployment.api_origin)
        attacker = await context.new_page()
        await attacker.goto(deployment.other_site)
        async with attacker.expect_navigation() as navigation:
            await attacker.evaluate("document.getElementById('forged').submit()")
        forged = await navigation.value
        assert forged is not None
        assert forged.status == 415
        assert "accessToken" not in await attacker.content()

        # A script there, with credentials: the preflight gets no CORS approval.
        await attacker.goto(deployment.other_site)
        preflighted = await _fetch(
            attacker,
            graphql,
            {
                "method": "POST",
                "credentials": "include",
                "headers": {"Content-Type": "application/json", CSRF_HEADER: "x"},
                "body": REFRESH_BODY,
            },
        )
        assert "failed" in preflighted, preflighted
        # A simple request needs no approval, but it is not JSON (the API refuses it), the
        # cookie stays at home (SameSite), and the answer is unreadable (here, blocked
        # outright by Cross-Origin-Resource-Policy).
        simple = await _fetch(
            attacker,
            graphql,
            {"method": "POST", "mode": "no-cors", "credentials": "include", "body": REFRESH_BODY},
        )
        assert simple.get("body", "") == "", simple
        assert (await _refresh_cookie(context, deployment))["value"] == cookie

        # The app's own site: without the header the cookie counts for nothing...
        without = await _fetch(
            page,
            graphql,
            {
                "method": "POST",
                "credentials": "include",
                "headers": {"Content-Type": "application/json"},
                "body": REFRESH_BODY,
            },
        )
        refused = json.loads(without["body"])
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["reason"] == "CSRF_HEADER_MISSING"
        assert (await _refresh_cookie(context, deployment))["value"] == cookie
        # ...and with it, the session refreshes.
        with_header = await _fetch(
            page,
            graphql,
            {
                "method": "POST",
                "credentials": "include",
                "headers": {"Content-Type": "application/json", CSRF_HEADER: "gql-app"},
                "body": REFRESH_BODY,
            },
        )
        assert json.loads(with_header["body"])["data"]["refreshToken"]["accessToken"]
        assert (await _refresh_cookie(context, deployment))["value"] != cookie
        await context.close()
