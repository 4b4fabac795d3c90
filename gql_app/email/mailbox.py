"""Messages as a person reads them, and the development mailbox that keeps the latest.

What the SMTP wire carries is MIME: a long line (an action link with its token) is
quoted-printable, ``=3D`` for ``=`` and wrapped with a soft ``=`` break, which no longer works
when copied from a terminal. A developer is shown the decoded text instead.
"""

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

# Enough for a day of trying things out; old ones go first.
MAILBOX_SIZE = 100


@dataclass(frozen=True, slots=True)
class ReadableMessage:
    to: str
    subject: str
    body: str
    sent_at: datetime

    @classmethod
    def of(cls, message: EmailMessage) -> "ReadableMessage":
        """The message's headers and text as sent now, decoded from any transfer encoding."""
        text_part = message.get_body(preferencelist=("plain",))
        body = text_part.get_content() if isinstance(text_part, EmailMessage) else ""
        return cls(
            to=str(message.get("To", "")),
            subject=str(message.get("Subject", "")),
            body=body,
            sent_at=datetime.now(UTC),
        )

    def as_text(self) -> str:
        return f"To: {self.to}\nSubject: {self.subject}\n\n{self.body.rstrip()}\n"


class Mailbox:
    """The last ``size`` messages this process sent, newest first."""

    def __init__(self, size: int = MAILBOX_SIZE) -> None:
        self.size = size
        self._messages: deque[ReadableMessage] = deque(maxlen=size)

    def record(self, message: ReadableMessage) -> None:
        self._messages.appendleft(message)

    def __iter__(self) -> Iterator[ReadableMessage]:
        return iter(tuple(self._messages))

    def __len__(self) -> int:
        return len(self._messages)
