import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gql_app.cli import main
from tests.cli.output import one_line_error
from tests.cli.sqlite_file import tables_in
from tests.e2e.postgres import database_name, drop_database, postgres_server, recreate_database

FIRST = "4a0c9ba359ac"
HEAD = "b3e9d41c7a85 (head)"
APP_TABLES = {
    "users",
    "auth_sessions",
    "refresh_tokens",
    "action_tokens",
    "signing_keys",
    "totp_factors",
    "recovery_codes",
    "mfa_challenges",
    "passkeys",
    "passkey_challenges",
    "security_events",
}


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
        assert capsys.readouterr().out == f"migrated from base to {FIRST}\n"

        assert main(["migrate", "upgrade", "+4"]) == 0
        assert capsys.readouterr().out == f"migrated from {FIRST} to {HEAD}\n"

    def test_current_prints_the_revision_after_an_upgrade(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert main(["migrate", "upgrade"]) == 0
        capsys.readouterr()

        assert main(["migrate", "current"]) == 0

        assert capsys.readouterr().out == f"{HEAD}\n"

    @pytest.mark.parametrize("target", ["base", "-5"])
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
