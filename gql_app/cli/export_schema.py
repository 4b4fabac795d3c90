"""`gql-app export-schema`: write the GraphQL schema (SDL) to a file, or check that file."""

import argparse
from pathlib import Path

from gql_app.cli.arguments import Commands
from gql_app.cli.errors import CliError

SCHEMA_FILE = Path("schema.graphql")


def _schema_sdl() -> bytes:
    from strawberry.printer import print_schema  # noqa: PLC0415 - only this command

    from gql_app.api.schema import schema  # noqa: PLC0415 - builds the whole API

    # Byte for byte what `strawberry export-schema --output` writes.
    return (print_schema(schema) + "\n").encode("utf-8")


def _check_schema(path: Path, sdl: bytes) -> None:
    try:
        published = path.read_bytes()
    except FileNotFoundError:
        raise CliError(
            f"{path} does not exist; write it with `gql-app export-schema --output {path}`"
        ) from None
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    if published != sdl:
        raise CliError(
            f"{path} differs from the schema in the code; "
            f"regenerate it with `gql-app export-schema --output {path}`"
        )


def _export_schema(args: argparse.Namespace) -> int:
    path: Path = args.output
    sdl = _schema_sdl()
    if args.check:
        _check_schema(path, sdl)
        print(f"{path} matches the code")
        return 0
    try:
        path.write_bytes(sdl)
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}") from None
    print(f"Schema exported to {path}")
    return 0


def add_export_schema_command(commands: Commands) -> None:
    export = commands.add_parser(
        "export-schema",
        help="write the GraphQL schema (SDL) to a file, or check that file",
        description="Write the SDL of gql_app.api.schema:schema to a file, or with --check "
        "exit 1 when the file differs from the code.",
    )
    export.add_argument(
        "--output",
        "-o",
        type=Path,
        default=SCHEMA_FILE,
        metavar="PATH",
        help="the schema file (default: %(default)s)",
    )
    export.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if PATH is missing or differs from the code",
    )
    export.set_defaults(handler=_export_schema)
