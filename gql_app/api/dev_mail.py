"""``GET /dev/mail``, development only: the messages this worker printed, newest first.

The links in them are clickable and their tokens shown apart, for pasting into
``verifyEmail`` or ``resetPassword`` in GraphiQL when no frontend runs. Each worker process
keeps its own messages, so with several workers the page lists those of the worker that
answers it. It holds live reset links: it answers only a client on this machine, reached
directly (a proxy in front of it could be forwarding anyone).
"""

import re
from html import escape
from ipaddress import ip_address
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

from gql_app.email.mailbox import Mailbox, ReadableMessage

DEV_MAIL_PATH = "/dev/mail"

_LINK = re.compile(r"https?://[^\s<>\"']+")
_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")

# Nothing to load and nothing to run: one inline style sheet.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
article { border-top: 1px solid #ccc; padding: 0.5rem 0; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
dt { font-weight: bold; } dd { margin: 0 0 0.3rem 1rem; }
code { overflow-wrap: anywhere; }
"""


def _with_links(text: str) -> str:
    """``text`` escaped, each http(s) URL in it an escaped link."""
    pieces: list[str] = []
    position = 0
    for match in _LINK.finditer(text):
        url = match.group()
        pieces.append(escape(text[position : match.start()]))
        pieces.append(f'<a href="{escape(url)}" rel="noreferrer">{escape(url)}</a>')
        position = match.end()
    pieces.append(escape(text[position:]))
    return "".join(pieces)


def _tokens(text: str) -> list[str]:
    found: list[str] = []
    for url in _LINK.findall(text):
        found.extend(parse_qs(urlsplit(url).query).get("token", []))
    return found


def _message_html(message: ReadableMessage) -> str:
    tokens = "".join(
        f"<dt>token</dt><dd><code>{escape(token)}</code></dd>" for token in _tokens(message.body)
    )
    return (
        "<article><dl>"
        f"<dt>To</dt><dd>{escape(message.to)}</dd>"
        f"<dt>Subject</dt><dd>{escape(message.subject)}</dd>"
        f"<dt>Sent</dt><dd>{escape(message.sent_at.isoformat(timespec='seconds'))}</dd>"
        f"{tokens}</dl>"
        f"<pre>{_with_links(message.body)}</pre></article>"
    )


def page_html(mailbox: Mailbox) -> str:
    messages = [_message_html(message) for message in mailbox]
    listing = "\n".join(messages) or "<p>No messages sent since this worker started.</p>"
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>gql-app: mail sent</title>
    <link rel="icon" href="data:," />
    <style>{_STYLE}</style>
  </head>
  <body>
    <h1>Mail sent since this worker started</h1>
    <p>Newest first; the last {mailbox.size} messages are kept. Development only.</p>
    {listing}
  </body>
</html>
"""


def _from_this_machine(request: Request) -> bool:
    if request.client is None or any(name in request.headers for name in _FORWARDING_HEADERS):
        return False
    try:
        return ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def add_dev_mail_route(app: FastAPI, *, mailbox: Mailbox) -> None:
    @app.get(DEV_MAIL_PATH, include_in_schema=False)
    async def dev_mail(request: Request) -> HTMLResponse:
        if not _from_this_machine(request):
            # As if there were no such page.
            raise HTTPException(status_code=404)
        return HTMLResponse(
            page_html(mailbox),
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                # The page holds live tokens.
                "Cache-Control": "no-store",
            },
        )
