import getpass
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gql_app.cli import main
from gql_app.config import get_settings
from gql_app.security.passwords import password_hash
from tests.factories import STRONG_PASSWORD

SECRET = "cli-test-secret-key-that-is-long-enough-0123456789"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throwaway SQLite file and an environment that points the CLI at it."""
    path = tmp_path / "cli.db"
    for name in ("ENVIRONMENT", "FIRST_SUPERUSER_EMAIL", "SECRET_KEY_FILE", "GRAPHIQL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", STRONG_PASSWORD)
    # Keeps the project's own .env and secret file out of reach.
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def users_in(path: Path) -> list[tuple[str, int, int, str]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if "users" not in tables:
            return []
        rows = connection.execute(
            "SELECT email, is_superuser, is_verified, password_hash FROM users"
        ).fetchall()
    connection.close()
    return rows


class TestCreateSuperuser:
    def test_creates_the_superuser_and_prints_its_email(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["create-superuser", "--email", "Root@Example.com"])

        out, err = capsys.readouterr()
        assert exit_code == 0
        assert out == "root@example.com is a superuser\n"
        assert err == ""
        [(email, is_superuser, is_verified, stored_hash)] = users_in(database)
        assert (email, is_superuser, is_verified) == ("root@example.com", 1, 1)
        assert password_hash.verify(STRONG_PASSWORD, stored_hash) is True

    def test_running_twice_is_idempotent(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["create-superuser", "--email", "root@example.com"]) == 0
        first_rows = users_in(database)
        capsys.readouterr()

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        out, _ = capsys.readouterr()
        assert exit_code == 0
        assert out == "root@example.com is a superuser\n"
        assert users_in(database) == first_rows

    def test_email_defaults_to_first_superuser_email(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("FIRST_SUPERUSER_EMAIL", "from-env@example.com")

        exit_code = main(["create-superuser"])

        assert exit_code == 0
        assert capsys.readouterr().out == "from-env@example.com is a superuser\n"

    def test_prompts_for_the_password_when_the_variable_is_unset(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.delenv("FIRST_SUPERUSER_PASSWORD")
        prompts: list[str] = []

        def typed_at_terminal(prompt: str = "Password: ") -> str:
            prompts.append(prompt)
            return STRONG_PASSWORD

        monkeypatch.setattr(getpass, "getpass", typed_at_terminal)

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        assert exit_code == 0
        assert prompts == ["Password: "]
        assert password_hash.verify(STRONG_PASSWORD, users_in(database)[0][3]) is True

    def test_says_so_when_the_email_belongs_to_an_ordinary_account(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["create-superuser", "--email", "root@example.com"]) == 0
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE users SET is_superuser = 0")
        connection.close()
        capsys.readouterr()

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        assert exit_code == 0
        assert capsys.readouterr().out == "root@example.com exists but is NOT a superuser\n"
        assert users_in(database)[0][1] == 0

    def test_weak_password_fails_with_a_one_line_error(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", "password1234")

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        out, err = capsys.readouterr()
        assert exit_code == 1
        assert out == ""
        assert err == "error: Password is too common or too easy to guess\n"
        assert users_in(database) == []

    def test_invalid_email_fails_with_a_one_line_error(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["create-superuser", "--email", "not-an-email"])

        err = capsys.readouterr().err
        assert exit_code == 1
        assert err.startswith("error: Invalid email address")
        assert err.count("\n") == 1
        assert users_in(database) == []

    def test_missing_email_is_a_usage_error(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["create-superuser"])

        assert exit_code == 2
        assert capsys.readouterr().err == "error: give --email or set FIRST_SUPERUSER_EMAIL\n"
        assert users_in(database) == []

    def test_invalid_configuration_is_reported_without_a_traceback(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")
        monkeypatch.delenv("SECRET_KEY")

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        err = capsys.readouterr().err
        assert exit_code == 2
        assert err.startswith("error: invalid configuration:")
        assert "SECRET_KEY must be set when ENVIRONMENT=production" in err
        assert err.count("\n") == 1
        assert "Traceback" not in err
        assert users_in(database) == []


class TestArguments:
    def test_a_command_is_required(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as caught:
            main([])

        assert caught.value.code == 2
        assert "required" in capsys.readouterr().err

    def test_unknown_command_is_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as caught:
            main(["destroy-everything"])

        assert caught.value.code == 2
        assert "invalid choice" in capsys.readouterr().err
