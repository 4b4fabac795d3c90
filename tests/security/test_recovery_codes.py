import math
import re

import pytest

from gql_app.security import recovery_codes

KEY = b"k" * 32


def test_ten_codes_of_over_fifty_bits_each_grouped_for_reading() -> None:
    codes = recovery_codes.new_recovery_codes()

    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", code)
    bits = recovery_codes.LENGTH * math.log2(len(recovery_codes.ALPHABET))
    assert bits >= 50


def test_the_alphabet_has_no_look_alikes() -> None:
    assert not set("01OIL") & set(recovery_codes.ALPHABET)


@pytest.mark.parametrize(
    "typed", ["ABCD-EFGH-JKMN", "abcd-efgh-jkmn", "ABCDEFGHJKMN", " abcd efgh jkmn "]
)
def test_case_dashes_and_spaces_do_not_matter(typed: str) -> None:
    assert recovery_codes.normalized(typed) == "ABCDEFGHJKMN"


@pytest.mark.parametrize(
    "typed", ["", "ABCD-EFGH-JKM", "ABCD-EFGH-JKMNP", "ABCD-EFGH-JKM0", "ÄBCD-EFGH-JKMN"]
)
def test_what_cannot_be_a_code_is_none(typed: str) -> None:
    assert recovery_codes.normalized(typed) is None


def test_the_hash_is_keyed_and_reveals_nothing() -> None:
    code = "ABCDEFGHJKMN"

    stored = recovery_codes.recovery_code_hash(code, key=KEY)

    assert stored == recovery_codes.recovery_code_hash(code, key=KEY)
    assert stored != recovery_codes.recovery_code_hash(code, key=b"o" * 32)
    assert code not in stored
    assert len(stored) == 64
