"""A real SMTP server (aiosmtpd) run by the tests, collecting what it receives."""

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

SMTP_USERNAME = "mailer"
SMTP_PASSWORD = "mailer-secret"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class CollectingHandler:
    envelopes: list[Envelope] = field(default_factory=list)
    refuse_recipients: set[str] = field(default_factory=set)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse_recipients:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class SMTPServer:
    host: str
    port: int
    handler: CollectingHandler


def check_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    accepted = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USERNAME.encode(),
        SMTP_PASSWORD.encode(),
    )
    # handled=False: the server answers the client itself (235 or 535).
    return AuthResult(success=accepted, handled=False)


def serve(**options: Any) -> Iterator[SMTPServer]:
    handler = CollectingHandler()
    port = free_port()
    # Serves in a thread of its own with its own event loop, like a separate server.
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SMTPServer(host="127.0.0.1", port=port, handler=handler)
    finally:
        controller.stop()
