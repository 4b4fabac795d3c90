"""The mail a server under test sends: a real SMTP server in the test process (aiosmtpd, in a
thread of its own) receives it, and each test reads what arrived during it, with the action
link and its token taken out."""

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import overload
from urllib.parse import parse_qs, urlsplit

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session
except ImportError as missing:  # pragma: no cover - the testing extra is installed here
    raise ImportError(
        "gql_app.testing receives the server's mail with aiosmtpd: "
        "pip install 'gql-app[testing]' (or aiosmtpd)"
    ) from missing

from gql_app.testing.server import HOST, free_port

WAIT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SentMail:
    """One message as it was received; ``link`` and ``token`` are None in a message with none."""

    to: str
    subject: str
    body: str
    link: str | None
    token: str | None
    message: EmailMessage


def _links(body: str) -> list[str]:
    return [word for word in body.split() if word.startswith(("http://", "https://"))]


def read_mail(raw: bytes) -> SentMail:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_content()
    links = _links(body)
    link = links[0] if len(links) == 1 else None
    tokens = parse_qs(urlsplit(link).query).get("token", []) if link else []
    return SentMail(
        to=str(message["To"]).strip().lower(),
        subject=str(message["Subject"]),
        body=body,
        link=link,
        token=tokens[0] if len(tokens) == 1 else None,
        message=message,
    )


class MailCatcher:
    """Every message received since it started, in order of arrival."""

    def __init__(self) -> None:
        self.received: list[SentMail] = []
        self.arrived = threading.Condition()
        self.port = free_port()
        self._controller = Controller(self, hostname=HOST, port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        with self.arrived:
            self.received.append(read_mail(content))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def server_settings(self) -> dict[str, str]:
        """What points a gql-app server at this catcher."""
        return {
            "EMAIL_BACKEND": "smtp",
            "SMTP_HOST": HOST,
            "SMTP_PORT": str(self.port),
            "SMTP_STARTTLS": "false",
            "SMTP_SSL": "false",
            "SMTP_USERNAME": "",
            "SMTP_TIMEOUT_SECONDS": "5",
        }


class MailOutbox(Sequence[SentMail]):
    """The messages that arrived since this outbox was made (one test's), in order.

    The server sends most mail after it has answered, so read it with ``wait_for``.
    """

    def __init__(self, catcher: MailCatcher) -> None:
        self._catcher = catcher
        with catcher.arrived:
            self._start = len(catcher.received)
        self._taken: set[int] = set()

    def _messages(self) -> list[SentMail]:
        with self._catcher.arrived:
            return self._catcher.received[self._start :]

    @overload
    def __getitem__(self, index: int) -> SentMail: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[SentMail]: ...
    def __getitem__(self, index: int | slice) -> SentMail | Sequence[SentMail]:
        return self._messages()[index]

    def __len__(self) -> int:
        return len(self._messages())

    def __iter__(self) -> Iterator[SentMail]:
        return iter(self._messages())

    def __repr__(self) -> str:
        return f"MailOutbox({[(mail.to, mail.subject) for mail in self._messages()]!r})"

    def wait_for(self, to: str, *, timeout: float = WAIT_TIMEOUT_SECONDS) -> SentMail:
        """The next message to ``to`` that no earlier ``wait_for`` returned, once it arrives.

        AssertionError when none arrives within ``timeout`` seconds.
        """
        address = to.strip().lower()
        deadline = time.monotonic() + timeout
        with self._catcher.arrived:
            while True:
                found = self._next_to(address)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no mail to {address} arrived within {timeout:g} s; "
                        f"this test's outbox: {self!r}"
                    )
                self._catcher.arrived.wait(remaining)

    def _next_to(self, address: str) -> SentMail | None:
        # Called with the catcher's lock held.
        received = self._catcher.received
        for position in range(self._start, len(received)):
            if position not in self._taken and received[position].to == address:
                self._taken.add(position)
                return received[position]
        return None
