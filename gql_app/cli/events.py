"""`gql-app events purge`: delete the security events older than
SECURITY_EVENT_RETENTION_DAYS, in batches (run it daily, from cron or a scheduler)."""

import argparse

from sqlalchemy.ext.asyncio import AsyncEngine

from gql_app.cli.arguments import Commands
from gql_app.cli.database import run_on_database
from gql_app.config import Settings, get_settings
from gql_app.db import create_session_factory
from gql_app.services import security_events as security_events_service


async def _purge(engine: AsyncEngine, *, settings: Settings) -> int:
    async with create_session_factory(engine)() as session:
        return await security_events_service.purge_security_events(
            session=session, settings=settings
        )


def _run_purge(args: argparse.Namespace) -> int:
    settings = get_settings()
    removed = run_on_database(settings, lambda engine: _purge(engine, settings=settings))
    print(
        f"deleted {removed} security events older than "
        f"{settings.security_event_retention_days} days"
    )
    return 0


def add_events_command(commands: Commands) -> None:
    events = commands.add_parser(
        "events",
        help="delete security events past their retention",
        description="Security events are kept SECURITY_EVENT_RETENTION_DAYS (90) days.",
    )
    actions = events.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    purge = actions.add_parser(
        "purge",
        help="delete the events older than SECURITY_EVENT_RETENTION_DAYS",
        description="Deletes in batches of 1000, a transaction each, so a large backlog "
        "holds no long lock. Safe to run while the server runs, and again at any time.",
    )
    purge.set_defaults(handler=_run_purge)
