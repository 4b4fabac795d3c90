import sys
from pathlib import Path
from typing import Any

import pytest

from gql_app.cli import main
from tests.cli.output import one_line_error


class TestExportSchema:
    @pytest.fixture
    def strawberry_sdl(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> bytes:
        """What `strawberry export-schema gql_app.api.schema:schema --output ...` writes."""
        # Imported here: Strawberry's CLI takes a second to import, in every test worker
        # that collects this module, and only this fixture uses it.
        from strawberry.cli.commands.export_schema import (  # noqa: PLC0415
            export_schema as strawberry_export_schema,
        )

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
