from datetime import datetime
from typing import Any

from sqlalchemy import JSON, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from gql_app.models.base import Base, UTCDateTime, utc_now

KID_MAX_LENGTH = 64
ALGORITHM_MAX_LENGTH = 16


class SigningKey(Base):
    """A key that signs access tokens, shared by every worker.

    Its state follows from its times, so no writer has to move it along and every worker
    agrees: ``next`` (published, not signing) until ``activates_at``; from then ``current``
    (signing) until another key's ``activates_at`` passes, then ``previous`` (still
    verifying); ``retired`` (neither published nor verifying) once ``retired_at`` is set.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(KID_MAX_LENGTH), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(ALGORITHM_MAX_LENGTH))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    # AES-GCM under the key-encryption key (nonce, then ciphertext and tag).
    encrypted_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    activates_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
