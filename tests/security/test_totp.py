import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from gql_app.security import totp

NOW = datetime(2030, 3, 3, 3, 3, 15, tzinfo=UTC)
STEP = timedelta(seconds=totp.PERIOD_SECONDS)


def code_at(secret: str, moment: datetime) -> str:
    # What an authenticator app shows, computed by the reference implementation.
    return pyotp.TOTP(secret).at(moment)


class TestSecrets:
    def test_a_secret_is_160_random_bits_in_base32(self) -> None:
        secrets = {totp.new_secret() for _ in range(50)}

        assert len(secrets) == 50
        for secret in secrets:
            assert len(base64.b32decode(secret)) == 20

    def test_the_uri_is_what_authenticator_apps_read(self) -> None:
        secret = totp.new_secret()

        uri = totp.provisioning_uri(secret, account="ada@example.com", issuer="Example App")

        parts = urlsplit(uri)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
        assert parts.path == "/Example%20App:ada%40example.com"
        assert query["secret"] == secret
        assert query["issuer"] == "Example App"
        # The defaults every app assumes, stated or left out.
        assert query.get("algorithm", "SHA1") == "SHA1"
        assert query.get("digits", "6") == "6"
        assert query.get("period", "30") == "30"
        assert pyotp.parse_uri(uri).now() == pyotp.TOTP(secret).now()

    def test_the_qr_code_is_an_svg_document(self) -> None:
        svg = totp.qr_code_svg("otpauth://totp/Example:ada%40example.com?secret=ABC")

        assert svg.startswith("<svg")
        assert svg.rstrip().endswith("</svg>")
        assert "<script" not in svg


class TestCodes:
    def test_the_current_code_matches_its_step(self) -> None:
        secret = totp.new_secret()

        step = totp.matching_step(secret, code_at(secret, NOW), at=NOW)

        assert step == pyotp.TOTP(secret).timecode(NOW)

    @pytest.mark.parametrize("drift", [-1, 1])
    def test_one_step_either_side_is_accepted(self, drift: int) -> None:
        secret = totp.new_secret()
        typed = code_at(secret, NOW + drift * STEP)

        step = totp.matching_step(secret, typed, at=NOW)

        assert step == pyotp.TOTP(secret).timecode(NOW) + drift

    @pytest.mark.parametrize("drift", [-2, 2])
    def test_two_steps_away_is_refused(self, drift: int) -> None:
        secret = totp.new_secret()
        typed = code_at(secret, NOW + drift * STEP)
        # A code two steps away may, rarely, equal one within the window.
        window = {code_at(secret, NOW + d * STEP) for d in (-1, 0, 1)}
        if typed in window:
            typed = code_at(secret, NOW + 3 * drift * STEP)

        assert totp.matching_step(secret, typed, at=NOW) is None

    def test_spaces_a_user_types_are_ignored(self) -> None:
        secret = totp.new_secret()
        code = code_at(secret, NOW)

        assert totp.matching_step(secret, f" {code[:3]} {code[3:]} ", at=NOW) is not None

    @pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5"])
    def test_what_cannot_be_a_code_matches_nothing(self, typed: str) -> None:
        assert totp.matching_step(totp.new_secret(), typed, at=NOW) is None

    def test_another_secrets_code_matches_nothing(self) -> None:
        secret = totp.new_secret()
        window = {code_at(secret, NOW + d * STEP) for d in (-1, 0, 1)}
        # Another secret's code, unless by chance it is one of this secret's too.
        typed = next(
            code
            for code in (code_at(totp.new_secret(), NOW) for _ in range(10))
            if code not in window
        )

        assert totp.matching_step(secret, typed, at=NOW) is None
