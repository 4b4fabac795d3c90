"""Where mail goes: memory (tests), the console (development), a real SMTP server."""

import io
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from gql_app.config import Settings
from gql_app.email.backends import (
    ConsoleBackend,
    MemoryBackend,
    SMTPBackend,
    backend_from_settings,
)
from gql_app.email.mailbox import Mailbox
from gql_app.errors import EmailDeliveryError
from tests.email.smtp_server import SMTP_PASSWORD, SMTP_USERNAME, SMTPServer, free_port


def message(to: str = "someone@example.com", subject: str = "Hello") -> EmailMessage:
    built = EmailMessage()
    built["From"] = "gql-app <no-reply@example.com>"
    built["To"] = to
    built["Subject"] = subject
    built.set_content(f"Body of {subject}\n")
    return built


def smtp_settings(settings: Settings, server_port: int, **values: object) -> Settings:
    return settings.model_copy(
        update={
            "email_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": server_port,
            "smtp_starttls": False,
            "smtp_ssl": False,
            "smtp_timeout_seconds": 5.0,
            **values,
        }
    )


class TestMemoryBackend:
    async def test_keeps_every_message_in_order(self) -> None:
        backend = MemoryBackend()
        first, second = message(subject="First"), message(subject="Second")

        await backend.send(first)
        await backend.send(second)

        assert backend.outbox == [first, second]

    def test_starts_empty_and_instances_do_not_share_an_outbox(self) -> None:
        one, other = MemoryBackend(), MemoryBackend()

        one.outbox.append(message())

        assert other.outbox == []


LONG_TOKEN = "0sWl" + "x" * 60 + "-_~="


def message_with_a_link(to: str = "reader@example.com") -> EmailMessage:
    """What the email service sends: a link longer than a MIME line, so quoted-printable."""
    built = message(to=to, subject="Reset your password")
    built.set_content(f"Hello,\n\nhttps://app.example/reset-password?token={LONG_TOKEN}\n\nBye.\n")
    assert built["Content-Transfer-Encoding"] == "quoted-printable"
    return built


class TestConsoleBackend:
    async def test_prints_the_recipient_the_subject_and_the_text_decoded(self) -> None:
        stream = io.StringIO()

        await ConsoleBackend(stream).send(message_with_a_link())

        assert stream.getvalue() == (
            "To: reader@example.com\n"
            "Subject: Reset your password\n"
            "\n"
            "Hello,\n"
            "\n"
            f"https://app.example/reset-password?token={LONG_TOKEN}\n"
            "\n"
            "Bye.\n" + "-" * 72 + "\n"
        )

    async def test_the_link_is_one_line_that_works_when_copied(self) -> None:
        stream = io.StringIO()

        await ConsoleBackend(stream).send(message_with_a_link())

        [link] = [line for line in stream.getvalue().splitlines() if "://" in line]
        assert parse_qs(urlsplit(link).query) == {"token": [LONG_TOKEN]}
        assert "=3D" not in stream.getvalue()
        assert "Content-Transfer-Encoding" not in stream.getvalue()

    async def test_messages_follow_one_another(self) -> None:
        stream = io.StringIO()
        backend = ConsoleBackend(stream)

        await backend.send(message(subject="One"))
        await backend.send(message(subject="Two"))

        output = stream.getvalue()
        assert output.index("Subject: One") < output.index("Subject: Two")
        assert output.count("-" * 72) == 2

    async def test_without_a_stream_it_prints_to_standard_output(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        await ConsoleBackend().send(message(subject="On stdout"))

        assert "Subject: On stdout" in capsys.readouterr().out

    async def test_keeps_what_it_prints_in_its_mailbox(self) -> None:
        mailbox = Mailbox()
        backend = ConsoleBackend(io.StringIO(), mailbox=mailbox)

        await backend.send(message_with_a_link(to="first@example.com"))
        await backend.send(message(to="second@example.com"))

        assert [(kept.to, kept.subject) for kept in mailbox] == [
            ("second@example.com", "Hello"),
            ("first@example.com", "Reset your password"),
        ]
        assert f"token={LONG_TOKEN}\n" in list(mailbox)[1].body


class TestBackendFromSettings:
    @pytest.mark.parametrize(
        ("name", "backend_type"),
        [("memory", MemoryBackend), ("console", ConsoleBackend), ("smtp", SMTPBackend)],
    )
    def test_picks_the_configured_backend(
        self, settings: Settings, name: str, backend_type: type
    ) -> None:
        configured = settings.model_copy(update={"email_backend": name})

        assert type(backend_from_settings(configured)) is backend_type

    def test_the_console_backend_gets_the_mailbox(self, settings: Settings) -> None:
        mailbox = Mailbox()
        configured = settings.model_copy(update={"email_backend": "console"})

        backend = backend_from_settings(configured, mailbox=mailbox)

        assert isinstance(backend, ConsoleBackend)
        assert backend.mailbox is mailbox

    def test_each_memory_backend_has_its_own_outbox(self, settings: Settings) -> None:
        one = backend_from_settings(settings)
        other = backend_from_settings(settings)

        assert isinstance(one, MemoryBackend)
        assert one is not other

    def test_the_default_setting_is_the_console(self) -> None:
        assert Settings.model_fields["email_backend"].default == "console"


class TestSMTPBackend:
    async def test_delivers_the_message_to_a_real_smtp_server(
        self, settings: Settings, smtp_server: SMTPServer
    ) -> None:
        backend = SMTPBackend(smtp_settings(settings, smtp_server.port))

        await backend.send(message(to="recipient@example.com", subject="Over the wire"))

        [envelope] = smtp_server.handler.envelopes
        assert envelope.mail_from == "no-reply@example.com"
        assert envelope.rcpt_tos == ["recipient@example.com"]
        assert isinstance(envelope.content, bytes)
        received = message_from_bytes(envelope.content, policy=policy.default)
        assert received["Subject"] == "Over the wire"
        assert received["To"] == "recipient@example.com"
        assert received.get_content().strip() == "Body of Over the wire"

    async def test_each_send_is_its_own_delivery(
        self, settings: Settings, smtp_server: SMTPServer
    ) -> None:
        backend = SMTPBackend(smtp_settings(settings, smtp_server.port))

        await backend.send(message(to="a@example.com"))
        await backend.send(message(to="b@example.com"))

        assert [envelope.rcpt_tos for envelope in smtp_server.handler.envelopes] == [
            ["a@example.com"],
            ["b@example.com"],
        ]

    async def test_a_refused_connection_is_a_delivery_error(self, settings: Settings) -> None:
        backend = SMTPBackend(smtp_settings(settings, free_port()))

        with pytest.raises(EmailDeliveryError) as caught:
            await backend.send(message())

        assert isinstance(caught.value.__cause__, OSError)

    async def test_starttls_required_but_not_offered_is_a_delivery_error_not_plaintext(
        self, settings: Settings, smtp_server: SMTPServer
    ) -> None:
        backend = SMTPBackend(smtp_settings(settings, smtp_server.port, smtp_starttls=True))

        with pytest.raises(EmailDeliveryError):
            await backend.send(message())

        assert smtp_server.handler.envelopes == []

    async def test_a_refused_recipient_is_a_delivery_error(
        self, settings: Settings, smtp_server: SMTPServer
    ) -> None:
        smtp_server.handler.refuse_recipients.add("ghost@example.com")
        backend = SMTPBackend(smtp_settings(settings, smtp_server.port))

        with pytest.raises(EmailDeliveryError):
            await backend.send(message(to="ghost@example.com"))

        assert smtp_server.handler.envelopes == []


# The test server takes AUTH over plain TCP on loopback; aiosmtpd warns about that.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
class TestSMTPBackendAuthentication:
    async def test_logs_in_with_the_configured_credentials(
        self, settings: Settings, smtp_auth_server: SMTPServer
    ) -> None:
        backend = SMTPBackend(
            smtp_settings(
                settings,
                smtp_auth_server.port,
                smtp_username=SMTP_USERNAME,
                smtp_password=SecretStr(SMTP_PASSWORD),
            )
        )

        await backend.send(message(to="authorised@example.com"))

        assert [envelope.rcpt_tos for envelope in smtp_auth_server.handler.envelopes] == [
            ["authorised@example.com"]
        ]

    async def test_wrong_credentials_are_a_delivery_error(
        self, settings: Settings, smtp_auth_server: SMTPServer
    ) -> None:
        backend = SMTPBackend(
            smtp_settings(
                settings,
                smtp_auth_server.port,
                smtp_username=SMTP_USERNAME,
                smtp_password=SecretStr("wrong-" + SMTP_PASSWORD),
            )
        )

        with pytest.raises(EmailDeliveryError):
            await backend.send(message())

        assert smtp_auth_server.handler.envelopes == []

    async def test_no_credentials_for_a_server_requiring_them_is_a_delivery_error(
        self, settings: Settings, smtp_auth_server: SMTPServer
    ) -> None:
        backend = SMTPBackend(smtp_settings(settings, smtp_auth_server.port))

        with pytest.raises(EmailDeliveryError):
            await backend.send(message())

        assert smtp_auth_server.handler.envelopes == []
