"""Messages decoded for a person, and the bounded development mailbox."""

from datetime import UTC, datetime
from email.message import EmailMessage

from gql_app.email.mailbox import MAILBOX_SIZE, Mailbox, ReadableMessage

SENT_AT = datetime(2030, 1, 1, tzinfo=UTC)


def readable(subject: str) -> ReadableMessage:
    return ReadableMessage(to="a@example.com", subject=subject, body="Body\n", sent_at=SENT_AT)


class TestReadableMessage:
    def test_decodes_a_quoted_printable_body(self) -> None:
        message = EmailMessage()
        message["To"] = "reader@example.com"
        message["Subject"] = "Confirm your email address"
        link = "http://localhost:3000/verify-email?token=" + "t" * 90
        message.set_content(f"Open {link} today. Grüße\n")
        assert message["Content-Transfer-Encoding"] == "quoted-printable"

        decoded = ReadableMessage.of(message)

        assert (decoded.to, decoded.subject) == ("reader@example.com", "Confirm your email address")
        assert decoded.body == f"Open {link} today. Grüße\n"
        assert decoded.sent_at.tzinfo is UTC

    def test_takes_the_text_part_of_a_message_with_an_html_alternative(self) -> None:
        message = EmailMessage()
        message.set_content("plain words\n")
        message.add_alternative("<p>html words</p>", subtype="html")

        assert ReadableMessage.of(message).body == "plain words\n"

    def test_a_message_without_text_has_an_empty_body_and_headers(self) -> None:
        message = EmailMessage()
        message.set_content(b"\x00\x01", maintype="application", subtype="octet-stream")

        decoded = ReadableMessage.of(message)

        assert (decoded.to, decoded.subject, decoded.body) == ("", "", "")

    def test_as_text_is_the_headers_a_blank_line_and_the_body(self) -> None:
        assert readable("Hi").as_text() == "To: a@example.com\nSubject: Hi\n\nBody\n"


class TestMailbox:
    def test_lists_the_newest_first(self) -> None:
        mailbox = Mailbox()

        for subject in ("one", "two", "three"):
            mailbox.record(readable(subject))

        assert [message.subject for message in mailbox] == ["three", "two", "one"]

    def test_keeps_only_the_last_size_messages(self) -> None:
        mailbox = Mailbox(size=2)

        for subject in ("one", "two", "three"):
            mailbox.record(readable(subject))

        assert [message.subject for message in mailbox] == ["three", "two"]
        assert len(mailbox) == 2

    def test_keeps_a_hundred_by_default(self) -> None:
        mailbox = Mailbox()

        for number in range(MAILBOX_SIZE + 5):
            mailbox.record(readable(str(number)))

        assert MAILBOX_SIZE == mailbox.size == len(mailbox) == 100
        assert next(iter(mailbox)).subject == str(MAILBOX_SIZE + 4)

    def test_listing_is_a_snapshot_that_recording_does_not_disturb(self) -> None:
        mailbox = Mailbox()
        mailbox.record(readable("one"))

        listed = iter(mailbox)
        mailbox.record(readable("two"))

        assert [message.subject for message in listed] == ["one"]
