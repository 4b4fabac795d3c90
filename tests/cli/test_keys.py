import json
from pathlib import Path
from typing import Any

import pytest

from gql_app.cli import main
from gql_app.config import get_settings
from tests.cli.output import one_line_error


@pytest.fixture
def migrated(database: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["migrate", "upgrade"]) == 0
    capsys.readouterr()
    return database


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(["keys", *argv, "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)


@pytest.mark.usefixtures("migrated")
class TestKeys:
    def test_an_empty_database_has_none_yet(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["keys", "list"]) == 0

        assert capsys.readouterr().out == (
            "no signing keys yet: the server creates one when it starts\n"
        )
        assert run_json(capsys, "list") == []

    def test_the_three_steps_of_a_rotation(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["keys", "rotate"]) == 0
        first_out = capsys.readouterr().out
        [first] = run_json(capsys, "list")
        assert first_out == f"{first['kid']} (ES256) created; it signs from now on\n"

        assert main(["keys", "rotate"]) == 0
        rotate_out = capsys.readouterr().out
        [_, second] = run_json(capsys, "list")
        assert second["state"] == "next"
        assert rotate_out.startswith(
            f"{second['kid']} (ES256) created and published; it signs from "
        )
        assert f"or from `gql-app keys activate {second['kid']}`" in rotate_out

        assert main(["keys", "activate", second["kid"]]) == 0
        assert capsys.readouterr().out == (
            f"{second['kid']} (ES256) signs from now on; the key before it verifies until "
            "retired (every worker within 30 s)\n"
        )
        [_, activated] = run_json(capsys, "list")
        assert activated["state"] == "current"
        assert [key["state"] for key in run_json(capsys, "list")] == ["previous", "current"]

        assert main(["keys", "retire", first["kid"]]) == 1
        refusal = one_line_error(capsys)
        assert refusal.startswith(f"tokens signed by {first['kid']} may be unexpired until ")
        assert refusal.endswith("(--force to do so anyway)")

        assert main(["keys", "retire", first["kid"], "--force"]) == 0
        assert capsys.readouterr().out.startswith(f"{first['kid']} retired: no longer published")
        listed = run_json(capsys, "list")
        assert [(key["kid"], key["state"]) for key in listed] == [
            (first["kid"], "retired"),
            (second["kid"], "current"),
        ]
        assert listed[0]["retired_at"] is not None
        assert listed[0]["signed_until"] == activated["activates_at"]

    def test_the_table_shows_each_key_on_a_line(self, capsys: pytest.CaptureFixture[str]) -> None:
        for _ in range(2):
            assert main(["keys", "rotate"]) == 0
        capsys.readouterr()

        assert main(["keys", "list"]) == 0

        header, current, pending = capsys.readouterr().out.splitlines()
        assert header.split() == [
            "KID",
            "ALGORITHM",
            "STATE",
            "SIGNS",
            "FROM",
            "SIGNED",
            "UNTIL",
            "RETIRED",
        ]
        assert current.split()[1:3] == ["ES256", "current"]
        assert pending.split()[1:3] == ["ES256", "next"]

    def test_the_algorithm_comes_from_the_settings(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("JWT_ALGORITHM", "EdDSA")
        get_settings.cache_clear()

        assert run_json(capsys, "rotate")["algorithm"] == "EdDSA"

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["retire", "nope"], "no signing key 'nope' (gql-app keys list shows them)"),
            (["activate", "nope"], "no signing key 'nope' (gql-app keys list shows them)"),
        ],
    )
    def test_an_unknown_key_is_an_error(
        self, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
    ) -> None:
        assert main(["keys", *argv]) == 1

        assert one_line_error(capsys) == message

    def test_the_signing_key_cannot_be_retired(self, capsys: pytest.CaptureFixture[str]) -> None:
        kid = run_json(capsys, "rotate")["kid"]

        assert main(["keys", "retire", kid, "--force"]) == 1

        assert one_line_error(capsys) == (
            f"signing key {kid} signs new tokens: rotate and activate another key first"
        )


def test_a_key_is_required_to_activate(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["keys", "activate"])

    assert caught.value.code == 2
    assert "KID" in capsys.readouterr().err


def test_an_unmigrated_database_is_one_line(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "list"]) == 1

    assert "no such table: signing_keys" in one_line_error(capsys)
