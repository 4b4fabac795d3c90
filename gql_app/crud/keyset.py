import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class KeysetPosition:
    """Where a row sits in a listing ordered by a time and then its id: the keyset a page
    continues after (never OFFSET, so a page deep in a long list costs what the first does)."""

    at: datetime
    id: uuid.UUID
