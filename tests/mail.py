"""Reading the action links out of the messages the application sent."""

from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

from gql_app.email.service import RESET_PATH, VERIFY_PATH

__all__ = ["RESET_PATH", "VERIFY_PATH", "action_link", "action_token"]


def action_link(message: EmailMessage) -> str:
    """The one link in the message body."""
    body = message.get_content()
    links = [word for word in body.split() if word.startswith(("http://", "https://"))]
    assert len(links) == 1, body
    return links[0]


def action_token(message: EmailMessage, path: str) -> str:
    """The ``token=`` of the message's link, which must point at ``path``."""
    link = urlsplit(action_link(message))
    assert link.path == path, link
    [token] = parse_qs(link.query, strict_parsing=True)["token"]
    return token
