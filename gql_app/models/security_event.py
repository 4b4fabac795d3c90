"""The security trail: what happened to an account, when, and from where."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from gql_app.models.auth_session import IP_ADDRESS_MAX_LENGTH, USER_AGENT_MAX_LENGTH
from gql_app.models.base import Base, UTCDateTime, UUIDPrimaryKeyMixin, utc_now

EVENT_TYPE_MAX_LENGTH = 40
HASH_LENGTH = 64


class SecurityEvent(UUIDPrimaryKeyMixin, Base):
    """One event, written in the transaction of the change it records."""

    __tablename__ = "security_events"
    __table_args__ = (
        # An account's own list, newest first, and everyone's (superusers), newest first.
        Index("ix_security_events_user_id_occurred_at_id", "user_id", "occurred_at", "id"),
        Index("ix_security_events_occurred_at_id", "occurred_at", "id"),
    )

    # None for a sign-in to an address no account uses, and once the account is deleted.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    type: Mapped[str] = mapped_column(String(EVENT_TYPE_MAX_LENGTH))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    ip_address: Mapped[str | None] = mapped_column(String(IP_ADDRESS_MAX_LENGTH), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX_LENGTH), default=None)
    # Not a foreign key: the event outlives the session it names.
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    # A keyed hash of the address a failed sign-in named, so that attempts on one address can
    # be told apart without keeping what strangers typed.
    email_hash: Mapped[str | None] = mapped_column(String(HASH_LENGTH), default=None, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
