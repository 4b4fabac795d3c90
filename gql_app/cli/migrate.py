"""`gql-app migrate upgrade | downgrade | current`: Alembic on DATABASE_URL, reporting the
revisions before and after in words."""

import argparse
from collections.abc import Callable, Sequence
from functools import partial

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from gql_app.cli.arguments import Commands
from gql_app.cli.database import run_on_database
from gql_app.config import get_settings
from gql_app.migrations import MIGRATION_LOCK_ID, alembic_config


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
    print(run_on_database(get_settings(), partial(_change_schema, change=change)))
    return 0


def _migrate_current(_: argparse.Namespace) -> int:
    print(run_on_database(get_settings(), _current))
    return 0


def add_migrate_command(commands: Commands) -> None:
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
