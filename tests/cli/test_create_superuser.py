import getpass
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest

from gql_app.cli import main
from gql_app.config import get_settings
from gql_app.security.passwords import password_hasher
from tests.cli.output import one_line_error
from tests.cli.sqlite_file import users_in
from tests.factories import STRONG_PASSWORD


class TestCreateSuperuser:
    def test_creates_the_superuser(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["create-superuser", "--email", "Root@Example.com"])

        out, err = capsys.readouterr()
        assert exit_code == 0
        assert out == "created superuser root@example.com\n"
        assert err == ""
        [(email, is_superuser, is_verified, stored_hash)] = users_in(database)
        assert (email, is_superuser, is_verified) == ("root@example.com", 1, 1)
        assert password_hasher().verify(STRONG_PASSWORD, stored_hash) is True
        assert STRONG_PASSWORD not in out

    def test_an_existing_superuser_is_left_as_it_is(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["create-superuser", "--email", "root@example.com"]) == 0
        first_rows = users_in(database)
        capsys.readouterr()
        monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", "another long passphrase 9182")
        get_settings.cache_clear()

        exit_code = main(["create-superuser", "--email", "ROOT@example.com"])

        out, err = capsys.readouterr()
        assert exit_code == 0
        assert out == "root@example.com is already a superuser; its password was not changed\n"
        assert err == ""
        assert users_in(database) == first_rows

    def test_an_ordinary_account_with_that_email_is_an_error(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["create-superuser", "--email", "root@example.com"]) == 0
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE users SET is_superuser = 0")
        connection.close()
        before = users_in(database)
        capsys.readouterr()

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        assert exit_code == 1
        assert one_line_error(capsys) == (
            "root@example.com belongs to an existing account that is not a superuser; nothing "
            "was changed (promote it with the updateUser mutation, or choose another email)"
        )
        assert users_in(database) == before

    def test_email_defaults_to_first_superuser_email(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("FIRST_SUPERUSER_EMAIL", "from-env@example.com")

        exit_code = main(["create-superuser"])

        assert exit_code == 0
        assert capsys.readouterr().out == "created superuser from-env@example.com\n"

    def test_prompts_twice_for_the_password_when_the_variable_is_unset(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.delenv("FIRST_SUPERUSER_PASSWORD")
        prompts: list[str] = []

        def typed_at_terminal(prompt: str = "Password: ", stream: object = None) -> str:
            prompts.append(prompt)
            return STRONG_PASSWORD

        monkeypatch.setattr(getpass, "getpass", typed_at_terminal)

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        out, err = capsys.readouterr()
        assert exit_code == 0
        assert prompts == ["Password for root@example.com: ", "Repeat the password: "]
        assert password_hasher().verify(STRONG_PASSWORD, users_in(database)[0][3]) is True
        assert STRONG_PASSWORD not in out + err

    def test_passwords_that_differ_are_refused(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.delenv("FIRST_SUPERUSER_PASSWORD")
        typed = iter([STRONG_PASSWORD, STRONG_PASSWORD + "x"])
        monkeypatch.setattr(getpass, "getpass", lambda prompt="", stream=None: next(typed))

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        assert exit_code == 1
        assert one_line_error(capsys) == "the passwords do not match"
        assert not database.exists()

    @staticmethod
    def _end_of_input(prompt: str = "", stream: object = None) -> str:
        raise EOFError

    @staticmethod
    def _no_terminal(prompt: str = "", stream: object = None) -> str:
        # What getpass does before it falls back to reading stdin with echo on.
        warnings.warn("Can not control echo on the terminal.", getpass.GetPassWarning, stacklevel=2)
        return STRONG_PASSWORD

    @pytest.mark.parametrize("prompt", [_end_of_input, _no_terminal])
    def test_without_a_terminal_it_asks_for_the_variable(
        self,
        database: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        prompt: Any,
    ) -> None:
        monkeypatch.delenv("FIRST_SUPERUSER_PASSWORD")
        monkeypatch.setattr(getpass, "getpass", prompt)

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        assert exit_code == 1
        assert one_line_error(capsys) == (
            "cannot prompt for the password without a terminal; set FIRST_SUPERUSER_PASSWORD"
        )
        assert not database.exists()

    def test_ctrl_c_at_the_prompt(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.delenv("FIRST_SUPERUSER_PASSWORD")

        def interrupted(prompt: str = "", stream: object = None) -> str:
            raise KeyboardInterrupt

        monkeypatch.setattr(getpass, "getpass", interrupted)

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        assert exit_code == 130
        assert one_line_error(capsys) == "interrupted"

    def test_weak_password_fails_with_a_one_line_error(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", "password1234")

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        assert exit_code == 1
        message = one_line_error(capsys)
        assert message.startswith("Password is too common or too easy to guess. ")
        assert "password1234" not in message
        assert users_in(database) == []

    def test_invalid_email_is_refused_before_the_database_is_touched(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["create-superuser", "--email", "not-an-email"])

        assert exit_code == 2
        assert one_line_error(capsys).startswith("Invalid email address")
        assert not database.exists()

    def test_missing_email_is_a_usage_error(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["create-superuser"])

        assert exit_code == 2
        assert one_line_error(capsys) == "give --email or set FIRST_SUPERUSER_EMAIL"
        assert not database.exists()

    def test_a_bad_url_is_reported_before_the_password_prompt(
        self, environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", "sqlite:///./sync.db")
        monkeypatch.delenv("FIRST_SUPERUSER_PASSWORD")
        prompts: list[str] = []
        monkeypatch.setattr(getpass, "getpass", lambda prompt="", stream=None: prompts.append(""))

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        assert exit_code == 2
        assert "is not asynchronous" in one_line_error(capsys)
        assert prompts == []
