"""`gql-app serve`: the API under uvicorn, supervised and bounded (gql_app/server)."""

import argparse

from gql_app.cli.arguments import Commands, port_number, positive_int
from gql_app.cli.database import checked_database_url
from gql_app.cli.errors import USAGE, CliError
from gql_app.config import get_settings


def _serve(args: argparse.Namespace) -> int:
    if args.reload and args.workers > 1:
        raise CliError("--reload runs a single process; leave out --workers", exit_code=USAGE)
    settings = get_settings()
    # Fail here in one line rather than in every worker with a traceback.
    database_url = checked_database_url(settings)
    from gql_app import server  # noqa: PLC0415 - only this command needs the server
    from gql_app.cli.banner import startup_banner  # noqa: PLC0415 - nor the banner

    # A person reads it; log collectors in production would take it for a garbled line.
    if settings.environment != "production":
        banner = startup_banner(
            settings,
            database_url=database_url,
            host=args.host,
            port=args.port,
            workers=args.workers,
        )
        print(banner, flush=True)
    server.serve(settings, host=args.host, port=args.port, workers=args.workers, reload=args.reload)
    return 0


def add_serve_command(commands: Commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the API with uvicorn",
        description="Serve the GraphQL API (at /graphql) with uvicorn. Settings come from the "
        "environment and .env; the database is migrated on start unless MIGRATE_ON_START=false.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument(
        "--port", type=port_number, default=8000, help="port to bind (default: %(default)s)"
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes (default: %(default)s)",
    )
    serve.add_argument(
        "--reload", action="store_true", help="restart on code changes (development; one process)"
    )
    serve.set_defaults(handler=_serve)
