"""Where outgoing mail goes: the console (development), an SMTP server, or a list (tests)."""

import sys
from email.message import EmailMessage
from typing import Protocol, TextIO

import aiosmtplib

from gql_app.config import Settings
from gql_app.email.mailbox import Mailbox, ReadableMessage
from gql_app.errors import EmailDeliveryError


class EmailBackend(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class ConsoleBackend:
    """Prints messages for a developer to read, decoded, and keeps them in ``mailbox`` (the
    development page /dev/mail) when given one; never for production."""

    def __init__(self, stream: TextIO | None = None, *, mailbox: Mailbox | None = None) -> None:
        self._stream = stream
        self.mailbox = mailbox

    async def send(self, message: EmailMessage) -> None:
        readable = ReadableMessage.of(message)
        stream = self._stream or sys.stdout
        stream.write(f"{readable.as_text()}{'-' * 72}\n")
        stream.flush()
        if self.mailbox is not None:
            self.mailbox.record(readable)


class MemoryBackend:
    """Keeps every message in ``outbox``, for tests."""

    def __init__(self) -> None:
        self.outbox: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.outbox.append(message)


class SMTPBackend:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, message: EmailMessage) -> None:
        settings = self._settings
        # An empty value (as compose passes an unset variable) means no login, not an empty one.
        username = settings.smtp_username or None
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=username,
                password=password or None,
                use_tls=settings.smtp_ssl,
                start_tls=settings.smtp_starttls and not settings.smtp_ssl,
                timeout=settings.smtp_timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            raise EmailDeliveryError from error


def backend_from_settings(settings: Settings, *, mailbox: Mailbox | None = None) -> EmailBackend:
    """``mailbox``: where the console backend also keeps what it prints."""
    match settings.email_backend:
        case "smtp":
            return SMTPBackend(settings)
        case "memory":
            return MemoryBackend()
        case "console":
            return ConsoleBackend(mailbox=mailbox)
