"""Passkeys (WebAuthn credentials) an account signs in with, and the challenges their
ceremonies answer when no Redis keeps them."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from gql_app.models.base import Base, UTCDateTime, UUIDPrimaryKeyMixin, utc_now

PASSKEY_NAME_MAX_LENGTH = 64
HASH_LENGTH = 64


class Passkey(UUIDPrimaryKeyMixin, Base):
    """One credential: its public key, found by the id the authenticator gives back."""

    __tablename__ = "passkeys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    # COSE_Key, as the authenticator sent it at registration.
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The authenticator's signature counter (32 bits, unsigned): one that does not grow
    # may be a cloned authenticator.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    aaguid: Mapped[str] = mapped_column(String(36))
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(PASSKEY_NAME_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class PasskeyChallenge(Base):
    """A challenge handed out for one ceremony, found by the hash of its id; taken once."""

    __tablename__ = "passkey_challenges"

    id_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), primary_key=True)
    challenge: Mapped[bytes] = mapped_column(LargeBinary)
    purpose: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
