"""`gql-app seed FILE`: migrate, then create the accounts a JSON or YAML file lists, leaving
those whose email is taken as they are; running it twice changes nothing."""

import argparse
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gql_app.cli.arguments import Commands
from gql_app.cli.database import run_on_database
from gql_app.cli.errors import USAGE, CliError
from gql_app.cli.seed_file import KNOWN, read_seed_file
from gql_app.config import get_settings
from gql_app.db import create_session_factory
from gql_app.errors import InputValidationError
from gql_app.migrations import upgrade_to_head
from gql_app.services import seeding
from gql_app.services.seeding import SeedAccount, SeededAccount


async def _seed(
    engine: AsyncEngine, *, path: Path, accounts: Sequence[SeedAccount]
) -> list[SeededAccount]:
    try:
        # Before migrating: a refused file leaves the database as it was.
        await seeding.check_accounts(accounts)
    except InputValidationError as error:
        raise CliError(f"{path}: {error.message}", exit_code=USAGE) from None
    await upgrade_to_head(engine)
    async with create_session_factory(engine)() as session:
        return await seeding.seed_accounts(session=session, accounts=accounts)


def _report(seeded: SeededAccount) -> str:
    if seeded.created:
        return f"created {seeded.user.email}"
    return f"exists {seeded.user.email}, left as it is"


def _seed_command(args: argparse.Namespace) -> int:
    path: Path = args.file
    accounts = read_seed_file(path)
    outcomes = run_on_database(get_settings(), partial(_seed, path=path, accounts=accounts))
    for seeded in outcomes:
        print(_report(seeded))
    if not outcomes:
        print(f"{path} lists no accounts")
    return 0


def add_seed_command(commands: Commands) -> None:
    seed = commands.add_parser(
        "seed",
        help="migrate, then create the accounts a JSON or YAML file lists",
        description="Migrate the database, then create each account FILE lists, with the "
        "checks register applies (email, name, password policy). An account whose email "
        "exists is left as it is, so running twice changes nothing. FILE is a list of "
        f"accounts (or {{accounts: [...]}}) with the fields {', '.join(KNOWN)}; email and "
        "password are required. A bad file changes nothing (exit 2) and names the first bad "
        "account, counted from 1.",
    )
    seed.add_argument("file", type=Path, metavar="FILE", help="a .json, .yaml or .yml file")
    seed.set_defaults(handler=_seed_command)
