"""The ``gql-app`` command: serve the API and manage the first superuser."""

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from gql_app.config import Settings, get_settings
from gql_app.db import create_engine_for, create_session_factory
from gql_app.errors import DomainError
from gql_app.migrations import upgrade_to_head
from gql_app.services import users as users_service

PASSWORD_ENV = "FIRST_SUPERUSER_PASSWORD"  # noqa: S105 - a variable name


def _serve(args: argparse.Namespace) -> int:
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


async def _create_superuser(settings: Settings, email: str, password: str) -> None:
    engine = create_engine_for(settings)
    try:
        await upgrade_to_head(engine)
        async with create_session_factory(engine)() as session:
            user = await users_service.ensure_superuser(
                session=session, email=email, password=password
            )
            state = "is a superuser" if user.is_superuser else "exists but is NOT a superuser"
            print(f"{user.email} {state}")
    finally:
        await engine.dispose()


def _create_superuser_command(args: argparse.Namespace) -> int:
    settings = get_settings()
    email = args.email or settings.first_superuser_email
    if not email:
        print("error: give --email or set FIRST_SUPERUSER_EMAIL", file=sys.stderr)
        return 2
    configured = settings.first_superuser_password
    password = configured.get_secret_value() if configured else getpass.getpass("Password: ")
    try:
        asyncio.run(_create_superuser(settings, email, password))
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gql-app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--reload", action="store_true", help="restart on code changes")
    serve.set_defaults(handler=_serve)

    superuser = commands.add_parser(
        "create-superuser",
        help=f"create a superuser unless the email exists; password from ${PASSWORD_ENV} "
        "or a prompt",
    )
    superuser.add_argument("--email", help="defaults to $FIRST_SUPERUSER_EMAIL")
    superuser.set_defaults(handler=_create_superuser_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except ValidationError as error:
        print(f"error: invalid configuration: {error.errors()[0]['msg']}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
