"""The messages the application sends, rendered from templates with their action links."""

from email.message import EmailMessage
from email.utils import make_msgid
from importlib import resources
from string import Template
from urllib.parse import urlencode

from gql_app.config import Settings
from gql_app.email.backends import EmailBackend

RESET_PATH = "/reset-password"
VERIFY_PATH = "/verify-email"


def _template(name: str) -> Template:
    text = resources.files("gql_app.email").joinpath("templates", name).read_text("utf-8")
    return Template(text)


def describe_duration(seconds: int) -> str:
    """'48 hours', '90 minutes', '1 minute', '45 seconds': exact, in the largest fitting unit."""
    if seconds % 3600 == 0 and seconds >= 2 * 3600:
        count, unit = seconds // 3600, "hour"
    elif seconds % 60 == 0:
        count, unit = seconds // 60, "minute"
    else:
        count, unit = seconds, "second"
    return f"{count} {unit}{'' if count == 1 else 's'}"


class EmailService:
    def __init__(self, *, backend: EmailBackend, settings: Settings) -> None:
        self.backend = backend
        self._settings = settings

    def action_link(self, path: str, token: str) -> str:
        return f"{self._settings.frontend_base_url.rstrip('/')}{path}?{urlencode({'token': token})}"

    async def send_password_reset(self, *, to: str, token: str) -> None:
        await self._send(
            to=to,
            subject="Reset your password",
            body=_template("password_reset.txt").substitute(
                link=self.action_link(RESET_PATH, token),
                lifetime=describe_duration(self._settings.password_reset_token_expire_seconds),
            ),
        )

    async def send_email_verification(self, *, to: str, token: str) -> None:
        await self._send(
            to=to,
            subject="Confirm your email address",
            body=_template("email_verification.txt").substitute(
                link=self.action_link(VERIFY_PATH, token),
                lifetime=describe_duration(self._settings.email_verification_token_expire_seconds),
            ),
        )

    async def send_registration_attempt(self, *, to: str) -> None:
        await self._send(
            to=to,
            subject="Someone tried to sign up with your email address",
            body=_template("registration_attempt.txt").substitute(
                sign_in=self._settings.frontend_base_url.rstrip("/"),
            ),
        )

    async def send_security_notice(
        self, *, to: str, subject: str, template: str, **values: str
    ) -> None:
        """A notice of a change to the account's security, from ``template`` with ``values``
        and ``$site``, where the owner signs in to act on it. The notices carry no link with
        a token: one that says "this was not me" must not be a key to the account."""
        await self._send(
            to=to,
            subject=subject,
            body=_template(template).substitute(
                values, site=self._settings.frontend_base_url.rstrip("/")
            ),
        )

    async def _send(self, *, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._settings.email_from
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="gql-app")
        message.set_content(body)
        await self.backend.send(message)
