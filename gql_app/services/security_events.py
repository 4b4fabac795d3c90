"""The security trail: an event for each change to an account's security, written in the
transaction of the change (so neither exists without the other), read by the account's
owner and by superusers, and kept SECURITY_EVENT_RETENTION_DAYS."""

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gql_app.config import Settings
from gql_app.crud import security_events as events_crud
from gql_app.crud import users as users_crud
from gql_app.crud.keyset import KeysetPosition
from gql_app.crud.security_events import NewSecurityEvent, SecurityEventFilter
from gql_app.error_reasons import FieldErrorCode
from gql_app.errors import FieldError, InputValidationError
from gql_app.models import SecurityEvent
from gql_app.models.base import utc_now
from gql_app.services.client_info import ClientInfo
from gql_app.services.pagination import decode_cursor, encode_cursor
from gql_app.services.validation import normalize_email
from gql_app.services.viewer import Viewer

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
PURGE_BATCH_SIZE = 1000


class SecurityEventType(StrEnum):
    SIGNED_IN = "SIGNED_IN"
    SIGN_IN_FAILED = "SIGN_IN_FAILED"
    MFA_CHALLENGE_FAILED = "MFA_CHALLENGE_FAILED"
    SIGNED_OUT = "SIGNED_OUT"
    SESSION_REVOKED = "SESSION_REVOKED"
    ALL_SESSIONS_REVOKED = "ALL_SESSIONS_REVOKED"
    REFRESH_TOKEN_REUSE_DETECTED = "REFRESH_TOKEN_REUSE_DETECTED"  # noqa: S105 - a name
    PASSWORD_CHANGED = "PASSWORD_CHANGED"  # noqa: S105
    PASSWORD_RESET_REQUESTED = "PASSWORD_RESET_REQUESTED"  # noqa: S105
    PASSWORD_RESET = "PASSWORD_RESET"  # noqa: S105
    EMAIL_CHANGE_REQUESTED = "EMAIL_CHANGE_REQUESTED"
    EMAIL_VERIFIED = "EMAIL_VERIFIED"
    MFA_ENABLED = "MFA_ENABLED"
    MFA_DISABLED = "MFA_DISABLED"
    RECOVERY_CODES_REGENERATED = "RECOVERY_CODES_REGENERATED"
    RECOVERY_CODE_USED = "RECOVERY_CODE_USED"
    PASSKEY_ADDED = "PASSKEY_ADDED"
    PASSKEY_REMOVED = "PASSKEY_REMOVED"
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    ACCOUNT_UPDATED_BY_ADMIN = "ACCOUNT_UPDATED_BY_ADMIN"
    ACCOUNT_DISABLED = "ACCOUNT_DISABLED"
    ACCOUNT_DELETED = "ACCOUNT_DELETED"
    DATA_EXPORTED = "DATA_EXPORTED"


@dataclass(frozen=True, slots=True)
class SecurityEventEdge:
    cursor: str
    event: SecurityEvent


@dataclass(frozen=True, slots=True)
class SecurityEventPage:
    edges: list[SecurityEventEdge]
    has_next_page: bool
    has_previous_page: bool


async def record_security_event(
    *,
    session: AsyncSession,
    type: SecurityEventType,
    user_id: uuid.UUID | None,
    client: ClientInfo | None = None,
    session_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    email_hash: str | None = None,
    now: datetime | None = None,
) -> uuid.UUID:
    """Adds the event to the caller's transaction, which commits it with the change; its id.
    ``details`` is small and never holds a password, token, hash, secret or code."""
    client = client or ClientInfo()
    row = await events_crud.add(
        session=session,
        event=NewSecurityEvent(
            type=type.value,
            occurred_at=now or utc_now(),
            user_id=user_id,
            ip_address=client.stored_ip_address,
            user_agent=client.stored_user_agent,
            session_id=session_id,
            email_hash=email_hash,
            details=details or {},
        ),
    )
    session.sync_session.info.setdefault(_PENDING, []).append((row.id, type))
    return row.id


def committed_events(session: AsyncSession) -> list[tuple[uuid.UUID, SecurityEventType]]:
    """The events this session committed since the last call: what to tell users of, once
    the changes they record are sure to stay."""
    committed: list[tuple[uuid.UUID, SecurityEventType]] = session.sync_session.info.pop(
        _COMMITTED, []
    )
    return committed


# Events wait in the session until its transaction ends: committed, they are announced
# (committed_events); rolled back, they never happened.
_PENDING = "security_events.pending"
_COMMITTED = "security_events.committed"


@event.listens_for(Session, "after_commit")
def _announce_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction around it may still roll back
    pending = session.info.pop(_PENDING, [])
    if pending:
        session.info.setdefault(_COMMITTED, []).extend(pending)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    if session.in_nested_transaction():
        # A savepoint rolled back: events recorded before it still commit with the rest. One
        # recorded inside it stays listed, and its notice finds no row and sends nothing.
        return
    session.info.pop(_PENDING, None)


async def record_viewer_event(
    *,
    session: AsyncSession,
    viewer: Viewer,
    type: SecurityEventType,
    user_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> uuid.UUID:
    """An event of a change the viewer made, from their session and client: to their own
    account, or to ``user_id``'s (a superuser's change to another account)."""
    return await record_security_event(
        session=session,
        type=type,
        user_id=user_id or viewer.user.id,
        client=viewer.client,
        session_id=viewer.auth_session.id,
        details=details,
    )


async def record_lockout(
    *, session: AsyncSession, settings: Settings, email: str, client: ClientInfo
) -> None:
    """ACCOUNT_LOCKED for the address's account, or for the address alone (as a keyed hash)
    when no account uses it; committed, as the failure that caused it was."""
    user = await users_crud.get_by_email(session=session, email=email)
    await record_security_event(
        session=session,
        type=SecurityEventType.ACCOUNT_LOCKED,
        user_id=user.id if user is not None else None,
        client=client,
        email_hash=address_hash(email, settings=settings) if user is None else None,
    )
    await session.commit()


def masked_email(email: str) -> str:
    """Enough of an address for its owner to know it, little for anyone else: a***@example.com."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def address_hash(email: str, *, settings: Settings) -> str:
    """A keyed hash of a normalised address: equal for one address, and no list of what
    strangers typed for whoever reads the table."""
    return hmac.new(
        settings.security_event_email_key, email.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()


async def list_my_security_events(
    *, session: AsyncSession, viewer: Viewer, first: int, after: str | None
) -> SecurityEventPage:
    return await _page(
        session=session,
        event_filter=SecurityEventFilter(user_id=viewer.user.id),
        first=first,
        after=after,
    )


async def list_security_events(
    *, session: AsyncSession, first: int, after: str | None, event_filter: SecurityEventFilter
) -> SecurityEventPage:
    """Every account's events (superusers only; the resolver checks), filtered."""
    return await _page(session=session, event_filter=event_filter, first=first, after=after)


def utc_instant(value: datetime | None, *, field: str) -> datetime | None:
    """A filter's time as an instant in UTC; a time without an offset is no instant."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise InputValidationError.single(
            field, FieldErrorCode.INVALID_VALUE, "Give the time with its UTC offset"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError as error:
        raise InputValidationError.single(
            field, FieldErrorCode.OUT_OF_RANGE, "The time is out of range"
        ) from error


def hashed_address(raw: str, *, settings: Settings) -> str:
    """The hash a filter's address is looked for by, normalised as sign-ins normalise it."""
    email = normalize_email(raw, field="filter.address")
    if isinstance(email, FieldError):
        raise InputValidationError([email])
    return address_hash(email, settings=settings)


def parsed_user_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as error:
        raise InputValidationError.single(
            "filter.user_id", FieldErrorCode.INVALID_ID, "Invalid user id"
        ) from error


async def _page(
    *, session: AsyncSession, event_filter: SecurityEventFilter, first: int, after: str | None
) -> SecurityEventPage:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InputValidationError.single(
            "first", FieldErrorCode.OUT_OF_RANGE, f"first must be between 1 and {MAX_PAGE_SIZE}"
        )
    position = decode_cursor(after) if after is not None else None
    events = await events_crud.list_page(
        session=session, event_filter=event_filter, limit=first + 1, after=position
    )
    edges = [
        SecurityEventEdge(
            cursor=encode_cursor(KeysetPosition(at=event.occurred_at, id=event.id)), event=event
        )
        for event in events[:first]
    ]
    return SecurityEventPage(
        edges=edges, has_next_page=len(events) > first, has_previous_page=position is not None
    )


async def forget_account(*, session: AsyncSession, user_id: uuid.UUID) -> None:
    """Before an account is deleted: its events keep what happened and when, and lose whom
    and where (the caller commits)."""
    await events_crud.forget_user(session=session, user_id=user_id)


async def purge_security_events(
    *, session: AsyncSession, settings: Settings, now: datetime | None = None
) -> int:
    """Delete the events older than the retention, a batch per transaction; how many."""
    cutoff = (now or utc_now()) - timedelta(days=settings.security_event_retention_days)
    removed = 0
    while True:
        batch = await events_crud.purge_before(
            session=session, cutoff=cutoff, batch_size=PURGE_BATCH_SIZE
        )
        await session.commit()
        removed += batch
        if batch < PURGE_BATCH_SIZE:
            return removed
