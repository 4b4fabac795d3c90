"""The reference web client (examples/web) in Chromium, against the app on PostgreSQL in
browser session mode: what a person does with it, and what another site cannot.

The app is built once from its lock file and served as static files, as it would be in
production, from http://localhost:<port>, its index.html naming the API's address (the API
runs on a free port).
The API is at http://localhost:<other port>: another origin of the same site, so the
browser sends the SameSite=Strict refresh cookie with credentialed CORS requests. Pages of
http://127.0.0.1:<port> stand for another site.
"""

import asyncio
import fcntl
import functools
import json
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

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, Response, expect
from playwright.async_api import Error as PlaywrightError

from tests.browser.test_passkeys import add_authenticator
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


class _QuietHandler(SimpleHTTPRequestHandler):
    def send_html(self, html: str) -> None:
        body = html.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _AppFiles(_QuietHandler):
    """The built app: its files, and index.html for every path it routes itself, pointed at
    the API by the meta tag the app reads its address from (examples/web/src/config.ts)."""

    graphql_url = ""  # set on a subclass, once the API's port is known

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if path.is_file() and path.name != "index.html":
            super().do_GET()
            return
        index = (Path(self.directory) / "index.html").read_text()
        meta = f'<meta name="gql-app-graphql-url" content="{self.graphql_url}">'
        self.send_html(index.replace("<head>", f"<head>{meta}", 1))


class _OtherSite(_QuietHandler):
    """A page of another site: whatever HTML the test puts in ``html``."""

    html = ""

    def do_GET(self) -> None:
        self.send_html(self.html)


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


def _build(out_dir: Path) -> None:
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
    )


@pytest.fixture(scope="session")
def web_build(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The app built once for the whole run: the first worker builds (npm ci and codegen
    write into examples/web, so never two at once), the others wait and reuse it."""
    basetemp = tmp_path_factory.getbasetemp()
    run_folder = basetemp.parent if worker_id != "master" else basetemp
    dist = run_folder / "web-dist"
    with (run_folder / "web-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (dist / "index.html").is_file():
            _build(dist)
    return dist


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
async def deployed(
    tmp_path: Path, postgres_url: str, web_build: Path, **settings: str
) -> AsyncIterator[Deployment]:
    app_files: type[_AppFiles] = type("AppFiles", (_AppFiles,), {})
    with (
        _static_server(functools.partial(app_files, directory=str(web_build))) as app_port,
        _static_server(_OtherSite) as other_port,
    ):
        app_origin = f"http://localhost:{app_port}"
        async with live_server(
            tmp_path,
            DATABASE_URL=postgres_url,
            REFRESH_TOKEN_COOKIE="true",
            # /dev/mail shows the messages the console prints.
            EMAIL_BACKEND="console",
            FRONTEND_BASE_URL=app_origin,
            ACCESS_TOKEN_EXPIRE_SECONDS=str(ACCESS_TOKEN_SECONDS),
            PASSWORD_HASHING_COST="minimal",
            **settings,
        ) as server:
            api_origin = server.base_url.replace("127.0.0.1", "localhost")
            app_files.graphql_url = f"{api_origin}/graphql"
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


async def _retried_after_one_refresh(page: Page, traffic: Traffic, mark: int) -> list[str]:
    """What the page sent since ``mark``, once every query of it has been sent twice (the
    expired try and the retry), and a moment more for a second refresh, were there one."""
    for _ in range(TIMEOUT_MS // 100):
        queries = [name for name in traffic.since(mark) if name != "RefreshToken"]
        if len(set(queries)) >= 3 and all(queries.count(name) >= 2 for name in queries):
            break
        await page.wait_for_timeout(100)
    else:
        pytest.fail(f"the queries were not retried: {traffic.since(mark)}")
    await page.wait_for_timeout(1000)
    sent = traffic.since(mark)
    queries = [name for name in sent if name != "RefreshToken"]
    assert all(queries.count(name) == 2 for name in queries), sent
    return sent


async def _a_signed_in_browser(
    browser: Browser, deployment: Deployment
) -> tuple[BrowserContext, Page, Traffic]:
    """A new browser (context) with a tab that signed up and then in."""
    context = await browser.new_context(viewport={"width": 1000, "height": 800})
    page, traffic = await _page(context, deployment)
    await _sign_up(page, deployment)
    await _sign_in(page, deployment)
    return context, page, traffic


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
        # HttpOnly is what keeps the cookie from scripts; document.cookie on the app's pages
        # would not show it anyway (Path=/graphql), but the storage might hold a copy.
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
    sent = await _retried_after_one_refresh(page, traffic, mark)
    await expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)
    await expect(page.get_by_test_id("session-row")).to_have_count(1)
    return sent


async def _revoke_the_other_session(page: Page) -> None:
    await expect(page.get_by_test_id("session-row")).to_have_count(2)
    other = page.locator('[data-testid="session-row"]:not([data-current="true"])')
    await other.get_by_test_id("session-revoke").click()
    await expect(page.get_by_test_id("session-row")).to_have_count(1)


async def test_a_person_signs_up_verifies_signs_in_stays_signed_in_and_signs_out(
    tmp_path: Path, browser: Browser, artifacts_dir: Path, postgres_url: str, web_build: Path
) -> None:
    async with deployed(tmp_path, postgres_url, web_build) as deployment:
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

        # A reload keeps the session: the page has no token, the cookie gets it one.
        await page.reload()
        await expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)
        cookie = await tokens.refresh_cookie()

        # The access token runs out; the next action refreshes once for all its queries,
        # each sent again after the refresh.
        sent = await _expire_and_act(page, traffic)
        assert sent.count("RefreshToken") == 1, sent
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
    tmp_path: Path, browser: Browser, postgres_url: str, web_build: Path
) -> None:
    async with deployed(tmp_path, postgres_url, web_build) as deployment:
        context, first, first_traffic = await _a_signed_in_browser(browser, deployment)
        # A second tab of the same browser: it has the cookie, and restores the session
        # from it (the first tab adopts the token that restore broadcasts).
        second, second_traffic = await _page(context, deployment)
        await second.goto(f"{deployment.app_origin}/account")
        await expect(second.get_by_test_id("account-email")).to_have_text(EMAIL)

        await first.wait_for_timeout((ACCESS_TOKEN_SECONDS + 1) * 1000)
        marks = len(first_traffic.operations), len(second_traffic.operations)
        await asyncio.gather(
            first.get_by_test_id("account-reload").click(),
            second.get_by_test_id("account-reload").click(),
        )
        sent = [
            *await _retried_after_one_refresh(first, first_traffic, marks[0]),
            *await _retried_after_one_refresh(second, second_traffic, marks[1]),
        ]
        assert sent.count("RefreshToken") == 1, sent
        for page in (first, second):
            assert page.url == f"{deployment.app_origin}/account"
            await expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)
        await context.close()

    assert first_traffic.errors == second_traffic.errors == []


async def test_second_factors_and_passkeys_through_the_app(
    tmp_path: Path, browser: Browser, artifacts_dir: Path, postgres_url: str, web_build: Path
) -> None:
    async with deployed(tmp_path, postgres_url, web_build) as deployment:
        context, page, traffic = await _a_signed_in_browser(browser, deployment)
        cdp, authenticator_id = await add_authenticator(page)

        # The authenticator app, from the enrolment's secret (what the QR code carries).
        await page.get_by_test_id("mfa-start").click()
        await expect(page.get_by_test_id("mfa-qr")).to_be_visible()
        secret = await page.get_by_test_id("mfa-secret").inner_text()
        await page.get_by_test_id("mfa-confirm-code").fill(pyotp.TOTP(secret).now())
        await page.get_by_test_id("mfa-confirm").click()
        codes = page.get_by_test_id("recovery-codes").locator("li")
        await expect(codes).to_have_count(10)
        recovery_code = await codes.first.inner_text()
        await page.screenshot(path=artifacts_dir / "web-mfa-recovery-codes.png", full_page=True)
        await page.get_by_test_id("recovery-codes-saved").click()

        # Signing in now takes a second step: a recovery code here.
        await page.get_by_test_id("sign-out").click()
        await page.get_by_test_id("signin-email").fill(EMAIL)
        await page.get_by_test_id("signin-password").fill(PASSWORD)
        await page.get_by_test_id("signin-submit").click()
        await page.get_by_test_id("mfa-toggle-recovery").click()
        await page.get_by_test_id("mfa-code").fill(recovery_code)
        await page.screenshot(path=artifacts_dir / "web-mfa-second-step.png", full_page=True)
        await page.get_by_test_id("mfa-submit").click()
        await expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)

        # A passkey, added by a session that proved both factors a moment ago, signs in alone.
        await page.get_by_test_id("passkey-add").click()
        await expect(page.get_by_test_id("passkey-row")).to_have_count(1)
        await page.get_by_test_id("sign-out").click()
        await page.get_by_test_id("passkey-signin").click()
        await expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)
        held = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
        assert [c["rpId"] for c in held["credentials"]] == ["localhost"]
        assert "RefreshToken" in traffic.operations
        await context.close()

    assert traffic.errors == []
    assert traffic.elsewhere == []


ADMIN_EMAIL = "admin@example.com"
REGISTER = "mutation Register($input: RegisterInput!) { register(input: $input) { id } }"


async def test_a_superuser_pages_through_and_searches_the_users(
    tmp_path: Path, browser: Browser, artifacts_dir: Path, postgres_url: str, web_build: Path
) -> None:
    async with deployed(
        tmp_path,
        postgres_url,
        web_build,
        FIRST_SUPERUSER_EMAIL=ADMIN_EMAIL,
        FIRST_SUPERUSER_PASSWORD=PASSWORD,
        RATE_LIMIT_ENABLED="false",
    ) as deployment:
        async with httpx.AsyncClient(base_url=deployment.api_origin, timeout=30) as http:
            for number in range(24):
                variables = {
                    "input": {"email": f"member-{number:02}@example.com", "password": PASSWORD}
                }
                registered = await http.post(
                    "/graphql", json={"query": REGISTER, "variables": variables}
                )
                assert registered.json()["data"]["register"]["id"], registered.text
        context = await browser.new_context(viewport={"width": 1000, "height": 900})
        page, traffic = await _page(context, deployment)
        await page.goto(f"{deployment.app_origin}/sign-in")
        await page.get_by_test_id("signin-email").fill(ADMIN_EMAIL)
        await page.get_by_test_id("signin-password").fill(PASSWORD)
        await page.get_by_test_id("signin-submit").click()
        await page.get_by_test_id("nav-admin").click()

        rows = page.get_by_test_id("admin-user-row")
        await expect(rows).to_have_count(20)
        await page.get_by_test_id("admin-next").click()
        await expect(rows).to_have_count(5)  # 24 members and the superuser
        await page.get_by_test_id("admin-search").fill("member-07")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("member-07@example.com")
        await page.screenshot(path=artifacts_dir / "web-admin-search.png", full_page=True)
        await context.close()

    assert traffic.errors == []


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


async def _post_refresh(page: Page, url: str, headers: dict[str, str] | None) -> dict[str, Any]:
    """A credentialed refreshToken from ``page``'s scripts: JSON with ``headers``, or, with
    None, the simple request (no-cors, text/plain) any page may send anywhere."""
    init: dict[str, Any] = {"method": "POST", "credentials": "include", "body": REFRESH_BODY}
    if headers is None:
        init["mode"] = "no-cors"
    else:
        init["headers"] = {"Content-Type": "application/json", **headers}
    result: dict[str, Any] = await page.evaluate(FETCH, [url, init])
    return result


async def test_another_site_cannot_use_the_refresh_cookie(
    tmp_path: Path, browser: Browser, postgres_url: str, web_build: Path
) -> None:
    async with deployed(tmp_path, postgres_url, web_build) as deployment:
        context, page, _ = await _a_signed_in_browser(browser, deployment)
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
        preflighted = await _post_refresh(attacker, graphql, {CSRF_HEADER: "x"})
        assert "failed" in preflighted, preflighted
        # A simple request needs no approval, but it is not JSON (the API refuses it), the
        # cookie stays at home (SameSite), and the answer is unreadable (here, blocked
        # outright by Cross-Origin-Resource-Policy).
        simple = await _post_refresh(attacker, graphql, None)
        assert simple.get("body", "") == "", simple
        assert (await _refresh_cookie(context, deployment))["value"] == cookie

        # A page of the same site that CORS_ORIGINS does not list: the browser sends the
        # cookie with its requests, but the preflight is refused and a simple request is
        # not JSON.
        await attacker.goto(deployment.other_site.replace("127.0.0.1", "localhost"))
        same_site = await _post_refresh(attacker, graphql, {CSRF_HEADER: "x"})
        assert "failed" in same_site, same_site
        same_site_simple = await _post_refresh(attacker, graphql, None)
        assert same_site_simple.get("body", "") == "", same_site_simple
        assert (await _refresh_cookie(context, deployment))["value"] == cookie

        # The app's own origin, which CORS approves: without the header the cookie counts
        # for nothing...
        without = await _post_refresh(page, graphql, {})
        refused = json.loads(without["body"])
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["reason"] == "CSRF_HEADER_MISSING"
        assert (await _refresh_cookie(context, deployment))["value"] == cookie
        # ...and with it, the session refreshes.
        with_header = await _post_refresh(page, graphql, {CSRF_HEADER: "gql-app"})
        assert json.loads(with_header["body"])["data"]["refreshToken"]["accessToken"]
        assert (await _refresh_cookie(context, deployment))["value"] != cookie
        await context.close()
