"""`gql-app create-superuser`: migrate, then create the first superuser, with the password
from the environment or a prompt that does not echo."""

import argparse
import getpass
import warnings
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine

from gql_app.cli.arguments import Commands
from gql_app.cli.database import checked_database_url, run_on_database
from gql_app.cli.errors import USAGE, CliError
from gql_app.config import Settings, get_settings
from gql_app.db import create_session_factory
from gql_app.errors import FieldError
from gql_app.migrations import upgrade_to_head
from gql_app.models import User
from gql_app.security.passwords import configure_password_hashing
from gql_app.services import users as users_service
from gql_app.services.validation import normalize_email

PASSWORD_ENV = "FIRST_SUPERUSER_PASSWORD"  # noqa: S105 - a variable name


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
    configure_password_hashing(cost=settings.password_hashing_cost)
    email = args.email or settings.first_superuser_email
    if not email:
        raise CliError("give --email or set FIRST_SUPERUSER_EMAIL", exit_code=USAGE)
    normalized = normalize_email(email)
    if isinstance(normalized, FieldError):
        raise CliError(normalized.message, exit_code=USAGE)
    # Before the prompt: typing a password is wasted if the database cannot be used.
    checked_database_url(settings)
    password = _superuser_password(settings, email=normalized)
    work = partial(_ensure_superuser, email=normalized, password=password)
    print(run_on_database(settings, work))
    return 0


def add_create_superuser_command(commands: Commands) -> None:
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
