import pytest

from gql_app.cli import main

HELP: dict[tuple[str, ...], list[str]] = {
    (): ["serve", "migrate", "create-superuser", "seed", "export-schema", "Exit status"],
    ("serve",): ["--host", "--port", "--workers", "--reload", "default: 8000"],
    ("migrate",): ["upgrade", "downgrade", "current", "DATABASE_URL"],
    ("migrate", "upgrade"): ["REVISION", "default: head"],
    ("migrate", "downgrade"): ["REVISION", "base", "-N"],
    ("migrate", "current"): ["(head)", "base"],
    ("create-superuser",): ["--email", "FIRST_SUPERUSER_PASSWORD", "does not echo"],
    ("seed",): ["FILE", ".json, .yaml or .yml", "left as it is", "counted from 1"],
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
