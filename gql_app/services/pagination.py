"""Opaque cursors for connections: the keyset position, base64url-encoded."""

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime

from gql_app.crud.keyset import KeysetPosition
from gql_app.error_reasons import FieldErrorCode
from gql_app.errors import InputValidationError

INVALID_CURSOR = "Invalid cursor"


def encode_cursor(position: KeysetPosition) -> str:
    payload = json.dumps({"c": position.at.isoformat(), "i": str(position.id)})
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str = "after") -> KeysetPosition:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        created_at = datetime.fromisoformat(payload["c"])
        position_id = uuid.UUID(payload["i"])
        if created_at.tzinfo is None:
            raise ValueError("cursor time without a zone")
        created_at = created_at.astimezone(UTC)
    except (
        binascii.Error,
        UnicodeError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        OverflowError,
        RecursionError,
    ) as error:
        raise InputValidationError.single(
            field, FieldErrorCode.INVALID_CURSOR, INVALID_CURSOR
        ) from error
    return KeysetPosition(at=created_at, id=position_id)
