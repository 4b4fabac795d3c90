"""The messages the application sends (email/service.py): headers, bodies, action links."""

from email.message import EmailMessage
from email.utils import parseaddr
from urllib.parse import parse_qs, urlsplit

import pytest

from gql_app.config import Settings
from gql_app.email.backends import MemoryBackend
from gql_app.email.service import RESET_PATH, VERIFY_PATH, EmailService, describe_duration
from gql_app.errors import EmailDeliveryError
from tests.fixtures.email import FailingEmailBackend

# Every character urlencode must escape in a query value, and some it may leave.
AWKWARD_TOKEN = "a+b/c=d&e f?g#h%i~j_k-l.m"


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend()


def service_for(settings: Settings, backend: MemoryBackend, **values: object) -> EmailService:
    return EmailService(backend=backend, settings=settings.model_copy(update=values))


def the_link(message: EmailMessage) -> str:
    body: str = message.get_content()
    links = [word for word in body.split() if word.startswith("http")]
    assert len(links) == 1, body
    return links[0]


class TestActionLink:
    def test_joins_the_frontend_url_the_path_and_the_token(self, settings: Settings) -> None:
        service = service_for(settings, MemoryBackend(), frontend_base_url="https://app.example")

        link = service.action_link("/reset-password", "abc_DEF-123")

        assert link == "https://app.example/reset-password?token=abc_DEF-123"

    @pytest.mark.parametrize("base", ["https://app.example/portal", "https://app.example/portal/"])
    def test_keeps_a_path_prefix_and_drops_a_trailing_slash(
        self, settings: Settings, base: str
    ) -> None:
        service = service_for(settings, MemoryBackend(), frontend_base_url=base)

        link = service.action_link("/verify-email", "t")

        assert link == "https://app.example/portal/verify-email?token=t"

    def test_url_encodes_the_token(self, settings: Settings) -> None:
        service = service_for(settings, MemoryBackend(), frontend_base_url="https://app.example")

        link = service.action_link("/reset-password", AWKWARD_TOKEN)

        query = urlsplit(link).query
        assert query == "token=a%2Bb%2Fc%3Dd%26e+f%3Fg%23h%25i~j_k-l.m"
        assert parse_qs(query, strict_parsing=True) == {"token": [AWKWARD_TOKEN]}


class TestSendPasswordReset:
    async def test_sends_one_message_with_its_headers(
        self, settings: Settings, backend: MemoryBackend
    ) -> None:
        service = service_for(settings, backend, email_from="Accounts <accounts@app.example>")

        await service.send_password_reset(to="user@example.com", token="reset-token")

        [message] = backend.outbox
        assert message["Subject"] == "Reset your password"
        assert message["To"] == "user@example.com"
        assert parseaddr(message["From"]) == ("Accounts", "accounts@app.example")
        assert message["Message-ID"].endswith("@gql-app>")

    async def test_the_body_carries_the_link_and_the_lifetime_in_minutes(
        self, settings: Settings, backend: MemoryBackend
    ) -> None:
        service = service_for(
            settings,
            backend,
            frontend_base_url="https://app.example/",
            password_reset_token_expire_seconds=45 * 60,
        )

        await service.send_password_reset(to="user@example.com", token=AWKWARD_TOKEN)

        [message] = backend.outbox
        link = urlsplit(the_link(message))
        assert (link.scheme, link.netloc, link.path) == ("https", "app.example", RESET_PATH)
        assert parse_qs(link.query) == {"token": [AWKWARD_TOKEN]}
        body = message.get_content()
        assert "within 45 minutes" in body
        assert "$" not in body, "every template placeholder is filled"

    async def test_each_message_gets_its_own_message_id(
        self, settings: Settings, backend: MemoryBackend
    ) -> None:
        service = service_for(settings, backend)

        await service.send_password_reset(to="a@example.com", token="one")
        await service.send_password_reset(to="a@example.com", token="two")

        assert len({message["Message-ID"] for message in backend.outbox}) == 2


class TestSendEmailVerification:
    async def test_sends_one_message_with_its_headers(
        self, settings: Settings, backend: MemoryBackend
    ) -> None:
        service = service_for(settings, backend)

        await service.send_email_verification(to="new@example.com", token="verify-token")

        [message] = backend.outbox
        assert message["Subject"] == "Confirm your email address"
        assert message["To"] == "new@example.com"
        assert message["From"] == settings.email_from

    async def test_the_body_carries_the_link_and_the_lifetime_in_hours(
        self, settings: Settings, backend: MemoryBackend
    ) -> None:
        service = service_for(
            settings,
            backend,
            frontend_base_url="http://localhost:5173",
            email_verification_token_expire_seconds=24 * 3600,
        )

        await service.send_email_verification(to="new@example.com", token=AWKWARD_TOKEN)

        [message] = backend.outbox
        link = urlsplit(the_link(message))
        assert (link.scheme, link.netloc, link.path) == ("http", "localhost:5173", VERIFY_PATH)
        assert parse_qs(link.query) == {"token": [AWKWARD_TOKEN]}
        body = message.get_content()
        assert "within 24 hours" in body
        assert "$" not in body


class TestDeliveryFailure:
    @pytest.mark.parametrize("send", ["send_password_reset", "send_email_verification"])
    async def test_the_backends_delivery_error_reaches_the_caller(
        self, settings: Settings, send: str
    ) -> None:
        backend = FailingEmailBackend()
        service = EmailService(backend=backend, settings=settings)

        with pytest.raises(EmailDeliveryError):
            await getattr(service, send)(to="user@example.com", token="t")

        assert len(backend.attempts) == 1


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (45, "45 seconds"),
        (60, "1 minute"),
        (3600, "60 minutes"),
        (5400, "90 minutes"),
        (7200, "2 hours"),
        (48 * 3600, "48 hours"),
        (3601, "3601 seconds"),
    ],
)
def test_lifetimes_are_described_exactly(seconds: int, words: str) -> None:
    assert describe_duration(seconds) == words
