"""Mail to an account's owner about a change to its security: a sign-in from a new device, a
password changed, a second factor or passkey added or removed, a stolen session ended, the
address itself changed. Each is a job run after the change commits, so it never delays or
fails the operation; a notice that cannot be delivered is logged and noted on its event."""

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ua_parser

from gql_app.config import Settings
from gql_app.crud import security_events as events_crud
from gql_app.crud import users as users_crud
from gql_app.crud.keyset import KeysetPosition
from gql_app.crud.security_events import SecurityEventFilter
from gql_app.db import release_connection
from gql_app.errors import EmailDeliveryError
from gql_app.models import SecurityEvent, User
from gql_app.models.base import utc_now
from gql_app.services.jobs import JobContext
from gql_app.services.security_events import SecurityEventType, masked_email

logger = logging.getLogger(__name__)

# A sign-in is from a new device when none of the account's sign-ins this long before it came
# from the same browser, operating system and network.
NEW_DEVICE_WINDOW = timedelta(days=90)
# A first sign-in this soon after the account was made is its owner's, not news.
NEW_ACCOUNT_WINDOW = timedelta(days=1)
# A network rather than an address: a home or office line keeps its /24 (IPv4) or its /48
# (IPv6) while the address within it changes from day to day.
IPV4_NETWORK_PREFIX = 24
IPV6_NETWORK_PREFIX = 48
HISTORY_PAGE_SIZE = 100
# The family names come out of the User-Agent header, which the client writes: only so much
# of it, and nothing unprintable, goes into a message from us.
FAMILY_MAX_LENGTH = 40
# ua-parser's family for what none of its rules recognise.
UNKNOWN_FAMILY = "Other"

NOTICE_SENT = "sent"
NOTICE_FAILED = "failed"

NOTIFYING_TYPES: frozenset[SecurityEventType] = frozenset(
    {
        SecurityEventType.SIGNED_IN,  # from a new device only
        SecurityEventType.PASSWORD_CHANGED,
        SecurityEventType.PASSWORD_RESET,
        SecurityEventType.MFA_ENABLED,
        SecurityEventType.MFA_DISABLED,
        SecurityEventType.RECOVERY_CODES_REGENERATED,
        SecurityEventType.RECOVERY_CODE_USED,
        SecurityEventType.PASSKEY_ADDED,
        SecurityEventType.PASSKEY_REMOVED,
        SecurityEventType.REFRESH_TOKEN_REUSE_DETECTED,
    }
)


@dataclass(frozen=True, slots=True)
class _Notice:
    subject: str
    template: str
    enabled: Callable[[Settings], bool]


def _new_sign_in_on(settings: Settings) -> bool:
    return settings.security_notice_new_sign_in


def _password_on(settings: Settings) -> bool:
    return settings.security_notice_password


def _mfa_on(settings: Settings) -> bool:
    return settings.security_notice_mfa


def _passkeys_on(settings: Settings) -> bool:
    return settings.security_notice_passkeys


def _session_theft_on(settings: Settings) -> bool:
    return settings.security_notice_session_theft


_NOTICES: dict[SecurityEventType, _Notice] = {
    SecurityEventType.SIGNED_IN: _Notice(
        "New sign-in to your account", "security_new_sign_in.txt", _new_sign_in_on
    ),
    SecurityEventType.PASSWORD_CHANGED: _Notice(
        "Your password was changed", "security_password_changed.txt", _password_on
    ),
    SecurityEventType.PASSWORD_RESET: _Notice(
        "Your password was reset", "security_password_reset.txt", _password_on
    ),
    SecurityEventType.MFA_ENABLED: _Notice(
        "Two-step verification was turned on", "security_mfa_enabled.txt", _mfa_on
    ),
    SecurityEventType.MFA_DISABLED: _Notice(
        "Two-step verification was turned off", "security_mfa_disabled.txt", _mfa_on
    ),
    SecurityEventType.RECOVERY_CODES_REGENERATED: _Notice(
        "New recovery codes were made", "security_recovery_codes_regenerated.txt", _mfa_on
    ),
    SecurityEventType.RECOVERY_CODE_USED: _Notice(
        "A recovery code was used", "security_recovery_code_used.txt", _mfa_on
    ),
    SecurityEventType.PASSKEY_ADDED: _Notice(
        "A passkey was added to your account", "security_passkey_added.txt", _passkeys_on
    ),
    SecurityEventType.PASSKEY_REMOVED: _Notice(
        "A passkey was removed from your account", "security_passkey_removed.txt", _passkeys_on
    ),
    SecurityEventType.REFRESH_TOKEN_REUSE_DETECTED: _Notice(
        "A session of your account was ended", "security_session_theft.txt", _session_theft_on
    ),
}

# Another account's second factors reset by a superuser (admin.resetUserMfa): the event
# carries the superuser's client, which is not the owner's to see.
_RESET_BY_ADMIN = _Notice(
    "Two-step verification was turned off by an administrator",
    "security_mfa_reset_by_admin.txt",
    _mfa_on,
)


@dataclass(frozen=True, slots=True)
class Device:
    """What tells one device of an account from another, as far as a request shows."""

    browser: str
    system: str
    network: str | None

    def described(self) -> str:
        """'Firefox on Linux', as the owner would name it."""
        browser = None if self.browser == UNKNOWN_FAMILY else self.browser
        system = None if self.system == UNKNOWN_FAMILY else self.system
        if browser and system:
            return f"{browser} on {system}"
        if browser:
            return f"{browser} on an unknown system"
        if system:
            return f"An unknown browser on {system}"
        return "An unknown device"


def network_of(ip_address: str | None) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) around ``ip_address``; None without a valid one."""
    address = _address(ip_address)
    if address is None:
        return None
    ipv4 = isinstance(address, ipaddress.IPv4Address)
    prefix = IPV4_NETWORK_PREFIX if ipv4 else IPV6_NETWORK_PREFIX
    return str(ipaddress.ip_network((address, prefix), strict=False))


def _address(ip_address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not ip_address:
        return None
    try:
        address = ipaddress.ip_address(ip_address)
    except ValueError:
        return None
    # An IPv4 client seen through a dual-stack socket is the IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _family(found: ua_parser.UserAgent | ua_parser.OS | None) -> str:
    if found is None:
        return UNKNOWN_FAMILY
    printable = " ".join("".join(c if c.isprintable() else " " for c in found.family).split())
    return printable[:FAMILY_MAX_LENGTH] or UNKNOWN_FAMILY


def device_of(user_agent: str | None, ip_address: str | None) -> Device:
    """The device of a request. Parsing takes the CPU for a moment (the first call, a quarter
    of a second to compile the rules): async callers run it in a thread."""
    if not user_agent:
        return Device(browser=UNKNOWN_FAMILY, system=UNKNOWN_FAMILY, network=network_of(ip_address))
    return Device(
        browser=_family(ua_parser.parse_user_agent(user_agent)),
        system=_family(ua_parser.parse_os(user_agent)),
        network=network_of(ip_address),
    )


def _families(user_agents: Iterable[str | None]) -> set[tuple[str, str]]:
    devices = (device_of(user_agent, None) for user_agent in user_agents)
    return {(device.browser, device.system) for device in devices}


async def _first_sign_in(*, context: JobContext, event: SecurityEvent, user: User) -> bool:
    """Whether ``event`` is the first sign-in of a new account: it comes right after the
    account was made, and tells its owner nothing. An older account without earlier
    sign-ins is a dormant one (the purge took them), and a sign-in to it is told."""
    if event.occurred_at - user.created_at > NEW_ACCOUNT_WINDOW:
        return False
    earlier = await events_crud.list_page(
        session=context.session,
        event_filter=SecurityEventFilter(
            user_id=event.user_id, types=[SecurityEventType.SIGNED_IN.value]
        ),
        limit=1,
        after=KeysetPosition(at=event.occurred_at, id=event.id),
    )
    return not earlier


async def _seen_before(*, context: JobContext, event: SecurityEvent, device: Device) -> bool:
    """Whether another sign-in of the account in the window before ``event`` came from
    ``device``: the same browser and system families, from the same network."""
    event_filter = SecurityEventFilter(
        user_id=event.user_id,
        types=[SecurityEventType.SIGNED_IN.value],
        since=event.occurred_at - NEW_DEVICE_WINDOW,
    )
    # Strictly before this event in the listing's order, so never the event itself.
    position = KeysetPosition(at=event.occurred_at, id=event.id)
    while True:
        page = await events_crud.list_page(
            session=context.session,
            event_filter=event_filter,
            limit=HISTORY_PAGE_SIZE,
            after=position,
        )
        # Only the sign-ins from the same network are parsed: the cheap test goes first.
        candidates = {
            other.user_agent for other in page if network_of(other.ip_address) == device.network
        }
        if candidates and (device.browser, device.system) in await asyncio.to_thread(
            _families, candidates
        ):
            return True
        if len(page) < HISTORY_PAGE_SIZE:
            return False
        position = KeysetPosition(at=page[-1].occurred_at, id=page[-1].id)


def _when(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _activity(*, at: datetime, device: Device | None, ip_address: str | None) -> str:
    """When, from what and from where, as far as known: a line each."""
    lines = [f"When: {_when(at)}"]
    if device is not None:
        lines.append(f"Device: {device.described()}")
    address = _address(ip_address)
    if address is not None:
        lines.append(f"IP address: {address}")
    return "\n".join(lines)


def _remaining(details: dict[str, object]) -> str:
    count = details.get("remaining")
    if not isinstance(count, int) or isinstance(count, bool):
        return "the others still work"
    if count == 0:
        return "none are left, so make new ones"
    return f"{count} {'is' if count == 1 else 'are'} left"


def _by_someone_else(event: SecurityEvent) -> bool:
    actor = event.details.get("by_admin")
    return actor is not None and actor != str(event.user_id)


async def deliver_security_notice(context: JobContext, *, event_id: uuid.UUID) -> None:
    """Mail the owner of the event's account about it, if its kind is on (and, for a
    sign-in, if the device is new); the outcome is noted in the event's details."""
    session = context.session
    event = await session.get(SecurityEvent, event_id)
    if event is None or event.user_id is None:
        return  # purged, or its account deleted: nobody to tell
    try:
        kind = SecurityEventType(event.type)
    except ValueError:
        return
    notice = _NOTICES.get(kind)
    if notice is None or not notice.enabled(context.settings):
        return
    if event.details.get("notice") == NOTICE_SENT:
        return  # a job run twice mails once
    # A deactivated account is told too: the few changes that reach one (a stolen refresh
    # token presented, an administrator resetting its factors) are what its owner most needs
    # to hear of, and reactivated it signs in with what was changed. The address is the one
    # reset links go to, so it is the owner's to read whether or not it was confirmed.
    user = await users_crud.get_by_id(session=session, user_id=event.user_id)
    if user is None:
        return
    recipient = user.email
    # Parsing and the mail server may each take a while: no connection waits on them.
    await release_connection(session)
    device = await asyncio.to_thread(device_of, event.user_agent, event.ip_address)
    if kind is SecurityEventType.SIGNED_IN and (
        await _first_sign_in(context=context, event=event, user=user)
        or await _seen_before(context=context, event=event, device=device)
    ):
        return
    values = {
        "activity": _activity(at=event.occurred_at, device=device, ip_address=event.ip_address)
    }
    if kind is SecurityEventType.MFA_DISABLED and _by_someone_else(event):
        notice = _RESET_BY_ADMIN
        values = {"time": _when(event.occurred_at)}
    elif kind is SecurityEventType.RECOVERY_CODE_USED:
        values["remaining"] = _remaining(event.details)
    await release_connection(session)
    outcome = await _send(
        context,
        event=event.id,
        kind=kind.value,
        to=recipient,
        subject=notice.subject,
        template=notice.template,
        values=values,
    )
    await events_crud.note_notice(session=session, event_id=event.id, outcome=outcome)
    await session.commit()


async def deliver_email_change_notice(
    context: JobContext,
    *,
    previous_email: str,
    new_email: str,
    event_id: uuid.UUID | None = None,
) -> None:
    """Tell the address an account left that it was changed, and to what (partly masked: the
    old address may no longer be the owner's to read). ``event_id``: the account's
    EMAIL_CHANGE_REQUESTED event, for the time, the device and where the outcome is noted."""
    if not context.settings.security_notice_email_change:
        return
    session = context.session
    event = await session.get(SecurityEvent, event_id) if event_id is not None else None
    if event is not None:
        device = await asyncio.to_thread(device_of, event.user_agent, event.ip_address)
        activity = _activity(at=event.occurred_at, device=device, ip_address=event.ip_address)
    else:
        activity = _activity(at=utc_now(), device=None, ip_address=None)
    await release_connection(session)
    outcome = await _send(
        context,
        event=event.id if event is not None else None,
        kind=SecurityEventType.EMAIL_CHANGE_REQUESTED.value,
        to=previous_email,
        subject="Your email address was changed",
        template="security_email_changed.txt",
        values={"new_email": masked_email(new_email), "activity": activity},
    )
    if event is not None:
        await events_crud.note_notice(session=session, event_id=event.id, outcome=outcome)
        await session.commit()


async def _send(
    context: JobContext,
    *,
    event: uuid.UUID | None,
    kind: str,
    to: str,
    subject: str,
    template: str,
    values: dict[str, str],
) -> str:
    """Send one notice; whether it went. A failure is not raised: the change it tells of
    stands, and the runner has nothing better to do with it than this log line."""
    try:
        await context.email.send_security_notice(
            to=to, subject=subject, template=template, **values
        )
    except EmailDeliveryError as error:
        # The event and the kind of failure, never the address: an SMTP refusal names it.
        logger.warning(
            "Security notice %s of event %s not delivered: %s",
            kind,
            event,
            type(error.__cause__ or error).__name__,
        )
        return NOTICE_FAILED
    return NOTICE_SENT
