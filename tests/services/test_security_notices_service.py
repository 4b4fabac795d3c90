"""The security notices (services/security_notices.py): the mail a change to an account's
security sends its owner, from the event the change recorded.

Each event is stored first, as the change's transaction would; the job then runs with a
session of its own and the memory outbox (one test: a real SMTP server), as the job runner
runs it after the response.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import pytest_asyncio
from freezegun import freeze_time
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import security_events as events_crud
from gql_app.crud.security_events import NewSecurityEvent, SecurityEventFilter
from gql_app.db import SessionFactory
from gql_app.email.backends import SMTPBackend
from gql_app.email.service import EmailService
from gql_app.models import SecurityEvent, User
from gql_app.services import auth as auth_service
from gql_app.services import security_events as security_events_service
from gql_app.services.auth import Credentials
from gql_app.services.client_info import ClientInfo
from gql_app.services.jobs import JobContext
from gql_app.services.key_ring import KeyRing
from gql_app.services.passkey_challenges import DatabaseChallengeStore
from gql_app.services.security_events import SecurityEventType
from gql_app.services.security_notices import (
    NOTIFYING_TYPES,
    deliver_email_change_notice,
    deliver_security_notice,
    device_of,
    network_of,
)
from tests.conftest import LogRecords
from tests.email.smtp_server import SMTPServer, serve
from tests.factories import USER_PASSWORD, create_user
from tests.fixtures.email import FailingEmailBackend

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
WHEN_LINE = "When: 2030-06-01 08:00 UTC"
SITE = "http://localhost:3000"

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
# A later Firefox on the same system: one device, updated.
FIREFOX_LINUX_UPDATED = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"

HOME_IP = "203.0.113.7"
HOME_NEIGHBOUR_IP = "203.0.113.200"  # the same /24
ELSEWHERE_IP = "198.51.100.4"
HOME_IPV6 = "2001:db8:1234:1::1"
HOME_IPV6_NEIGHBOUR = "2001:db8:1234:ffff::2"  # the same /48
ELSEWHERE_IPV6 = "2001:db8:5678::1"

# A session id, never to be shown: the notices carry nothing that opens the account.
SESSION_ID = uuid.UUID("5e551011-0000-4000-8000-000000000001")


@dataclass(frozen=True, slots=True)
class Notices:
    """The test database, the settings and the memory outbox the jobs run with."""

    session_factory: SessionFactory
    settings: Settings
    email: EmailService
    sent: list[EmailMessage]

    async def add(
        self,
        user: User,
        type: SecurityEventType,
        *,
        at: datetime = NOW,
        user_agent: str | None = FIREFOX_LINUX,
        ip_address: str | None = HOME_IP,
        details: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        """The event a change stored, committed as the change's transaction commits it."""
        async with self.session_factory() as session:
            event = await events_crud.add(
                session=session,
                event=NewSecurityEvent(
                    type=type.value,
                    occurred_at=at,
                    user_id=user.id,
                    ip_address=ip_address,
                    user_agent=user_agent,
                    session_id=SESSION_ID,
                    details=details or {},
                ),
            )
            await session.commit()
            return event.id

    async def run(
        self,
        event_id: uuid.UUID,
        *,
        settings: Settings | None = None,
        email: EmailService | None = None,
    ) -> None:
        """The job, as the runner runs it after the response: a session of its own."""
        async with self.session_factory() as session:
            context = JobContext(
                session=session, settings=settings or self.settings, email=email or self.email
            )
            await deliver_security_notice(context, event_id=event_id)

    async def details(self, event_id: uuid.UUID) -> dict[str, Any]:
        async with self.session_factory() as session:
            event = await session.get(SecurityEvent, event_id)
            assert event is not None
            return event.details


@pytest.fixture
def notices(
    session_factory: SessionFactory,
    settings: Settings,
    email_service: EmailService,
    sent_mail: list[EmailMessage],
) -> Notices:
    return Notices(
        session_factory=session_factory, settings=settings, email=email_service, sent=sent_mail
    )


@pytest_asyncio.fixture(autouse=True)
async def an_earlier_sign_in(notices: Notices, test_user: User) -> None:
    """The account signed in once before, long ago and elsewhere: no first sign-in (which
    is never mailed) in these tests unless one says so."""
    await notices.add(
        test_user,
        SecurityEventType.SIGNED_IN,
        at=datetime.now(UTC) - timedelta(days=400),
        user_agent=None,
        ip_address=ELSEWHERE_IPV6,
    )


def body_of(message: EmailMessage) -> str:
    """The text as sent, its lines wrapped where the template wraps them."""
    body = message.get_content()
    assert isinstance(body, str)
    return body


def assert_carries_no_secret(body: str) -> None:
    # No link that opens anything, no session id, and none of the raw header.
    assert "token=" not in body
    assert str(SESSION_ID) not in body
    assert "Mozilla" not in body


class TestNewSignIn:
    async def test_the_first_sign_in_from_a_device_is_mailed_with_when_what_and_where(
        self,
        notices: Notices,
        test_user: User,
    ) -> None:
        event_id = await notices.add(test_user, SecurityEventType.SIGNED_IN)

        await notices.run(event_id)

        [message] = notices.sent
        assert message["To"] == test_user.email
        assert message["Subject"] == "New sign-in to your account"
        body = body_of(message)
        assert WHEN_LINE in body
        assert "Device: Firefox on Linux" in body
        assert f"IP address: {HOME_IP}" in body
        assert f"Sign in at {SITE}" in body
        assert "change your password" in body
        assert "sign out everywhere (logoutAll)" in body
        assert_carries_no_secret(body)
        assert (await notices.details(event_id))["notice"] == "sent"

    async def test_the_first_sign_in_of_an_account_is_not_mailed(
        self, notices: Notices, db_session: AsyncSession
    ) -> None:
        newcomer = await create_user(db_session, email="newcomer@example.com")
        event_id = await notices.add(newcomer, SecurityEventType.SIGNED_IN, at=datetime.now(UTC))

        await notices.run(event_id)

        assert notices.sent == []
        assert "notice" not in await notices.details(event_id)

    async def test_a_sign_in_to_a_dormant_account_is_mailed(
        self, notices: Notices, db_session: AsyncSession
    ) -> None:
        # Made long ago, its sign-ins purged since: a sign-in now is news, not a first.
        dormant = await create_user(db_session, email="dormant@example.com")
        event_id = await notices.add(dormant, SecurityEventType.SIGNED_IN, at=NOW)

        await notices.run(event_id)

        assert [message["To"] for message in notices.sent] == ["dormant@example.com"]

    async def test_a_sign_in_from_a_known_device_within_90_days_is_not_mailed(
        self,
        notices: Notices,
        test_user: User,
    ) -> None:
        first = await notices.add(
            test_user, SecurityEventType.SIGNED_IN, at=NOW - timedelta(days=89)
        )
        await notices.run(first)
        # Firefox updated itself, and the line's address moved within its /24.
        second = await notices.add(
            test_user,
            SecurityEventType.SIGNED_IN,
            user_agent=FIREFOX_LINUX_UPDATED,
            ip_address=HOME_NEIGHBOUR_IP,
        )

        await notices.run(second)

        assert len(notices.sent) == 1
        assert "notice" not in await notices.details(second)

    @pytest.mark.parametrize(
        ("user_agent", "ip_address", "device"),
        [
            (FIREFOX_LINUX, ELSEWHERE_IP, "Firefox on Linux"),
            (CHROME_LINUX, HOME_IP, "Chrome on Linux"),
            (FIREFOX_WINDOWS, HOME_IP, "Firefox on Windows"),
        ],
        ids=["another-network", "another-browser", "another-system"],
    )
    async def test_another_network_browser_or_system_is_a_new_device(
        self,
        notices: Notices,
        test_user: User,
        user_agent: str,
        ip_address: str,
        device: str,
    ) -> None:
        await notices.add(test_user, SecurityEventType.SIGNED_IN, at=NOW - timedelta(days=1))
        event_id = await notices.add(
            test_user,
            SecurityEventType.SIGNED_IN,
            user_agent=user_agent,
            ip_address=ip_address,
        )

        await notices.run(event_id)

        [message] = notices.sent
        assert f"Device: {device}" in body_of(message)
        assert f"IP address: {ip_address}" in body_of(message)

    async def test_a_sign_in_older_than_90_days_does_not_count(
        self,
        notices: Notices,
        test_user: User,
    ) -> None:
        await notices.add(
            test_user,
            SecurityEventType.SIGNED_IN,
            at=NOW - timedelta(days=90, seconds=1),
        )
        event_id = await notices.add(test_user, SecurityEventType.SIGNED_IN)

        await notices.run(event_id)

        assert len(notices.sent) == 1

    @pytest.mark.parametrize(
        ("earlier_ip", "known"),
        [(HOME_IPV6_NEIGHBOUR, True), (ELSEWHERE_IPV6, False)],
        ids=["same-48", "another-48"],
    )
    async def test_an_ipv6_network_is_its_48(
        self,
        notices: Notices,
        test_user: User,
        earlier_ip: str,
        known: bool,
    ) -> None:
        await notices.add(
            test_user,
            SecurityEventType.SIGNED_IN,
            at=NOW - timedelta(days=3),
            ip_address=earlier_ip,
        )
        event_id = await notices.add(test_user, SecurityEventType.SIGNED_IN, ip_address=HOME_IPV6)

        await notices.run(event_id)

        assert len(notices.sent) == (0 if known else 1)

    async def test_only_earlier_sign_ins_of_the_same_account_count(
        self,
        notices: Notices,
        db_session: AsyncSession,
        test_user: User,
    ) -> None:
        someone_else = await create_user(db_session)
        before = NOW - timedelta(days=1)
        # The same device, but: another account's sign-in, this account's change of password
        # (not a sign-in), and a sign-in after this one (the job ran late).
        await notices.add(someone_else, SecurityEventType.SIGNED_IN, at=before)
        await notices.add(test_user, SecurityEventType.PASSWORD_CHANGED, at=before)
        await notices.add(test_user, SecurityEventType.SIGNED_IN, at=NOW + timedelta(hours=1))
        event_id = await notices.add(test_user, SecurityEventType.SIGNED_IN)

        await notices.run(event_id)

        [message] = notices.sent
        assert message["To"] == test_user.email

    async def test_a_known_device_is_found_beyond_the_first_page_of_history(
        self,
        notices: Notices,
        test_user: User,
    ) -> None:
        await notices.add(test_user, SecurityEventType.SIGNED_IN, at=NOW - timedelta(days=80))
        # 150 sign-ins since, from elsewhere: the one that matches is on the second page.
        async with notices.session_factory() as session:
            for minutes in range(1, 151):
                await events_crud.add(
                    session=session,
                    event=NewSecurityEvent(
                        type=SecurityEventType.SIGNED_IN.value,
                        occurred_at=NOW - timedelta(minutes=minutes),
                        user_id=test_user.id,
                        ip_address=ELSEWHERE_IP,
                        user_agent=FIREFOX_LINUX,
                    ),
                )
            await session.commit()
        event_id = await notices.add(test_user, SecurityEventType.SIGNED_IN)

        await notices.run(event_id)

        assert notices.sent == []

    async def test_a_client_without_user_agent_or_address_is_an_unknown_device(
        self,
        notices: Notices,
        test_user: User,
    ) -> None:
        event_id = await notices.add(
            test_user, SecurityEventType.SIGNED_IN, user_agent=None, ip_address=None
        )

        await notices.run(event_id)

        body = body_of(notices.sent[0])
        assert "Device: An unknown device" in body
        assert "IP address" not in body


async def sign_in(notices: Notices, user: User, client: ClientInfo) -> uuid.UUID:
    """A sign-in with the password, as the login mutation makes it; its SIGNED_IN event."""
    async with notices.session_factory() as session:
        await auth_service.login(
            challenges=DatabaseChallengeStore(),
            session=session,
            settings=notices.settings,
            keys=KeyRing(notices.settings),
            credentials=Credentials(email=user.email, password=USER_PASSWORD),
            client=client,
        )
        [newest] = await events_crud.list_page(
            session=session,
            event_filter=SecurityEventFilter(
                user_id=user.id, types=[SecurityEventType.SIGNED_IN.value]
            ),
            limit=1,
        )
        return newest.id


async def test_the_events_sign_ins_record_are_told_once_per_device(
    notices: Notices, test_user: User
) -> None:
    home = ClientInfo(user_agent=FIREFOX_LINUX, ip_address=HOME_IP)
    first = await sign_in(notices, test_user, home)
    await notices.run(first)
    again = await sign_in(notices, test_user, home)
    await notices.run(again)

    [message] = notices.sent
    assert message["To"] == test_user.email
    assert "Device: Firefox on Linux" in body_of(message)
    assert (await notices.details(first))["notice"] == "sent"
    assert "notice" not in await notices.details(again)


class TestDevices:
    @pytest.mark.parametrize(
        ("ip_address", "network"),
        [
            ("203.0.113.7", "203.0.113.0/24"),
            ("::ffff:203.0.113.7", "203.0.113.0/24"),
            ("2001:db8:1234:1::1", "2001:db8:1234::/48"),
            ("not an address", None),
            (None, None),
        ],
    )
    def test_the_network_is_the_24_or_the_48(
        self, ip_address: str | None, network: str | None
    ) -> None:
        assert network_of(ip_address) == network

    def test_what_the_header_says_is_cut_to_printable_names(self) -> None:
        device = device_of("Mozilla/5.0 (X11; Linux x86_64) " + "\x00\x1b" * 10, None)

        assert device.described().isprintable()
        assert device.described() == "An unknown browser on Linux"


# The event, its details, the notice's subject and a line of its text.
Change = tuple[SecurityEventType, dict[str, Any], str, str]
CHANGES: list[Change] = [
    (SecurityEventType.PASSWORD_CHANGED, {}, "Your password was changed", "password of your"),
    (SecurityEventType.PASSWORD_RESET, {}, "Your password was reset", "reset with a link"),
    (
        SecurityEventType.MFA_ENABLED,
        {"method": "TOTP"},
        "Two-step verification was turned on",
        "asks for a code from an authenticator app",
    ),
    (
        SecurityEventType.MFA_DISABLED,
        {"method": "TOTP"},
        "Two-step verification was turned off",
        "asks for your password alone",
    ),
    (
        SecurityEventType.RECOVERY_CODES_REGENERATED,
        {},
        "New recovery codes were made",
        "the earlier ones no longer work",
    ),
    (
        SecurityEventType.RECOVERY_CODE_USED,
        {"remaining": 7},
        "A recovery code was used",
        "Each code works once: 7 are left.",
    ),
    (
        SecurityEventType.PASSKEY_ADDED,
        {"passkey_id": str(uuid.uuid4()), "name": "Call +1 555 0100 now"},
        "A passkey was added to your account",
        "can now sign in as you",
    ),
    (
        SecurityEventType.PASSKEY_REMOVED,
        {"passkey_id": str(uuid.uuid4()), "name": "Laptop"},
        "A passkey was removed from your account",
        "it no longer signs in",
    ),
    (
        SecurityEventType.REFRESH_TOKEN_REUSE_DETECTED,
        {},
        "A session of your account was ended",
        "used again after it had been replaced",
    ),
]

# The switch that turns each kind off.
SETTING_OF = {
    SecurityEventType.SIGNED_IN: "security_notice_new_sign_in",
    SecurityEventType.PASSWORD_CHANGED: "security_notice_password",
    SecurityEventType.PASSWORD_RESET: "security_notice_password",
    SecurityEventType.MFA_ENABLED: "security_notice_mfa",
    SecurityEventType.MFA_DISABLED: "security_notice_mfa",
    SecurityEventType.RECOVERY_CODES_REGENERATED: "security_notice_mfa",
    SecurityEventType.RECOVERY_CODE_USED: "security_notice_mfa",
    SecurityEventType.PASSKEY_ADDED: "security_notice_passkeys",
    SecurityEventType.PASSKEY_REMOVED: "security_notice_passkeys",
    SecurityEventType.REFRESH_TOKEN_REUSE_DETECTED: "security_notice_session_theft",
}


def test_every_notifying_type_has_a_notice_and_a_switch_that_is_on_by_default() -> None:
    assert {change[0] for change in CHANGES} | {SecurityEventType.SIGNED_IN} == NOTIFYING_TYPES
    assert set(SETTING_OF) == NOTIFYING_TYPES
    for name in {*SETTING_OF.values(), "security_notice_email_change"}:
        assert Settings.model_fields[name].default is True


class TestChangeNotices:
    @pytest.mark.parametrize("change", CHANGES, ids=[change[0] for change in CHANGES])
    async def test_each_change_is_mailed_to_the_owner(
        self, notices: Notices, test_user: User, change: Change
    ) -> None:
        type, details, subject, line = change
        event_id = await notices.add(test_user, type, details=details)

        await notices.run(event_id)

        [message] = notices.sent
        assert message["To"] == test_user.email
        assert message["Subject"] == subject
        body = body_of(message)
        flat = " ".join(body.split())
        assert line in flat
        assert WHEN_LINE in body
        assert "Device: Firefox on Linux" in body
        assert f"IP address: {HOME_IP}" in body
        assert SITE in body
        assert "If it was not you" in flat or "If you think someone else" in flat
        assert_carries_no_secret(body)
        # A passkey's name is whatever the one who added it typed: never mailed from us.
        assert str(details.get("name", "\x00")) not in body
        assert (await notices.details(event_id)) == {**details, "notice": "sent"}

    @pytest.mark.parametrize(
        ("remaining", "said"),
        [(1, "1 is left"), (0, "none are left, so make new ones"), (None, "the others")],
    )
    async def test_a_used_recovery_code_says_how_many_are_left(
        self,
        notices: Notices,
        test_user: User,
        remaining: int | None,
        said: str,
    ) -> None:
        details = {"remaining": remaining} if remaining is not None else {}
        event_id = await notices.add(
            test_user, SecurityEventType.RECOVERY_CODE_USED, details=details
        )

        await notices.run(event_id)

        assert said in " ".join(body_of(notices.sent[0]).split())

    async def test_a_reset_by_an_administrator_does_not_show_the_administrators_client(
        self,
        notices: Notices,
        test_user: User,
        test_superuser: User,
    ) -> None:
        event_id = await notices.add(
            test_user,
            SecurityEventType.MFA_DISABLED,
            user_agent=CHROME_LINUX,
            ip_address=ELSEWHERE_IP,
            details={"by_admin": str(test_superuser.id)},
        )

        await notices.run(event_id)

        [message] = notices.sent
        assert message["To"] == test_user.email
        assert message["Subject"] == "Two-step verification was turned off by an administrator"
        body = body_of(message)
        assert WHEN_LINE in body
        assert ELSEWHERE_IP not in body
        assert "Chrome" not in body
        assert str(test_superuser.id) not in body

    async def test_ones_own_reset_is_told_as_turning_it_off(
        self,
        notices: Notices,
        test_user: User,
    ) -> None:
        event_id = await notices.add(
            test_user,
            SecurityEventType.MFA_DISABLED,
            details={"by_admin": str(test_user.id)},
        )

        await notices.run(event_id)

        assert notices.sent[0]["Subject"] == "Two-step verification was turned off"
        assert "Device: Firefox on Linux" in body_of(notices.sent[0])

    @pytest.mark.parametrize("type", sorted(NOTIFYING_TYPES))
    async def test_each_switch_turned_off_sends_nothing(
        self,
        notices: Notices,
        test_user: User,
        type: SecurityEventType,
    ) -> None:
        off = notices.settings.model_copy(update={SETTING_OF[type]: False})
        event_id = await notices.add(test_user, type)

        await notices.run(event_id, settings=off)

        assert notices.sent == []
        assert "notice" not in await notices.details(event_id)

    async def test_a_switch_turns_off_its_own_kind_only(
        self,
        notices: Notices,
        test_user: User,
    ) -> None:
        off = notices.settings.model_copy(update={"security_notice_password": False})
        password = await notices.add(test_user, SecurityEventType.PASSWORD_CHANGED)
        passkey = await notices.add(test_user, SecurityEventType.PASSKEY_ADDED)

        await notices.run(password, settings=off)
        await notices.run(passkey, settings=off)

        assert [message["Subject"] for message in notices.sent] == [
            "A passkey was added to your account"
        ]

    @pytest.mark.parametrize(
        "type",
        [SecurityEventType.SIGNED_OUT, SecurityEventType.SIGN_IN_FAILED],
    )
    async def test_other_events_send_nothing(
        self,
        notices: Notices,
        test_user: User,
        type: SecurityEventType,
    ) -> None:
        event_id = await notices.add(test_user, type)

        await notices.run(event_id)

        assert notices.sent == []

    async def test_an_event_gone_or_of_a_deleted_account_sends_nothing(
        self,
        notices: Notices,
        test_user: User,
    ) -> None:
        forgotten = await notices.add(test_user, SecurityEventType.PASSWORD_CHANGED)
        async with notices.session_factory() as session:
            await security_events_service.forget_account(session=session, user_id=test_user.id)
            await session.commit()

        await notices.run(forgotten)
        await notices.run(uuid.uuid4())

        assert notices.sent == []

    async def test_a_deactivated_account_still_hears_of_a_change(
        self,
        notices: Notices,
        db_session: AsyncSession,
    ) -> None:
        inactive = await create_user(db_session, is_active=False)
        event_id = await notices.add(inactive, SecurityEventType.REFRESH_TOKEN_REUSE_DETECTED)

        await notices.run(event_id)

        assert [message["To"] for message in notices.sent] == [inactive.email]

    async def test_a_job_run_twice_mails_once(
        self,
        notices: Notices,
        test_user: User,
    ) -> None:
        event_id = await notices.add(test_user, SecurityEventType.PASSKEY_REMOVED)

        await notices.run(event_id)
        await notices.run(event_id)

        assert len(notices.sent) == 1


class TestDeliveryFailure:
    async def test_a_failure_is_noted_on_the_event_and_logged_and_not_raised(
        self, notices: Notices, test_user: User, app_log: LogRecords
    ) -> None:
        backend = FailingEmailBackend()
        failing = EmailService(backend=backend, settings=notices.settings)
        event_id = await notices.add(test_user, SecurityEventType.PASSWORD_RESET)

        await notices.run(event_id, email=failing)

        assert [message["To"] for message in backend.attempts] == [test_user.email]
        assert (await notices.details(event_id))["notice"] == "failed"
        [record] = [r for r in app_log.records if r.name == "gql_app.services.security_notices"]
        assert record.levelname == "WARNING"
        logged = record.getMessage()
        assert str(event_id) in logged
        assert "PASSWORD_RESET" in logged
        assert test_user.email not in logged
        assert record.exc_info is None

    async def test_a_failed_notice_is_tried_again_by_a_later_run(
        self, notices: Notices, test_user: User
    ) -> None:
        event_id = await notices.add(test_user, SecurityEventType.SIGNED_IN)
        failing = EmailService(backend=FailingEmailBackend(), settings=notices.settings)
        await notices.run(event_id, email=failing)

        await notices.run(event_id)

        assert len(notices.sent) == 1
        assert (await notices.details(event_id))["notice"] == "sent"


OLD_ADDRESS = "old.address@example.com"
NEW_ADDRESS = "newname@example.org"


async def run_email_change_notice(
    notices: Notices,
    *,
    settings: Settings | None = None,
    email: EmailService | None = None,
    event_id: uuid.UUID | None = None,
) -> None:
    async with notices.session_factory() as session:
        context = JobContext(
            session=session, settings=settings or notices.settings, email=email or notices.email
        )
        await deliver_email_change_notice(
            context, previous_email=OLD_ADDRESS, new_email=NEW_ADDRESS, event_id=event_id
        )


class TestEmailChangeNotice:
    async def test_the_old_address_is_told_the_new_one_partly_masked(
        self, notices: Notices
    ) -> None:
        with freeze_time(NOW):
            await run_email_change_notice(notices)

        [message] = notices.sent
        assert message["To"] == OLD_ADDRESS
        assert message["Subject"] == "Your email address was changed"
        body = body_of(message)
        flat = " ".join(body.split())
        assert "changed from this one to n***@example.org" in flat
        assert "newname" not in body
        assert WHEN_LINE in body
        assert "Device:" not in body
        assert "If it was not you" in flat
        assert "tell the site's administrators" in flat
        assert_carries_no_secret(body)

    async def test_with_its_event_it_tells_the_device_and_notes_the_outcome(
        self, notices: Notices, test_user: User
    ) -> None:
        event_id = await notices.add(
            test_user,
            SecurityEventType.EMAIL_CHANGE_REQUESTED,
            details={"from": "o***@example.com", "to": "n***@example.org"},
        )

        await run_email_change_notice(notices, event_id=event_id)

        body = body_of(notices.sent[0])
        assert WHEN_LINE in body
        assert "Device: Firefox on Linux" in body
        assert f"IP address: {HOME_IP}" in body
        assert (await notices.details(event_id))["notice"] == "sent"

    async def test_switched_off_it_sends_nothing(self, notices: Notices, test_user: User) -> None:
        off = notices.settings.model_copy(update={"security_notice_email_change": False})
        event_id = await notices.add(test_user, SecurityEventType.EMAIL_CHANGE_REQUESTED)

        await run_email_change_notice(notices, settings=off)
        await run_email_change_notice(notices, settings=off, event_id=event_id)

        assert notices.sent == []
        assert "notice" not in await notices.details(event_id)

    async def test_a_failure_is_noted_and_not_raised(
        self, notices: Notices, test_user: User
    ) -> None:
        failing = EmailService(backend=FailingEmailBackend(), settings=notices.settings)
        event_id = await notices.add(test_user, SecurityEventType.EMAIL_CHANGE_REQUESTED)

        await run_email_change_notice(notices, email=failing, event_id=event_id)
        await run_email_change_notice(notices, email=failing)

        assert (await notices.details(event_id))["notice"] == "failed"


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server on loopback, in a thread of its own (tests/email/smtp_server.py)."""
    yield from serve()


async def test_a_notice_reaches_a_real_smtp_server(
    notices: Notices, test_user: User, smtp_server: SMTPServer
) -> None:
    over_the_wire = notices.settings.model_copy(
        update={
            "email_backend": "smtp",
            "smtp_host": smtp_server.host,
            "smtp_port": smtp_server.port,
            "smtp_starttls": False,
            "smtp_ssl": False,
            "smtp_timeout_seconds": 5.0,
        }
    )
    email = EmailService(backend=SMTPBackend(over_the_wire), settings=over_the_wire)
    event_id = await notices.add(test_user, SecurityEventType.SIGNED_IN)

    await notices.run(event_id, settings=over_the_wire, email=email)

    [envelope] = smtp_server.handler.envelopes
    assert envelope.rcpt_tos == [test_user.email]
    assert isinstance(envelope.content, bytes)
    received = message_from_bytes(envelope.content, policy=policy.default)
    assert isinstance(received, EmailMessage)
    assert received["To"] == test_user.email
    assert received["Subject"] == "New sign-in to your account"
    body = body_of(received)
    assert WHEN_LINE in body
    assert "Device: Firefox on Linux" in body
    assert f"IP address: {HOME_IP}" in body
    assert_carries_no_secret(body)
    assert (await notices.details(event_id))["notice"] == "sent"
