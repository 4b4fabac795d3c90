import getpass
import os
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from strawberry.cli.commands.export_schema import export_schema as strawberry_export_schema

from gql_app.cli import main
from gql_app.config import get_settings
from gql_app.security.passwords import password_hash
from tests.e2e.postgres import database_name, drop_database, postgres_server, recreate_database
from tests.factories import STRONG_PASSWORD

SECRET = "cli-test-secret-key-that-is-long-enough-0123456789"
HEAD = "4a0c9ba359ac (head)"
APP_TABLES = {"users", "auth_sessions", "refresh_tokens", "action_tokens"}
# Connection refused at once: nothing listens on port 1.
UNREACHABLE_URL = "postgresql+asyncpg://postgres:url-secret@127.0.0.1:1/x?password=query-secret"


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings from this test's variables only, in an empty working directory."""
    for name in ("ENVIRONMENT", "FIRST_SUPERUSER_EMAIL", "SECRET_KEY_FILE", "GRAPHIQL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("FIRST_SUPERUSER_PASSWORD", STRONG_PASSWORD)
    # Keeps the project's own .env and secret file out of reach.
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def database(environment: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway SQLite file that the CLI is pointed at; created by the first command."""
    path = environment / "cli.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return path


def query(path: Path, sql: str) -> list[Any]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as connection:
        rows = connection.execute(sql).fetchall()
    connection.close()
    return rows


def tables_in(path: Path) -> set[str]:
    return {row[0] for row in query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def users_in(path: Path) -> list[tuple[str, int, int, str]]:
    if "users" not in tables_in(path):
        return []
    return query(path, "SELECT email, is_superuser, is_verified, password_hash FROM users")


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The whole of what a failed command wrote: nothing on stdout, one line on stderr."""
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1, err
    assert err.endswith("\n")
    assert "Traceback" not in err
    return err.removeprefix("error: ").removesuffix("\n")


class TestMigrate:
    def test_current_on_an_empty_database_is_base(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["migrate", "current"]) == 0

        assert capsys.readouterr().out == "base\n"
        assert tables_in(database) == set()

    def test_upgrade_goes_to_head_by_default(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["migrate", "upgrade"])

        out, err = capsys.readouterr()
        assert exit_code == 0
        assert out == f"migrated from base to {HEAD}\n"
        assert err == ""
        assert tables_in(database) == APP_TABLES | {"alembic_version"}

    def test_upgrade_again_changes_nothing(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["migrate", "upgrade"]) == 0
        capsys.readouterr()

        assert main(["migrate", "upgrade", "head"]) == 0

        assert capsys.readouterr().out == f"already at {HEAD}\n"

    def test_upgrade_to_a_relative_target(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["migrate", "upgrade", "+1"]) == 0

        assert capsys.readouterr().out == f"migrated from base to {HEAD}\n"

    def test_current_prints_the_revision_after_an_upgrade(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["migrate", "upgrade"]) == 0
        capsys.readouterr()

        assert main(["migrate", "current"]) == 0

        assert capsys.readouterr().out == f"{HEAD}\n"

    @pytest.mark.parametrize("target", ["base", "-1"])
    def test_downgrade_reverts_the_migrations(
        self, database: Path, capsys: pytest.CaptureFixture[str], target: str
    ) -> None:
        assert main(["migrate", "upgrade"]) == 0
        capsys.readouterr()

        exit_code = main(["migrate", "downgrade", target])

        assert exit_code == 0
        assert capsys.readouterr().out == f"migrated from {HEAD} to base\n"
        assert tables_in(database) == {"alembic_version"}
        assert main(["migrate", "current"]) == 0
        assert capsys.readouterr().out == "base\n"

    def test_downgrade_requires_a_target(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as caught:
            main(["migrate", "downgrade"])

        assert caught.value.code == 2
        assert "REVISION" in capsys.readouterr().err

    def test_an_action_is_required(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as caught:
            main(["migrate"])

        assert caught.value.code == 2
        assert "required" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["downgrade", "nope"], "migration failed: Can't locate revision identified by 'nope'"),
            (["downgrade", "-1"], "migration failed: Relative revision -1 didn't produce"),
            (["upgrade", "nope"], "migration failed: Can't locate revision identified by 'nope'"),
        ],
    )
    def test_an_impossible_target_is_a_one_line_error(
        self, database: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
    ) -> None:
        exit_code = main(["migrate", *argv])

        assert exit_code == 1
        assert one_line_error(capsys).startswith(message)

    def test_a_revision_this_code_does_not_know(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["migrate", "upgrade"]) == 0
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE alembic_version SET version_num = 'f00dcafe'")
        connection.close()
        capsys.readouterr()

        assert main(["migrate", "current"]) == 0
        assert capsys.readouterr().out == "f00dcafe (unknown to this version)\n"

        assert main(["migrate", "upgrade"]) == 1
        assert "Can't locate revision identified by 'f00dcafe'" in one_line_error(capsys)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_database(
    postgres_server_url: str, worker_id: str, environment: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    name = database_name("gql_app_test_cli", worker_id)
    url = recreate_database(postgres_server_url, name)
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    drop_database(postgres_server_url, name)


@pytest.mark.e2e
def test_migrate_and_create_superuser_on_postgresql(
    postgres_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "upgrade"]) == 0
    assert main(["migrate", "current"]) == 0
    assert main(["create-superuser", "--email", "root@example.com"]) == 0
    assert main(["migrate", "downgrade", "base"]) == 0

    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"migrated from base to {HEAD}",
        HEAD,
        "created superuser root@example.com",
        f"migrated from {HEAD} to base",
    ]
    assert err == ""


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
        assert password_hash.verify(STRONG_PASSWORD, stored_hash) is True
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
        assert password_hash.verify(STRONG_PASSWORD, users_in(database)[0][3]) is True
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
        assert message == "Password is too common or too easy to guess"
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


class TestConfigurationErrors:
    def test_a_model_level_problem(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")
        monkeypatch.delenv("SECRET_KEY")

        exit_code = main(["create-superuser", "--email", "root@example.com"])

        assert exit_code == 2
        assert one_line_error(capsys) == (
            "invalid configuration: Value error, SECRET_KEY must be set when ENVIRONMENT=production"
        )
        assert not database.exists()

    def test_names_the_variable_and_counts_the_other_problems(
        self, database: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("DATABASE_POOL_SIZE", "0")
        monkeypatch.setenv("SMTP_PORT", "0")

        exit_code = main(["migrate", "current"])

        assert exit_code == 2
        assert one_line_error(capsys) == (
            "invalid configuration: DATABASE_POOL_SIZE: "
            "Input should be greater than or equal to 1 (and 1 more)"
        )


class TestDatabaseErrors:
    """Every command that uses the database reports these in one line, passwords hidden."""

    COMMANDS = (
        ["migrate", "upgrade"],
        ["migrate", "downgrade", "base"],
        ["migrate", "current"],
        ["create-superuser", "--email", "root@example.com"],
    )

    @pytest.fixture(params=COMMANDS, ids=" ".join)
    def argv(self, request: pytest.FixtureRequest, environment: Path) -> list[str]:
        command: list[str] = request.param
        return command

    @pytest.mark.parametrize(
        "url",
        ["not a url", "postgresql+asyncpg://u:url-secret@db:not-a-port/x", ""],
    )
    def test_an_unparseable_url_is_not_echoed(
        self,
        argv: list[str],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        url: str,
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", url)

        exit_code = main(argv)

        assert exit_code == 2
        message = one_line_error(capsys)
        assert message.startswith("DATABASE_URL is not a valid database URL (e.g. ")
        assert "url-secret" not in message

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            (
                "nosuchdb://u:url-secret@db/x",
                "DATABASE_URL nosuchdb://u:***@db/x: unknown database driver 'nosuchdb'",
            ),
            (
                "postgresql+nosuchdriver://u:url-secret@db/x",
                "DATABASE_URL postgresql+nosuchdriver://u:***@db/x: "
                "unknown database driver 'postgresql+nosuchdriver'",
            ),
            (
                "postgresql://u:url-secret@db/x",
                "DATABASE_URL postgresql://u:***@db/x: driver 'postgresql' is not asynchronous; "
                "use sqlite+aiosqlite or postgresql+asyncpg",
            ),
        ],
    )
    def test_an_unusable_driver(
        self,
        argv: list[str],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        url: str,
        message: str,
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", url)

        exit_code = main(argv)

        assert exit_code == 2
        assert one_line_error(capsys) == message

    def test_an_async_driver_that_is_not_installed(
        self, argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg_async://u:url-secret@db/x")
        monkeypatch.setitem(sys.modules, "psycopg", None)  # makes the import fail

        exit_code = main(argv)

        assert exit_code == 2
        message = one_line_error(capsys)
        assert message.startswith(
            "DATABASE_URL postgresql+psycopg_async://u:***@db/x: "
            "driver 'postgresql+psycopg_async' is not installed (import of psycopg "
        )

    def test_an_unreachable_server(
        self, argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", UNREACHABLE_URL)

        exit_code = main(argv)

        assert exit_code == 1
        message = one_line_error(capsys)
        assert message.startswith(
            "cannot reach the database at postgresql+asyncpg://postgres:***@127.0.0.1:1/x: "
        )
        assert "Connect call failed" in message
        assert "secret" not in message
        assert STRONG_PASSWORD not in message

    def test_a_database_that_cannot_be_opened(
        self,
        argv: list[str],
        environment: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        url = f"sqlite+aiosqlite:///{environment / 'no-such-directory' / 'app.db'}"
        monkeypatch.setenv("DATABASE_URL", url)

        exit_code = main(argv)

        assert exit_code == 1
        assert one_line_error(capsys) == f"database error at {url}: unable to open database file"


def installed_command() -> Path:
    command = Path(sys.executable).with_name("gql-app")
    assert command.exists(), f"{command} is missing: install the package (make install-dev)"
    return command


@pytest.mark.parametrize(
    "argv", [["migrate", "upgrade"], ["create-superuser", "--email", "root@example.com"]]
)
def test_the_installed_command_reports_an_unreachable_database_in_one_line(
    tmp_path: Path, argv: list[str]
) -> None:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FIRST_SUPERUSER_", "SECRET_KEY", "ENVIRONMENT", "DATABASE_"))
    }
    environment |= {
        "DATABASE_URL": UNREACHABLE_URL,
        "SECRET_KEY": SECRET,
        "FIRST_SUPERUSER_PASSWORD": STRONG_PASSWORD,
    }

    finished = subprocess.run(  # noqa: S603 - our own command, fixed arguments
        [installed_command(), *argv],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 1
    assert finished.stdout == ""
    assert finished.stderr.startswith(
        "error: cannot reach the database at postgresql+asyncpg://postgres:***@127.0.0.1:1/x: "
    )
    assert finished.stderr.count("\n") == 1
    assert "Traceback" not in finished.stderr
    assert "secret" not in finished.stderr


class TestServe:
    @pytest.fixture
    def served(self, database: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []
        monkeypatch.setattr(
            uvicorn, "run", lambda app, **options: calls.append(options | {"app": app})
        )
        return calls

    def test_defaults(self, served: list[dict[str, Any]]) -> None:
        assert main(["serve"]) == 0

        assert served == [
            {
                "app": "gql_app.main:create_app",
                "factory": True,
                "host": "127.0.0.1",
                "port": 8000,
                "workers": 1,
                "reload": False,
            }
        ]

    def test_options(self, served: list[dict[str, Any]]) -> None:
        assert main(["serve", "--host", "0.0.0.0", "--port", "9000", "--workers", "4"]) == 0  # noqa: S104

        assert [(c["host"], c["port"], c["workers"], c["reload"]) for c in served] == [
            ("0.0.0.0", 9000, 4, False)  # noqa: S104
        ]

    def test_reload(self, served: list[dict[str, Any]]) -> None:
        assert main(["serve", "--reload"]) == 0

        assert served[0]["reload"] is True

    def test_reload_with_several_workers_is_refused(
        self, served: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["serve", "--reload", "--workers", "2"]) == 2

        assert one_line_error(capsys) == "--reload runs a single process; leave out --workers"
        assert served == []

    def test_a_bad_database_url_stops_it_before_the_server_starts(
        self,
        served: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", "nosuchdb://db/x")

        assert main(["serve"]) == 2

        assert one_line_error(capsys) == (
            "DATABASE_URL nosuchdb://db/x: unknown database driver 'nosuchdb'"
        )
        assert served == []

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--workers", "0"], "argument --workers: 0 is less than 1"),
            (["--port", "70000"], "argument --port: 70000 is not a port number (0-65535)"),
            (["--port", "http"], "argument --port: 'http' is not a whole number"),
        ],
    )
    def test_bad_numbers_are_usage_errors(
        self,
        served: list[dict[str, Any]],
        capsys: pytest.CaptureFixture[str],
        argv: list[str],
        message: str,
    ) -> None:
        with pytest.raises(SystemExit) as caught:
            main(["serve", *argv])

        assert caught.value.code == 2
        assert capsys.readouterr().err.endswith(f"error: {message}\n")
        assert served == []


class TestExportSchema:
    @pytest.fixture
    def strawberry_sdl(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> bytes:
        """What `strawberry export-schema gql_app.api.schema:schema --output ...` writes."""
        monkeypatch.setattr(sys, "path", list(sys.path))  # it prepends --app-dir
        path = tmp_path / "from-strawberry.graphql"
        strawberry_export_schema("gql_app.api.schema:schema", app_dir=".", output=path)
        capsys.readouterr()
        return path.read_bytes()

    def test_writes_schema_graphql_in_the_working_directory(
        self, environment: Path, strawberry_sdl: bytes, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["export-schema"])

        out, err = capsys.readouterr()
        assert exit_code == 0
        assert out == "Schema exported to schema.graphql\n"
        assert err == ""
        assert (environment / "schema.graphql").read_bytes() == strawberry_sdl

    @pytest.mark.parametrize("option", ["--output", "-o"])
    def test_writes_to_the_given_path(
        self,
        environment: Path,
        strawberry_sdl: bytes,
        capsys: pytest.CaptureFixture[str],
        option: str,
    ) -> None:
        path = environment / "api.graphql"

        assert main(["export-schema", option, str(path)]) == 0

        assert capsys.readouterr().out == f"Schema exported to {path}\n"
        assert path.read_bytes() == strawberry_sdl

    def test_check_passes_when_the_file_matches(
        self, environment: Path, strawberry_sdl: bytes, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (environment / "schema.graphql").write_bytes(strawberry_sdl)

        exit_code = main(["export-schema", "--check"])

        out, err = capsys.readouterr()
        assert exit_code == 0
        assert out == "schema.graphql matches the code\n"
        assert err == ""

    @pytest.mark.parametrize(
        "edit",
        [
            lambda sdl: sdl + b"\n",
            lambda sdl: sdl.rstrip(b"\n"),
            lambda sdl: sdl.replace(b"\n", b"\r\n"),
            lambda sdl: sdl.replace(b"email", b"mail", 1),
        ],
        ids=["extra newline", "no final newline", "crlf", "renamed field"],
    )
    def test_check_fails_on_any_difference_and_writes_nothing(
        self,
        environment: Path,
        strawberry_sdl: bytes,
        capsys: pytest.CaptureFixture[str],
        edit: Any,
    ) -> None:
        path = environment / "api.graphql"
        stale: bytes = edit(strawberry_sdl)
        path.write_bytes(stale)

        exit_code = main(["export-schema", "--check", "--output", str(path)])

        assert exit_code == 1
        assert one_line_error(capsys) == (
            f"{path} differs from the schema in the code; "
            f"regenerate it with `gql-app export-schema --output {path}`"
        )
        assert path.read_bytes() == stale

    def test_check_fails_when_the_file_is_missing(
        self, environment: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["export-schema", "--check"])

        assert exit_code == 1
        assert one_line_error(capsys) == (
            "schema.graphql does not exist; "
            "write it with `gql-app export-schema --output schema.graphql`"
        )
        assert not (environment / "schema.graphql").exists()

    def test_check_fails_when_the_file_cannot_be_read(
        self, environment: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        exit_code = main(["export-schema", "--check", "--output", str(environment)])

        assert exit_code == 1
        assert one_line_error(capsys) == f"cannot read {environment}: Is a directory"

    def test_a_path_that_cannot_be_written(
        self, environment: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = environment / "no-such-directory" / "schema.graphql"

        exit_code = main(["export-schema", "--output", str(path)])

        assert exit_code == 1
        assert one_line_error(capsys) == f"cannot write {path}: No such file or directory"


HELP: dict[tuple[str, ...], list[str]] = {
    (): ["serve", "migrate", "create-superuser", "export-schema", "Exit status"],
    ("serve",): ["--host", "--port", "--workers", "--reload", "default: 8000"],
    ("migrate",): ["upgrade", "downgrade", "current", "DATABASE_URL"],
    ("migrate", "upgrade"): ["REVISION", "default: head"],
    ("migrate", "downgrade"): ["REVISION", "base", "-N"],
    ("migrate", "current"): ["(head)", "base"],
    ("create-superuser",): ["--email", "FIRST_SUPERUSER_PASSWORD", "does not echo"],
    ("export-schema",): ["--output", "--check", "default: schema.graphql"],
}


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

    @pytest.mark.parametrize(
        ("argv", "mentions"), HELP.items(), ids=[" ".join(argv) or "gql-app" for argv in HELP]
    )
    def test_help(
        self, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], mentions: list[str]
    ) -> None:
        with pytest.raises(SystemExit) as caught:
            main([*argv, "--help"])

        assert caught.value.code == 0
        usage = " ".join(capsys.readouterr().out.split())
        assert usage.startswith(f"usage: {' '.join(['gql-app', *argv])}")
        for mention in mentions:
            assert mention in usage
