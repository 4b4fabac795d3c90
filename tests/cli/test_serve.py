from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from uvicorn import Config

from gql_app import server
from gql_app.cli import main
from gql_app.config import Settings
from tests.cli.output import one_line_error


@pytest.fixture
def served(database: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        server, "serve", lambda settings, **options: calls.append(options | {"s": settings})
    )
    return calls


class TestServe:
    def test_defaults(self, served: list[dict[str, Any]]) -> None:
        assert main(["serve"]) == 0

        assert [{k: v for k, v in call.items() if k != "s"} for call in served] == [
            {"host": "127.0.0.1", "port": 8000, "workers": 1, "reload": False}
        ]
        assert isinstance(served[0]["s"], Settings)

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


class TestBanner:
    """What `gql-app serve` (and so `make run`) prints before the server starts."""

    @pytest.fixture
    def banner(
        self, served: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
    ) -> Callable[..., str]:
        def run(*argv: str) -> str:
            assert main(["serve", *argv]) == 0
            assert len(served) == 1
            return capsys.readouterr().out

        return run

    def test_says_where_to_go_what_is_on_and_how_to_stop(
        self, banner: Callable[..., str], database: Path
    ) -> None:
        assert banner() == (
            "gql-app (development) starting on http://127.0.0.1:8000\n"
            "  GraphiQL     http://127.0.0.1:8000/graphql\n"
            f"  Database     sqlite+aiosqlite:///{database}\n"
            "  Email        printed in this terminal (EMAIL_BACKEND=console); "
            "also listed at http://127.0.0.1:8000/dev/mail\n"
            '  Rate limits  on (see README, "Rate limits")\n'
            "  Stop         Ctrl+C\n"
            "\n"
        )

    def test_never_shows_the_database_password(
        self, banner: Callable[..., str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(
            "DATABASE_URL",
            "postgresql+asyncpg://app:s3cret-pw@db.example:5432/gql_app?password=other-pw",
        )

        output = banner()

        assert "  Database     postgresql+asyncpg://app:***@db.example:5432/gql_app\n" in output
        assert "s3cret-pw" not in output
        assert "other-pw" not in output

    @pytest.mark.usefixtures("database")
    def test_says_so_when_rate_limits_are_off(
        self, banner: Callable[..., str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")

        assert '  Rate limits  off (see README, "Rate limits")\n' in banner()

    @pytest.mark.usefixtures("database")
    def test_without_graphiql_it_names_the_endpoint(
        self, banner: Callable[..., str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("GRAPHIQL", "false")

        output = banner()

        assert "  GraphQL      POST http://127.0.0.1:8000/graphql (GraphiQL off)\n" in output
        assert "GraphiQL  " not in output

    @pytest.mark.usefixtures("database")
    @pytest.mark.parametrize(
        ("variables", "line"),
        [
            (
                {"EMAIL_BACKEND": "smtp", "SMTP_HOST": "mail.example", "SMTP_PORT": "2525"},
                "  Email        sent through mail.example:2525 (SMTP)\n",
            ),
            (
                {"EMAIL_BACKEND": "memory"},
                "  Email        kept in memory, never delivered (EMAIL_BACKEND=memory)\n",
            ),
            (
                {"ENVIRONMENT": "test"},
                "  Email        printed in this terminal (EMAIL_BACKEND=console)\n",
            ),
        ],
    )
    def test_says_where_mail_goes(
        self,
        banner: Callable[..., str],
        monkeypatch: pytest.MonkeyPatch,
        variables: dict[str, str],
        line: str,
    ) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

        output = banner()

        assert line in output
        assert "/dev/mail" not in output

    @pytest.mark.usefixtures("database")
    def test_with_several_workers_the_mail_page_is_each_workers_own(
        self, banner: Callable[..., str]
    ) -> None:
        assert (
            "also listed at http://127.0.0.1:8000/dev/mail (by the worker that answers)\n"
            in banner("--workers", "2")
        )

    @pytest.mark.usefixtures("database")
    @pytest.mark.parametrize(
        ("host", "port", "url"),
        [
            ("0.0.0.0", "8000", "http://127.0.0.1:8000"),  # noqa: S104
            ("::", "9000", "http://[::1]:9000"),
            ("::1", "9000", "http://[::1]:9000"),
            ("[::1]", "9000", "http://[::1]:9000"),
            ("localhost", "8080", "http://localhost:8080"),
            ("192.0.2.10", "8000", "http://192.0.2.10:8000"),
        ],
    )
    def test_urls_are_the_ones_a_browser_here_opens(
        self, banner: Callable[..., str], host: str, port: str, url: str
    ) -> None:
        output = banner("--host", host, "--port", port)

        assert f"starting on {url}\n" in output
        assert f"  GraphiQL     {url}/graphql\n" in output

    @pytest.mark.usefixtures("database")
    def test_a_port_the_system_picks_is_not_guessed(self, banner: Callable[..., str]) -> None:
        output = banner("--port", "0")

        assert "starting on 127.0.0.1, on a port the system picks" in output
        assert "  GraphiQL     http://127.0.0.1:<port>/graphql\n" in output

    @pytest.mark.usefixtures("database")
    def test_production_prints_nothing_beside_its_logs(
        self, banner: Callable[..., str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ENVIRONMENT", "production")
        monkeypatch.setenv("PASSWORD_HASHING_COST", "standard")

        assert banner() == ""


class TestTheServer:
    """What `gql-app serve` starts: uvicorn with the guarded protocol, under a supervisor."""

    @pytest.fixture
    def started(self, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Config]]:
        runs: list[tuple[str, Config]] = []

        class Recording:
            def __init__(self, config: Config, **_: object) -> None:
                self.config = config

            def run(self) -> None:
                runs.append((type(self).__name__, self.config))

        monkeypatch.setattr(server, "Multiprocess", type("Multiprocess", (Recording,), {}))
        monkeypatch.setattr(server, "ChangeReload", type("ChangeReload", (Recording,), {}))
        monkeypatch.setattr(Config, "bind_socket", lambda self: None)
        return runs

    def test_one_worker_too_runs_under_the_supervisor(
        self, started: list[tuple[str, Config]], settings: Settings
    ) -> None:
        server.serve(settings, host="127.0.0.1", port=8000)

        ((supervisor, config),) = started
        assert supervisor == "Multiprocess"
        assert (config.app, config.factory, config.workers) == (server.APPLICATION, True, 1)
        assert config.http == server.PROTOCOL
        assert config.timeout_keep_alive == settings.server_keep_alive_seconds
        assert config.access_log is False

    def test_reload_runs_under_the_reloader(
        self, started: list[tuple[str, Config]], settings: Settings
    ) -> None:
        server.serve(settings, host="127.0.0.1", port=8000, reload=True)

        assert [supervisor for supervisor, _ in started] == ["ChangeReload"]


def test_the_module_entry_serves_another_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        server, "serve", lambda settings, **options: calls.append(options | {"s": settings})
    )
    from gql_app.server import __main__ as entry  # noqa: PLC0415 - the module under test

    monkeypatch.setattr(entry, "serve", server.serve)

    entry.main(["bench.baseline:create_bench_app", "--port", "9100", "--workers", "2"])

    assert [{k: v for k, v in call.items() if k != "s"} for call in calls] == [
        {
            "host": "127.0.0.1",
            "port": 9100,
            "workers": 2,
            "app_factory": "bench.baseline:create_bench_app",
        }
    ]
