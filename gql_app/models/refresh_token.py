import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gql_app.models.base import Base, UTCDateTime, UUIDPrimaryKeyMixin, utc_now

if TYPE_CHECKING:
    from gql_app.models.auth_session import AuthSession

TOKEN_HASH_LENGTH = 64


class RefreshToken(UUIDPrimaryKeyMixin, Base):
    """One refresh token of a session, by its SHA-256; rotated tokens stay to detect reuse."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    auth_session: Mapped["AuthSession"] = relationship(back_populates="refresh_tokens")
