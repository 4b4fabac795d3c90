"""gql-app's pytest plugin: the real server for a test suite, accounts on it, a client for it
and the mail it sends (README, "Testing your application against gql-app").

Off unless a suite turns it on: ``-p gql_app.testing``, ``pytest_plugins =
["gql_app.testing"]`` in its top conftest.py, or ``gql_app = true`` in its pytest
configuration. One server per test session (per xdist worker); every test makes accounts of
its own, with unique emails, so tests never see each other's data and the database is never
emptied.
"""

import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import pytest
from sqlalchemy import make_url

from gql_app.testing.accounts import Account, AccountMaker
from gql_app.testing.client import GqlAppError, GqlClient
from gql_app.testing.mail import MailCatcher, MailOutbox, SentMail
from gql_app.testing.server import GqlAppServer, running_server

__all__ = [
    "Account",
    "CreateUser",
    "GqlAppError",
    "GqlAppServer",
    "GqlClient",
    "LoginAs",
    "MailOutbox",
    "SentMail",
    "Tokens",
]

DATABASE_URL_ENV = "GQL_APP_TEST_DATABASE_URL"

LOGIN = """
mutation GqlAppTestingLogin($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken expiresIn }
}
"""


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header that sends the access token."""
        return {"Authorization": f"Bearer {self.access_token}"}


class CreateUser(Protocol):
    def __call__(
        self,
        *,
        email: str | None = None,
        password: str | None = None,
        full_name: str | None = None,
        is_superuser: bool = False,
        is_verified: bool = False,
        is_active: bool = True,
    ) -> Account: ...


class LoginAs(Protocol):
    def __call__(self, user: Account, *, password: str | None = None) -> Tokens: ...


def default_settings(*, database_url: str, mail: MailCatcher) -> dict[str, str]:
    """The server's settings unless the suite's ``gql_app_settings`` says otherwise."""
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "MIGRATE_ON_START": "true",
        # Tests sign in many times from one address.
        "RATE_LIMIT_ENABLED": "false",
        # A sign-in costs milliseconds instead of a third of a second (never in production).
        "PASSWORD_HASHING_COST": "minimal",
        "LOG_LEVEL": "WARNING",
        **mail.server_settings(),
    }


def _async_driver(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def gql_app_settings() -> Mapping[str, str]:
    """Environment variables for the server, over the defaults: override it in conftest.py."""
    return {}


@pytest.fixture(scope="session")
def gql_app_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """GQL_APP_TEST_DATABASE_URL (PostgreSQL), else a SQLite file of this session's own."""
    configured = os.environ.get(DATABASE_URL_ENV)
    if configured:
        return _async_driver(configured)
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('gql-app-database') / 'gql_app.db'}"


@pytest.fixture(scope="session")
def gql_app_mail() -> Iterator[MailCatcher]:
    """The SMTP server the server under test sends its mail to."""
    catcher = MailCatcher()
    catcher.start()
    yield catcher
    catcher.stop()


@pytest.fixture(scope="session")
def gql_app_server(
    gql_app_settings: Mapping[str, str],
    gql_app_database_url: str,
    gql_app_mail: MailCatcher,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GqlAppServer]:
    """gql-app under uvicorn on a free loopback port, migrated, for the whole session."""
    settings = {
        **default_settings(database_url=gql_app_database_url, mail=gql_app_mail),
        **gql_app_settings,
    }
    with running_server(settings, folder=tmp_path_factory.mktemp("gql-app-server")) as server:
        yield server


@pytest.fixture(scope="session")
def gql_client(gql_app_server: GqlAppServer) -> GqlClient:
    """``gql_client(document, variables, token=...)``: the ``data``, or GqlAppError."""
    return GqlClient(gql_app_server.graphql_url)


@pytest.fixture(scope="session")
def gql_app_accounts(gql_app_server: GqlAppServer) -> Iterator[AccountMaker]:
    maker = AccountMaker(
        gql_app_server.database_url,
        hashing_cost=gql_app_server.settings.get("PASSWORD_HASHING_COST", "standard"),
    )
    yield maker
    maker.close()


@pytest.fixture
def create_user(gql_app_accounts: AccountMaker) -> CreateUser:
    """``create_user(email=..., password=..., is_superuser=..., ...)``: a new Account.

    Email and password default to unique ones; the flags to a fresh registration's.
    """
    return gql_app_accounts.create


@pytest.fixture
def superuser(create_user: CreateUser) -> Account:
    """A verified superuser of this test's own."""
    return create_user(is_superuser=True, is_verified=True)


@pytest.fixture
def login_as(gql_client: GqlClient) -> LoginAs:
    """``login_as(user)``: signs the Account in with ``login`` and returns its Tokens."""

    def login_as(user: Account, *, password: str | None = None) -> Tokens:
        credentials = {"email": user.email, "password": password or user.password}
        signed_in = gql_client(LOGIN, {"input": credentials})["login"]
        return Tokens(
            access_token=signed_in["accessToken"],
            refresh_token=signed_in["refreshToken"],
            expires_in=signed_in["expiresIn"],
        )

    return login_as


@pytest.fixture
def mail_outbox(gql_app_mail: MailCatcher, gql_app_server: GqlAppServer) -> MailOutbox:
    """The mail the server sent during this test; ``mail_outbox.wait_for(email)``."""
    return MailOutbox(gql_app_mail)
