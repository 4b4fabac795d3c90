"""SMTP servers for the backend tests: started per test, stopped after it."""

from collections.abc import Iterator

import pytest

from tests.email.smtp_server import SMTPServer, check_login, serve


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A plain SMTP server without TLS or authentication."""
    yield from serve()


@pytest.fixture
def smtp_auth_server() -> Iterator[SMTPServer]:
    """An SMTP server that requires AUTH (over plain TCP: a test server on loopback)."""
    yield from serve(authenticator=check_login, auth_required=True, auth_require_tls=False)
