import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gql_app.crud.keyset import KeysetPosition
from gql_app.errors import InputValidationError
from gql_app.services.pagination import decode_cursor, encode_cursor

POSITION = KeysetPosition(
    at=datetime(2030, 4, 5, 6, 7, 8, 901234, tzinfo=UTC),
    id=uuid.UUID("6c3b7d6a-8a6e-4d8f-9a57-3a2c1d2e4f50"),
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def json_cursor(payload: object) -> str:
    return b64(json.dumps(payload).encode())


class TestCursorRoundTrip:
    def test_decoding_an_encoded_cursor_gives_the_position_back(self) -> None:
        assert decode_cursor(encode_cursor(POSITION)) == POSITION

    def test_turns_a_non_utc_offset_into_the_same_instant_in_utc(self) -> None:
        position = KeysetPosition(
            at=datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=-3))),
            id=uuid.uuid4(),
        )

        decoded = decode_cursor(encode_cursor(position))

        assert decoded.at == position.at  # the same instant
        assert decoded.id == position.id
        assert decoded.at.utcoffset() == timedelta(0)

    def test_cursor_is_url_safe_and_unpadded(self) -> None:
        cursor = encode_cursor(POSITION)

        assert set(cursor) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )

    def test_padded_cursor_is_accepted_too(self) -> None:
        padded = base64.urlsafe_b64encode(
            json.dumps({"c": POSITION.at.isoformat(), "i": str(POSITION.id)}).encode()
        ).decode()

        assert decode_cursor(padded) == POSITION

    def test_different_positions_give_different_cursors(self) -> None:
        other = KeysetPosition(at=POSITION.at, id=uuid.uuid4())

        assert encode_cursor(other) != encode_cursor(POSITION)


VALID_C = "2030-04-05T06:07:08+00:00"
VALID_I = "6c3b7d6a-8a6e-4d8f-9a57-3a2c1d2e4f50"


class TestDecodeCursorRejects:
    @pytest.mark.parametrize(
        "cursor",
        [
            pytest.param("", id="empty"),
            pytest.param("!!!not base64!!!", id="not-base64"),
            pytest.param("a", id="impossible-length"),
            pytest.param("é", id="non-ascii"),
            pytest.param(b64(b"not json at all"), id="base64-of-non-json"),
            pytest.param(b64(b"\xff\xfe\x00garbage"), id="base64-of-binary"),
            pytest.param(json_cursor([VALID_C, VALID_I]), id="json-list"),
            pytest.param(json_cursor("just a string"), id="json-string"),
            pytest.param(json_cursor(42), id="json-number"),
            pytest.param(json_cursor({"i": VALID_I}), id="missing-created-at"),
            pytest.param(json_cursor({"c": VALID_C}), id="missing-id"),
            pytest.param(json_cursor({}), id="empty-object"),
            pytest.param(json_cursor({"c": "2030-04-05T06:07:08", "i": VALID_I}), id="naive-time"),
            pytest.param(json_cursor({"c": "yesterday", "i": VALID_I}), id="bad-time"),
            pytest.param(json_cursor({"c": 1700000000, "i": VALID_I}), id="numeric-time"),
            pytest.param(json_cursor({"c": VALID_C, "i": "not-a-uuid"}), id="bad-uuid"),
            pytest.param(json_cursor({"c": VALID_C, "i": None}), id="null-uuid"),
        ],
    )
    def test_garbage_is_an_input_error_on_after(self, cursor: str) -> None:
        with pytest.raises(InputValidationError) as caught:
            decode_cursor(cursor)

        assert [(problem.field, problem.message) for problem in caught.value.fields] == [
            ("after", "Invalid cursor")
        ]

    # Regression: uuid.UUID() raises AttributeError, not TypeError, for these.
    @pytest.mark.parametrize("position_id", [7, ["x"]], ids=["number", "list"])
    def test_non_string_id_is_an_input_error_on_after(self, position_id: object) -> None:
        with pytest.raises(InputValidationError):
            decode_cursor(json_cursor({"c": VALID_C, "i": position_id}))

    def test_names_the_field_it_was_given(self) -> None:
        with pytest.raises(InputValidationError) as caught:
            decode_cursor("garbage", field="before")

        assert caught.value.fields[0].field == "before"
