"""The gql-app command: serve the API, migrate its database, create the first superuser,
seed accounts from a file, export the GraphQL schema, manage the token signing keys and
purge old security events."""

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from gql_app.cli.create_superuser import add_create_superuser_command
from gql_app.cli.errors import FAILED, INTERRUPTED, USAGE, CliError, configuration_problem
from gql_app.cli.events import add_events_command
from gql_app.cli.export_schema import add_export_schema_command
from gql_app.cli.keys import add_keys_command
from gql_app.cli.migrate import add_migrate_command
from gql_app.cli.seed import add_seed_command
from gql_app.cli.serve import add_serve_command
from gql_app.errors import DomainError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gql-app",
        description=__doc__,
        epilog="Settings come from environment variables and ./.env (DATABASE_URL, "
        "SECRET_KEY, ...). Exit status: 0 done, 1 the operation failed, 2 bad usage or "
        "configuration, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_serve_command(commands)
    add_migrate_command(commands)
    add_create_superuser_command(commands)
    add_seed_command(commands)
    add_export_schema_command(commands)
    add_keys_command(commands)
    add_events_command(commands)
    return parser


def _fail(message: str, exit_code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except CliError as error:
        return _fail(error.message, error.exit_code)
    except DomainError as error:
        return _fail(error.message, FAILED)
    except ValidationError as error:
        return _fail(f"invalid configuration: {configuration_problem(error)}", USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    return result
