import os
import subprocess
import sys
from pathlib import Path

import pytest

from gql_app.cli import main
from tests.cli.conftest import SECRET
from tests.cli.output import one_line_error
from tests.factories import STRONG_PASSWORD

# Connection refused at once: nothing listens on port 1.
UNREACHABLE_URL = "postgresql+asyncpg://postgres:url-secret@127.0.0.1:1/x?password=query-secret"


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


@pytest.mark.slow
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
