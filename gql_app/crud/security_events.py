import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud.keyset import KeysetPosition
from gql_app.models import SecurityEvent


@dataclass(frozen=True, slots=True)
class NewSecurityEvent:
    type: str
    occurred_at: datetime
    user_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    session_id: uuid.UUID | None = None
    email_hash: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SecurityEventFilter:
    user_id: uuid.UUID | None = None
    types: Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    email_hash: str | None = None


async def add(*, session: AsyncSession, event: NewSecurityEvent) -> SecurityEvent:
    """Added to the caller's transaction: it commits with the change it records, or not at all."""
    row = SecurityEvent(
        type=event.type,
        occurred_at=event.occurred_at,
        user_id=event.user_id,
        ip_address=event.ip_address,
        user_agent=event.user_agent,
        session_id=event.session_id,
        email_hash=event.email_hash,
        details=event.details,
    )
    session.add(row)
    await session.flush()
    return row


def _conditions(event_filter: SecurityEventFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if event_filter.user_id is not None:
        conditions.append(SecurityEvent.user_id == event_filter.user_id)
    if event_filter.types:
        conditions.append(SecurityEvent.type.in_(event_filter.types))
    if event_filter.email_hash is not None:
        conditions.append(SecurityEvent.email_hash == event_filter.email_hash)
    if event_filter.since is not None:
        conditions.append(SecurityEvent.occurred_at >= event_filter.since)
    if event_filter.until is not None:
        conditions.append(SecurityEvent.occurred_at < event_filter.until)
    return conditions


async def list_page(
    *,
    session: AsyncSession,
    event_filter: SecurityEventFilter,
    limit: int,
    after: KeysetPosition | None = None,
) -> Sequence[SecurityEvent]:
    """Newest first; a page goes on with the events older than ``after``."""
    conditions = _conditions(event_filter)
    if after is not None:
        position = tuple_(
            literal(after.at, SecurityEvent.occurred_at.type),
            literal(after.id, SecurityEvent.id.type),
        )
        conditions.append(tuple_(SecurityEvent.occurred_at, SecurityEvent.id) < position)
    query = (
        select(SecurityEvent)
        .where(*conditions)
        .order_by(SecurityEvent.occurred_at.desc(), SecurityEvent.id.desc())
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def list_all_for_user(
    *, session: AsyncSession, user_id: uuid.UUID
) -> Sequence[SecurityEvent]:
    query = (
        select(SecurityEvent)
        .where(SecurityEvent.user_id == user_id)
        .order_by(SecurityEvent.occurred_at, SecurityEvent.id)
    )
    return (await session.execute(query)).scalars().all()


async def purge_before(*, session: AsyncSession, cutoff: datetime, batch_size: int) -> int:
    """Delete at most ``batch_size`` events older than ``cutoff``; how many went. Small
    batches keep each transaction, and the locks it holds, short."""
    oldest = (
        select(SecurityEvent.id)
        .where(SecurityEvent.occurred_at < cutoff)
        .order_by(SecurityEvent.occurred_at)
        .limit(batch_size)
    )
    result = await session.execute(delete(SecurityEvent).where(SecurityEvent.id.in_(oldest)))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def forget_user(*, session: AsyncSession, user_id: uuid.UUID) -> None:
    """The account's events keep what happened and when, nothing of whom, where or what."""
    query = (
        update(SecurityEvent)
        .where(SecurityEvent.user_id == user_id)
        # Details too: names (of passkeys), addresses, even masked, are the person's.
        .values(user_id=None, ip_address=None, user_agent=None, session_id=None, details={})
    )
    await session.execute(query)


async def note_notice(*, session: AsyncSession, event_id: uuid.UUID, outcome: str) -> bool:
    """Keep in the event's details whether the notice about it went out ("sent", "failed");
    False when the event is gone. The caller commits."""
    # populate_existing: details as stored now, not as this session loaded them earlier.
    event = await session.get(SecurityEvent, event_id, populate_existing=True)
    if event is None:
        return False
    # A new dict: the column is plain JSON, which sees an assignment and no change in place.
    event.details = {**event.details, "notice": outcome}
    await session.flush()
    return True
