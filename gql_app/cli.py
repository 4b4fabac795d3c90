"""The gql-app command: serve the API, migrate its database, create the first superuser
and export the GraphQL schema."""

import argparse
import asyncio
import getpass
import sys
import threading
import warnings
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeAlias, TypeVar

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy import URL, Connection, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from gql_app.config import Settings, get_settings
from gql_app.db import create_engine_for, create_session_factory
from gql_app.errors import DomainError, FieldError
from gql_app.migrations import MIGRATION_LOCK_ID, alembic_config, upgrade_to_head
from gql_app.models import User
from gql_app.services import users as users_service
from gql_app.services.validation import normalize_email

T = TypeVar("T")

PASSWORD_ENV = "FIRST_SUPERUSER_PASSWORD"  # noqa: S105 - a variable name
SCHEMA_FILE = Path("schema.graphql")
# Exit codes: the operation failed; the command line or the configuration is wrong.
FAILED = 1
USAGE = 2
INTERRUPTED = 130


class CliError(Exception):
    def __init__(self, message: str, *, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# --- the database URL and running work on the database ---------------------------------


def _shown(url: URL) -> str:
    # A driver may also take the password as a query parameter.
    secret_keys = [key for key in url.query if "password" in key.lower()]
    return url.difference_update_query(secret_keys).render_as_string(hide_password=True)


def _checked_url(settings: Settings) -> URL:
    """The parsed DATABASE_URL, refused early when the application could never use it."""
    try:
        url = make_url(settings.database_url)
    except (ArgumentError, ValueError):
        # Not echoed: an unparseable URL cannot be shown with its password hidden.
        raise CliError(
            "DATABASE_URL is not a valid database URL "
            "(e.g. sqlite+aiosqlite:///./gql_app.db or postgresql+asyncpg://user@host:5432/name)",
            exit_code=USAGE,
        ) from None
    try:
        dialect = url.get_dialect()
    except ArgumentError:
        raise CliError(
            f"DATABASE_URL {_shown(url)}: unknown database driver {url.drivername!r}",
            exit_code=USAGE,
        ) from None
    if not dialect.is_async:
        raise CliError(
            f"DATABASE_URL {_shown(url)}: driver {url.drivername!r} is not asynchronous; "
            "use sqlite+aiosqlite or postgresql+asyncpg",
            exit_code=USAGE,
        )
    try:
        dialect.import_dbapi()
    except ImportError as error:
        raise CliError(
            f"DATABASE_URL {_shown(url)}: driver {url.drivername!r} is not installed "
            f"({_one_line(error)})",
            exit_code=USAGE,
        ) from None
    return url


def _join_sqlite_workers(existing: set[threading.Thread]) -> None:
    # After a failed connect, aiosqlite's worker thread hands a result to the event loop
    # that asyncio.run may have closed by then, and dies with a traceback on stderr
    # (omnilib/aiosqlite#389). Waiting here, with the loop still open, avoids the race.
    workers = [
        thread
        for thread in threading.enumerate()
        if thread not in existing and thread.name.endswith("(_connection_worker_thread)")
    ]
    for thread in workers:
        thread.join(timeout=5)


async def _disposing(engine: AsyncEngine, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    existing = set(threading.enumerate())
    try:
        return await work(engine)
    finally:
        await engine.dispose()
        _join_sqlite_workers(existing)


def _on_database(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    url = _checked_url(settings)
    try:
        return asyncio.run(_disposing(create_engine_for(settings), work))
    except OSError as error:  # refused, unknown host, timed out
        raise CliError(f"cannot reach the database at {_shown(url)}: {_one_line(error)}") from None
    except DBAPIError as error:
        # The driver's own message: SQLAlchemy's wrapper adds the statement and a link.
        raise CliError(
            f"database error at {_shown(url)}: {_one_line(error.orig or error)}"
        ) from None
    except CommandError as error:
        raise CliError(f"migration failed: {_one_line(error)}") from None


# --- serve ------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    if args.reload and args.workers > 1:
        raise CliError("--reload runs a single process; leave out --workers", exit_code=USAGE)
    # Fail here in one line rather than in every worker with a traceback.
    _checked_url(get_settings())
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    uvicorn.run(
        "gql_app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        reload=args.reload,
    )
    return 0


# --- migrate ----------------------------------------------------------------------------


def _describe(heads: Sequence[str]) -> str:
    if not heads:
        return "base"
    script = ScriptDirectory.from_config(alembic_config())
    return ", ".join(_describe_revision(script, revision) for revision in heads)


def _describe_revision(script: ScriptDirectory, revision: str) -> str:
    try:
        return script.get_revision(revision).cmd_format(verbose=False)
    except CommandError:
        # The database was migrated by another (usually newer) version of the code.
        return f"{revision} (unknown to this version)"


def _heads(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


def _change_on(connection: Connection, change: Callable[[Config], None]) -> str:
    config = alembic_config()
    # env.py then runs on this connection, inside this transaction and its lock.
    config.attributes["connection"] = connection
    before = _heads(connection)
    change(config)
    after = _heads(connection)
    if after == before:
        return f"already at {_describe(after)}"
    return f"migrated from {_describe(before)} to {_describe(after)}"


async def _change_schema(engine: AsyncEngine, change: Callable[[Config], None]) -> str:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # The same lock as the application's migrations on start: never two at once.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": MIGRATION_LOCK_ID}
            )
        return await connection.run_sync(_change_on, change)


async def _current(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        heads = await connection.run_sync(_heads)
    return _describe(heads)


def _migrate(args: argparse.Namespace) -> int:
    change = partial(args.alembic_command, revision=args.revision)
    print(_on_database(get_settings(), partial(_change_schema, change=change)))
    return 0


def _migrate_current(_: argparse.Namespace) -> int:
    print(_on_database(get_settings(), _current))
    return 0


# --- create-superuser -------------------------------------------------------------------


def _prompt_password(email: str) -> str:
    try:
        with warnings.catch_warnings():
            # getpass falls back to an echoing read without a terminal: refuse instead.
            warnings.simplefilter("error", getpass.GetPassWarning)
            password = getpass.getpass(f"Password for {email}: ")
            repeated = getpass.getpass("Repeat the password: ")
    except (EOFError, getpass.GetPassWarning):
        raise CliError(
            f"cannot prompt for the password without a terminal; set {PASSWORD_ENV}"
        ) from None
    if password != repeated:
        raise CliError("the passwords do not match")
    return password


def _superuser_password(settings: Settings, *, email: str) -> str:
    configured = settings.first_superuser_password
    return configured.get_secret_value() if configured else _prompt_password(email)


def _refuse_ordinary_account(user: User) -> None:
    if not user.is_superuser:
        raise CliError(
            f"{user.email} belongs to an existing account that is not a superuser; nothing "
            "was changed (promote it with the updateUser mutation, or choose another email)"
        )


async def _ensure_superuser(engine: AsyncEngine, *, email: str, password: str) -> str:
    await upgrade_to_head(engine)
    async with create_session_factory(engine)() as session:
        ensured = await users_service.ensure_superuser(
            session=session, email=email, password=password
        )
    _refuse_ordinary_account(ensured.user)
    if not ensured.created:
        return f"{ensured.user.email} is already a superuser; its password was not changed"
    return f"created superuser {ensured.user.email}"


def _create_superuser(args: argparse.Namespace) -> int:
    settings = get_settings()
    email = args.email or settings.first_superuser_email
    if not email:
        raise CliError("give --email or set FIRST_SUPERUSER_EMAIL", exit_code=USAGE)
    normalized = normalize_email(email)
    if isinstance(normalized, FieldError):
        raise CliError(normalized.message, exit_code=USAGE)
    # Before the prompt: typing a password is wasted if the database cannot be used.
    _checked_url(settings)
    password = _superuser_password(settings, email=normalized)
    work = partial(_ensure_superuser, email=normalized, password=password)
    print(_on_database(settings, work))
    return 0


# --- export-schema ----------------------------------------------------------------------


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


# --- the command line -------------------------------------------------------------------

# Generic only to the type checker.
_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _whole_number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None


def _positive_int(raw: str) -> int:
    value = _whole_number(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _port(raw: str) -> int:
    value = _whole_number(raw)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _add_serve(commands: _Commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the API with uvicorn",
        description="Serve the GraphQL API (at /graphql) with uvicorn. Settings come from the "
        "environment and .env; the database is migrated on start unless MIGRATE_ON_START=false.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument(
        "--port", type=_port, default=8000, help="port to bind (default: %(default)s)"
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes (default: %(default)s)",
    )
    serve.add_argument(
        "--reload", action="store_true", help="restart on code changes (development; one process)"
    )
    serve.set_defaults(handler=_serve)


def _add_migrate(commands: _Commands) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="upgrade, downgrade or show the database schema revision",
        description="Run the Alembic migrations against DATABASE_URL. On PostgreSQL an "
        "upgrade or downgrade waits for any other migration (e.g. a starting server) to end.",
    )
    actions = migrate.add_subparsers(dest="migrate_command", metavar="ACTION", required=True)
    upgrade = actions.add_parser(
        "upgrade",
        help="apply migrations up to a revision (default: head)",
        description="Apply migrations up to REVISION and print the revision reached.",
    )
    upgrade.add_argument(
        "revision",
        nargs="?",
        default="head",
        metavar="REVISION",
        help="target revision: head, a revision id or +N (default: %(default)s)",
    )
    upgrade.set_defaults(handler=_migrate, alembic_command=command.upgrade)
    downgrade = actions.add_parser(
        "downgrade",
        help="revert migrations down to a revision",
        description="Revert migrations down to REVISION and print the revision reached. "
        "Reverting drops tables and their data.",
    )
    downgrade.add_argument(
        "revision",
        metavar="REVISION",
        help="target revision: base (empty), a revision id or -N (N steps back)",
    )
    downgrade.set_defaults(handler=_migrate, alembic_command=command.downgrade)
    current = actions.add_parser(
        "current",
        help="print the database's current revision",
        description="Print the database's revision(s), marked (head) when up to date, "
        "or base when no migration was applied.",
    )
    current.set_defaults(handler=_migrate_current)


def _add_create_superuser(commands: _Commands) -> None:
    superuser = commands.add_parser(
        "create-superuser",
        help="migrate, then create a superuser unless the email is taken",
        description="Migrate the database, then create a verified superuser. The password "
        f"comes from ${PASSWORD_ENV}, else from a prompt that does not echo. An existing "
        "superuser is left as it is (exit 0); an existing ordinary account with that email "
        "is an error (exit 1).",
    )
    superuser.add_argument(
        "--email", help="the superuser's email (default: $FIRST_SUPERUSER_EMAIL)"
    )
    superuser.set_defaults(handler=_create_superuser)


def _add_export_schema(commands: _Commands) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gql-app",
        description=__doc__,
        epilog="Settings come from environment variables and ./.env (DATABASE_URL, "
        "SECRET_KEY, ...). Exit status: 0 done, 1 the operation failed, 2 bad usage or "
        "configuration, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_serve(commands)
    _add_migrate(commands)
    _add_create_superuser(commands)
    _add_export_schema(commands)
    return parser


def _configuration_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    # Settings are read from environment variables named after the fields.
    variable = ".".join(str(part) for part in first["loc"]).upper()
    problem = f"{variable}: {first['msg']}" if variable else first["msg"]
    others = error.error_count() - 1
    return f"{problem} (and {others} more)" if others else problem


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
        return _fail(f"invalid configuration: {_configuration_problem(error)}", USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    return result


if __name__ == "__main__":
    sys.exit(main())
