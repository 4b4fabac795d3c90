import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gql_app.models.base import Base, UTCDateTime, UUIDPrimaryKeyMixin, utc_now

if TYPE_CHECKING:
    from gql_app.models.refresh_token import RefreshToken
    from gql_app.models.user import User

USER_AGENT_MAX_LENGTH = 512
IP_ADDRESS_MAX_LENGTH = 45


class AuthSession(UUIDPrimaryKeyMixin, Base):
    """One signed-in device: a family of refresh tokens and the access tokens naming it."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX_LENGTH), default=None)
    ip_address: Mapped[str | None] = mapped_column(String(IP_ADDRESS_MAX_LENGTH), default=None)
    # How the session last proved who it is (RFC 8176 values: "pwd", "otp", "mfa"), and
    # when: sensitive changes ask for a recent one.
    auth_methods: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["pwd"])
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    user: Mapped["User"] = relationship(back_populates="sessions")
    refresh_tokens: Mapped[list["RefreshToken"]] = relationship(
        back_populates="auth_session", cascade="all, delete-orphan", passive_deletes=True
    )

    def is_usable(self, *, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now
