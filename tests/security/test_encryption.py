import os

import pytest

from gql_app.security.encryption import DecryptionError, seal, unseal

KEY, OLD_KEY = os.urandom(32), os.urandom(32)


def test_a_sealed_value_opens_with_its_key_and_what_it_is_bound_to() -> None:
    stored = seal(b"secret", key=KEY, bound_to=b"row-1")

    assert b"secret" not in stored
    assert unseal(stored, keys=[KEY], bound_to=b"row-1") == b"secret"


def test_the_key_it_was_sealed_with_may_come_later_in_the_list() -> None:
    stored = seal(b"secret", key=OLD_KEY, bound_to=b"row-1")

    assert unseal(stored, keys=[KEY, OLD_KEY], bound_to=b"row-1") == b"secret"


@pytest.mark.parametrize(
    ("keys", "bound_to"),
    [([os.urandom(32)], b"row-1"), ([KEY], b"row-2"), ([], b"row-1")],
    ids=["another-key", "another-row", "no-key"],
)
def test_it_does_not_open_otherwise(keys: list[bytes], bound_to: bytes) -> None:
    stored = seal(b"secret", key=KEY, bound_to=b"row-1")

    with pytest.raises(DecryptionError):
        unseal(stored, keys=keys, bound_to=bound_to)


def test_each_seal_has_its_own_nonce() -> None:
    assert seal(b"x", key=KEY, bound_to=b"r") != seal(b"x", key=KEY, bound_to=b"r")


@pytest.mark.parametrize("stored", [b"", b"short", b"x" * 12])
def test_what_is_too_short_to_be_sealed_does_not_open(stored: bytes) -> None:
    with pytest.raises(DecryptionError):
        unseal(stored, keys=[KEY], bound_to=b"row-1")
