import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gql_app.models.base import Base, UTCDateTime, UUIDPrimaryKeyMixin, utc_now
from gql_app.models.refresh_token import TOKEN_HASH_LENGTH
from gql_app.models.user import EMAIL_MAX_LENGTH


class ActionTokenPurpose(enum.StrEnum):
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a secret
    EMAIL_VERIFICATION = "email_verification"


class ActionToken(UUIDPrimaryKeyMixin, Base):
    """A single-use token mailed to a user (password reset, email verification), kept hashed."""

    __tablename__ = "action_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[ActionTokenPurpose] = mapped_column(
        Enum(
            ActionTokenPurpose,
            native_enum=False,
            create_constraint=True,
            length=32,
            values_callable=lambda members: [member.value for member in members],
        )
    )
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), unique=True)
    # The address the token was sent to: a verification only counts for that address.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def is_usable(self, *, now: datetime) -> bool:
        return self.used_at is None and self.expires_at > now
