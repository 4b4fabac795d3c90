"""gql_app.testing as a suite meets it: pytester runs small suites that turn the plugin on,
or do not, each with a real server of its own."""

import importlib
import importlib.metadata
from pathlib import Path

import pytest

import gql_app.pytest_entry

pytestmark = pytest.mark.slow

SUITE = Path(__file__).with_name("suite_against_the_server.py")

# As strict as the project's own configuration: warnings fail, markers must be declared.
STRICT = """
[pytest]
addopts = -p no:randomly -p no:cacheprovider --strict-markers --strict-config
filterwarnings = error
asyncio_default_fixture_loop_scope = function
"""

NEEDS_NOTHING = """
import pytest

def test_settings_fixture(request):
    assert request.getfixturevalue("gql_app_settings") == {}
"""


class TestTurningItOn:
    def test_the_entry_point_is_the_inert_shim(self) -> None:
        [entry_point] = importlib.metadata.entry_points(group="pytest11", name="gql_app")

        assert entry_point.value == "gql_app.pytest_entry"
        # pytest imported it before coverage started measuring: run it again, measured.
        shim = importlib.reload(entry_point.load())
        assert shim is gql_app.pytest_entry
        assert (shim.INI_OPTION, shim.PLUGIN) == ("gql_app", "gql_app.testing")

    def test_a_suite_that_does_not_ask_gets_nothing(self, pytester: pytest.Pytester) -> None:
        pytester.makeini(STRICT)
        pytester.makepyfile(
            """
            import sys
            import pytest

            def test_no_plugin(request):
                # The entry point's shim, and not one other module of gql-app.
                loaded = {name for name in sys.modules if name.startswith("gql_app.")}
                assert loaded == {"gql_app.pytest_entry"}
                for fixture in ("gql_app_server", "create_user", "mail_outbox", "gql_client"):
                    with pytest.raises(pytest.FixtureLookupError):
                        request.getfixturevalue(fixture)
            """
        )

        # A process of its own, so that nothing this run imported is there.
        result = pytester.runpytest_subprocess()

        result.assert_outcomes(passed=1)

    @pytest.mark.parametrize("enabled", ["false", "true"])
    def test_the_ini_option(self, pytester: pytest.Pytester, enabled: str) -> None:
        pytester.makeini(f"{STRICT}gql_app = {enabled}\n")
        pytester.makepyfile(NEEDS_NOTHING)

        result = pytester.runpytest()

        if enabled == "true":
            result.assert_outcomes(passed=1)
        else:
            result.assert_outcomes(failed=1)
            result.stdout.fnmatch_lines(["*fixture 'gql_app_settings' not found*"])

    @pytest.mark.parametrize("how", ["-p", "pytest_plugins"])
    def test_a_suite_turns_it_on_by_asking(self, pytester: pytest.Pytester, how: str) -> None:
        pytester.makeini(STRICT)
        pytester.makepyfile(NEEDS_NOTHING)
        if how == "pytest_plugins":
            pytester.makeconftest('pytest_plugins = ["gql_app.testing"]')

        result = pytester.runpytest(*(["-p", "gql_app.testing"] if how == "-p" else []))

        result.assert_outcomes(passed=1)

    def test_help_names_the_option(self, pytester: pytest.Pytester) -> None:
        pytester.makeini(STRICT)

        result = pytester.runpytest("--help")

        result.stdout.fnmatch_lines(["*gql_app (bool):*turn on gql-app's fixtures*"])


class TestDatabase:
    @pytest.mark.parametrize(
        ("configured", "used"),
        [
            (
                "postgresql://app@db.example:5432/gql",
                "postgresql+asyncpg://app@db.example:5432/gql",
            ),
            ("postgresql+asyncpg://app:pw@db/gql", "postgresql+asyncpg://app:pw@db/gql"),
        ],
    )
    def test_gql_app_test_database_url_is_used_with_the_async_driver(
        self,
        pytester: pytest.Pytester,
        monkeypatch: pytest.MonkeyPatch,
        configured: str,
        used: str,
    ) -> None:
        monkeypatch.setenv("GQL_APP_TEST_DATABASE_URL", configured)
        pytester.makeini(STRICT)
        pytester.makepyfile(
            f"""
            def test_url(gql_app_database_url):
                assert gql_app_database_url == {used!r}
            """
        )

        pytester.runpytest("-p", "gql_app.testing").assert_outcomes(passed=1)


class TestAgainstTheServer:
    def test_a_suite_of_another_team_passes(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Nothing of this run's environment may reach the server: it would fail the suite.
        monkeypatch.setenv("REQUIRE_VERIFIED_EMAIL", "true")
        monkeypatch.setenv("ACCESS_TOKEN_EXPIRE_SECONDS", "7")
        monkeypatch.delenv("GQL_APP_TEST_DATABASE_URL", raising=False)
        pytester.makeini(STRICT)
        pytester.makeconftest(
            """
            import pytest

            @pytest.fixture(scope="session")
            def gql_app_settings():
                return {
                    "ACCESS_TOKEN_EXPIRE_SECONDS": "120",
                    "FRONTEND_BASE_URL": "https://app.example",
                }
            """
        )
        pytester.makepyfile(test_suite=SUITE.read_text())

        result = pytester.runpytest("-p", "gql_app.testing")

        result.assert_outcomes(passed=11)

    def test_a_server_that_cannot_start_is_reported_with_its_log(
        self, pytester: pytest.Pytester
    ) -> None:
        pytester.makeini(STRICT)
        pytester.makeconftest(
            """
            import pytest

            @pytest.fixture(scope="session")
            def gql_app_settings():
                return {"DATABASE_URL": "sqlite:///./not-async.db"}
            """
        )
        pytester.makepyfile(
            """
            def test_needs_the_server(gql_client):
                pass
            """
        )

        result = pytester.runpytest("-p", "gql_app.testing")

        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*gql-app exited with status 2 before it answered; its log*",
                "*error: DATABASE_URL sqlite:///./not-async.db: driver 'sqlite' is not async*",
            ]
        )
