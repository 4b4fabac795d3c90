"""Second factors: an account's authenticator-app secret, its recovery codes, and the
challenges a password sign-in leaves to be completed with one of them."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from gql_app.models.base import Base, UTCDateTime, UUIDPrimaryKeyMixin, utc_now

HASH_LENGTH = 64


class TotpFactor(Base):
    """An account's TOTP secret, encrypted; on once ``confirmed_at`` is set."""

    __tablename__ = "totp_factors"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # AES-GCM under the key-encryption key, bound to the account.
    encrypted_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The last time step whose code was accepted: a code works once, even inside its window.
    last_used_step: Mapped[int | None] = mapped_column(Integer, default=None)


class RecoveryCode(UUIDPrimaryKeyMixin, Base):
    """One recovery code, by its keyed hash; spent once ``used_at`` is set."""

    __tablename__ = "recovery_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class MfaChallenge(UUIDPrimaryKeyMixin, Base):
    """What a right password on an account with a second factor leaves: completed once,
    within its lifetime and a few wrong factors, it starts the session."""

    __tablename__ = "mfa_challenges"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Factors tried; a right one spends the challenge, so on a live one these all failed.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # How the first step proved who it is (RFC 8176 names): a password, or a passkey
    # without user verification; the completed sign-in's methods start with these.
    first_factor_methods: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["pwd"])
