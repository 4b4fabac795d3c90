"""What development adds for a newcomer, and production and the tests go without: mail
printed and listed at /dev/mail, `/` leading to GraphiQL, CORS for the frontend's origin."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from html import escape
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_app.api.dev_mail import DEV_MAIL_PATH, page_html
from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.email.mailbox import Mailbox, ReadableMessage
from gql_app.main import create_app
from gql_app.models import User
from tests.graphql import GraphQLClient
from tests.operations import REQUEST_PASSWORD_RESET, RESET_PASSWORD

NEW_PASSWORD = "a brand new passphrase for ada"
FRONTEND = "http://localhost:3000"
SENT_AT = datetime(2030, 1, 1, tzinfo=UTC)

Served = Callable[..., AbstractAsyncContextManager[AsyncClient]]


@pytest.fixture
def served(settings: Settings, async_test_db: tuple[AsyncEngine, SessionFactory]) -> Served:
    """A client of the app built with ``settings`` changed by the given values."""
    _, session_factory = async_test_db

    @asynccontextmanager
    async def serve(
        client: tuple[str, int] = ("127.0.0.1", 50000), **values: object
    ) -> AsyncIterator[AsyncClient]:
        app: FastAPI = create_app(settings.model_copy(update=values))
        app.state.session_factory = session_factory
        transport = ASGITransport(app=app, client=client)
        async with AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            yield http
        await app.state.engine.dispose()
        await app.state.rate_limiter.aclose()

    return serve


def development(**values: object) -> dict[str, object]:
    return {"environment": "development", "email_backend": "console", **values}


async def request_reset(http: AsyncClient, email: str) -> None:
    response = await GraphQLClient(http)(REQUEST_PASSWORD_RESET, {"email": email})
    assert response.data == {"requestPasswordReset": True}, response.body


async def reset_with(http: AsyncClient, token: str) -> None:
    response = await GraphQLClient(http)(
        RESET_PASSWORD, {"input": {"token": token, "newPassword": NEW_PASSWORD}}
    )
    assert response.body == {"data": {"resetPassword": True}}


def token_of(link: str) -> str:
    [token] = parse_qs(urlsplit(link).query, strict_parsing=True)["token"]
    return token


class TestPrintedMail:
    async def test_the_printed_reset_link_works_as_copied_from_the_terminal(
        self, served: Served, test_user: User, capsys: pytest.CaptureFixture[str]
    ) -> None:
        async with served(**development()) as http:
            await request_reset(http, test_user.email)
            printed = capsys.readouterr().out
            [link] = [line for line in printed.splitlines() if "/reset-password?" in line]
            await reset_with(http, token_of(link))

        assert f"To: {test_user.email}\nSubject: Reset your password\n" in printed
        assert link.startswith(f"{FRONTEND}/reset-password?token=")


class TestDevMailPage:
    async def test_lists_the_messages_sent_newest_first_with_links_and_tokens(
        self, served: Served, test_user: User, test_superuser: User
    ) -> None:
        async with served(**development()) as http:
            await request_reset(http, test_user.email)
            await request_reset(http, test_superuser.email)
            response = await http.get(DEV_MAIL_PATH)

        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        page = response.text
        assert page.index(test_superuser.email) < page.index(test_user.email)
        links = [part.split('"')[0] for part in page.split('<a href="')[1:]]
        assert len(links) == 2
        assert all(link.startswith(f"{FRONTEND}/reset-password?token=") for link in links)
        for link in links:
            assert f"<code>{token_of(link)}</code>" in page

    async def test_a_token_from_the_page_resets_the_password(
        self, served: Served, test_user: User
    ) -> None:
        async with served(**development()) as http:
            await request_reset(http, test_user.email)
            page = (await http.get(DEV_MAIL_PATH)).text
            token = page.split("<code>")[1].split("</code>")[0]
            await reset_with(http, token)

    async def test_holds_live_tokens_so_it_is_never_cached_and_loads_nothing(
        self, served: Served
    ) -> None:
        async with served(**development()) as http:
            response = await http.get(DEV_MAIL_PATH)

        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"].startswith("default-src 'none';")
        assert "script" not in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "No messages sent since this worker started." in response.text

    @pytest.mark.parametrize(
        "values",
        [
            {"environment": "production"},
            {"environment": "test"},
            {"environment": "test", "email_backend": "console"},
            # Mail that reaches real people is not shown to whoever finds the page.
            development(email_backend="smtp"),
            development(email_backend="memory"),
        ],
    )
    async def test_absent_outside_development_with_the_console(
        self, served: Served, values: dict[str, object]
    ) -> None:
        async with served(**values) as http:
            response = await http.get(DEV_MAIL_PATH)

        assert response.status_code == 404
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    @pytest.mark.parametrize(
        ("client", "headers"),
        [
            (("192.0.2.7", 50000), {}),
            (("2001:db8::7", 50000), {}),
            (("testclient", 50000), {}),
            (("127.0.0.1", 50000), {"X-Forwarded-For": "192.0.2.7"}),
            (("127.0.0.1", 50000), {"Forwarded": "for=192.0.2.7"}),
            (("::1", 50000), {"X-Real-IP": "192.0.2.7"}),
        ],
    )
    async def test_answers_only_a_client_on_this_machine_reached_directly(
        self,
        served: Served,
        test_user: User,
        client: tuple[str, int],
        headers: dict[str, str],
    ) -> None:
        async with served(client=client, **development()) as http:
            await request_reset(http, test_user.email)
            response = await http.get(DEV_MAIL_PATH, headers=headers)

        assert response.status_code == 404
        assert test_user.email not in response.text

    async def test_a_client_over_ipv6_loopback_is_on_this_machine(self, served: Served) -> None:
        async with served(client=("::1", 50000), **development()) as http:
            response = await http.get(DEV_MAIL_PATH)

        assert response.status_code == 200


class TestDevMailPageHtml:
    def test_everything_from_the_message_is_escaped(self) -> None:
        mailbox = Mailbox()
        mailbox.record(
            ReadableMessage(
                to="<b>to</b>@example.com",
                subject="<script>alert(1)</script>",
                body='Hi <img src=x onerror=alert(1)> & "you"\n'
                'https://app.example/x?token=a"onclick="b&c=<d>\n',
                sent_at=SENT_AT,
            )
        )

        page = page_html(mailbox)

        assert "<script>" not in page
        assert "<img" not in page
        assert "&lt;b&gt;to&lt;/b&gt;@example.com" in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert escape('Hi <img src=x onerror=alert(1)> & "you"') in page
        # The link stops where a URL must: at the quote, never inside the attribute.
        assert '<a href="https://app.example/x?token=a" rel="noreferrer">' in page
        assert "<code>a</code>" in page

    def test_only_http_links_become_links(self) -> None:
        mailbox = Mailbox()
        mailbox.record(
            ReadableMessage(
                to="a@example.com",
                subject="s",
                body="javascript:alert(1) ftp://files.example http://ok.example/\n",
                sent_at=SENT_AT,
            )
        )

        page = page_html(mailbox)

        assert page.count("<a href=") == 1
        assert '<a href="http://ok.example/" rel="noreferrer">' in page


class TestRoot:
    async def test_leads_to_graphiql_in_development(self, served: Served) -> None:
        async with served(**development()) as http:
            response = await http.get("/")
            graphiql = await http.get(response.headers["location"], headers={"Accept": "text/html"})

        assert response.status_code == 307
        assert response.headers["location"] == "/graphql"
        assert graphiql.status_code == 200
        assert "graphiql" in graphiql.text.lower()

    @pytest.mark.parametrize(
        "values",
        [{"environment": "production"}, {"environment": "test"}, development(graphiql=False)],
    )
    async def test_is_not_found_elsewhere_or_without_graphiql(
        self, served: Served, values: dict[str, object]
    ) -> None:
        async with served(**values) as http:
            response = await http.get("/")

        assert response.status_code == 404


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


class TestCors:
    async def test_development_allows_the_frontend_base_url_origin(self, served: Served) -> None:
        async with served(**development()) as http:
            response = await http.options("/graphql", headers=preflight(FRONTEND))
            answer = await http.post(
                "/graphql", json={"query": "{ __typename }"}, headers={"Origin": FRONTEND}
            )

        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == FRONTEND
        assert set(response.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
        allowed_headers = response.headers["access-control-allow-headers"].lower().split(", ")
        assert {"authorization", "content-type"} <= set(allowed_headers)
        assert answer.headers["access-control-allow-origin"] == FRONTEND
        assert answer.headers["access-control-expose-headers"] == "X-Request-ID"

    async def test_a_frontend_elsewhere_is_allowed_by_its_origin(self, served: Served) -> None:
        async with served(**development(frontend_base_url="http://127.0.0.1:5173/app/")) as http:
            response = await http.options("/graphql", headers=preflight("http://127.0.0.1:5173"))

        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:5173"

    async def test_development_refuses_other_origins(self, served: Served) -> None:
        async with served(**development()) as http:
            response = await http.options("/graphql", headers=preflight("https://evil.example"))

        assert "access-control-allow-origin" not in response.headers

    async def test_an_explicit_list_replaces_the_development_default(self, served: Served) -> None:
        async with served(**development(cors_origins=["https://app.example"])) as http:
            frontend = await http.options("/graphql", headers=preflight(FRONTEND))
            listed = await http.options("/graphql", headers=preflight("https://app.example"))

        assert "access-control-allow-origin" not in frontend.headers
        assert listed.headers["access-control-allow-origin"] == "https://app.example"

    @pytest.mark.parametrize("environment", ["production", "test"])
    async def test_elsewhere_the_frontend_needs_to_be_listed(
        self, served: Served, environment: str
    ) -> None:
        async with served(environment=environment) as http:
            response = await http.options("/graphql", headers=preflight(FRONTEND))

        assert "access-control-allow-origin" not in response.headers
