from pathlib import Path
from typing import Any

import pytest
import uvicorn

from gql_app.cli import main
from tests.cli.output import one_line_error


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
                # The app's own request log replaces uvicorn's access line.
                "access_log": False,
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
