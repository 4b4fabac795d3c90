from pathlib import Path

import pytest

from gql_app.cli import main
from tests.cli.output import one_line_error


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
