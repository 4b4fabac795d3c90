"""`gql-app keys list | rotate | activate KID | retire KID`: the keys that sign access
tokens, changed in three steps so no verifier ever meets a token it cannot check."""

import argparse
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gql_app.cli.arguments import Commands
from gql_app.cli.database import run_on_database
from gql_app.cli.errors import CliError
from gql_app.config import Settings, get_settings
from gql_app.db import create_session_factory
from gql_app.security.signing_keys import KeyDecryptionError
from gql_app.services import signing_keys as signing_keys_service
from gql_app.services.signing_keys import KeyState, KeyStatus, SigningKeyError

KeyChange = Callable[[AsyncSession, Settings], Awaitable[KeyStatus]]


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


def _as_json(status: KeyStatus) -> dict[str, Any]:
    return {
        "kid": status.kid,
        "algorithm": status.algorithm,
        "state": status.state.value,
        "created_at": _when(status.created_at),
        "activates_at": _when(status.activates_at),
        "signed_until": status.signed_until and _when(status.signed_until),
        "retired_at": status.retired_at and _when(status.retired_at),
    }


def _table(statuses: list[KeyStatus]) -> str:
    header = ("KID", "ALGORITHM", "STATE", "SIGNS FROM", "SIGNED UNTIL", "RETIRED")
    rows = [header] + [
        (
            status.kid,
            status.algorithm,
            status.state.value,
            _when(status.activates_at),
            _when(status.signed_until),
            _when(status.retired_at),
        )
        for status in statuses
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


async def _list(engine: AsyncEngine) -> list[KeyStatus]:
    async with create_session_factory(engine)() as session:
        return await signing_keys_service.list_signing_keys(session=session)


async def _change(engine: AsyncEngine, *, change: KeyChange, settings: Settings) -> KeyStatus:
    async with create_session_factory(engine)() as session:
        try:
            status = await change(session, settings)
        except (SigningKeyError, KeyDecryptionError) as error:
            raise CliError(str(error)) from None
        await session.commit()
        return status


def _run_list(args: argparse.Namespace) -> int:
    statuses = run_on_database(get_settings(), _list)
    if args.json:
        print(json.dumps([_as_json(status) for status in statuses], indent=2))
    elif statuses:
        print(_table(statuses))
    else:
        print("no signing keys yet: the server creates one when it starts")
    return 0


def _run_change(
    args: argparse.Namespace, *, change: KeyChange, done: Callable[[Settings, KeyStatus], str]
) -> int:
    settings = get_settings()
    status = run_on_database(settings, partial(_change, change=change, settings=settings))
    if args.json:
        print(json.dumps(_as_json(status), indent=2))
    else:
        print(done(settings, status))
    return 0


def _rotated(settings: Settings, status: KeyStatus) -> str:
    if status.state is KeyState.CURRENT:
        return f"{status.kid} ({status.algorithm}) created; it signs from now on"
    return (
        f"{status.kid} ({status.algorithm}) created and published; it signs from "
        f"{_when(status.activates_at)} (SIGNING_KEY_PUBLISH_SECONDS="
        f"{settings.signing_key_publish_seconds}), or from `gql-app keys activate {status.kid}`"
    )


def _activated(settings: Settings, status: KeyStatus) -> str:
    return (
        f"{status.kid} ({status.algorithm}) signs from now on; the key before it verifies "
        f"until retired (every worker within {settings.signing_key_cache_seconds:g} s)"
    )


def _retired(settings: Settings, status: KeyStatus) -> str:
    return (
        f"{status.kid} retired: no longer published, and the tokens it signed are refused "
        f"by every worker within {settings.signing_key_cache_seconds:g} s, and by services "
        f"once their copy of the key set expires (at most {settings.jwks_max_age_seconds} s "
        "if they honour its Cache-Control)"
    )


def _run_rotate(args: argparse.Namespace) -> int:
    async def rotate(session: AsyncSession, settings: Settings) -> KeyStatus:
        return await signing_keys_service.rotate_signing_key(session=session, settings=settings)

    return _run_change(args, change=rotate, done=_rotated)


def _run_activate(args: argparse.Namespace) -> int:
    async def activate(session: AsyncSession, _: Settings) -> KeyStatus:
        return await signing_keys_service.activate_signing_key(session=session, kid=args.kid)

    return _run_change(args, change=activate, done=_activated)


def _run_retire(args: argparse.Namespace) -> int:
    async def retire(session: AsyncSession, settings: Settings) -> KeyStatus:
        return await signing_keys_service.retire_signing_key(
            session=session, settings=settings, kid=args.kid, force=args.force
        )

    return _run_change(args, change=retire, done=_retired)


def add_keys_command(commands: Commands) -> None:
    keys = commands.add_parser(
        "keys",
        help="list, rotate, activate and retire the keys that sign access tokens",
        description="Signing keys live in DATABASE_URL, their private halves encrypted. "
        "Rotation takes three steps: rotate (a new key is published, not used), activate "
        "(it signs; the old one still verifies), retire (the old one is withdrawn).",
    )
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    def action(
        name: str, handler: Callable[[argparse.Namespace], int], *, help: str, description: str
    ) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, description=description)
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
        parser.set_defaults(handler=handler)
        return parser

    action(
        "list",
        _run_list,
        help="show every key, its state and times",
        description="States: next (published, signs from its time), current (signs), "
        "previous (verifies until retired), retired.",
    )
    action(
        "rotate",
        _run_rotate,
        help="create a key of JWT_ALGORITHM, published now, signing after the publish delay",
        description="The new key is in the JWKS at once and signs after "
        "SIGNING_KEY_PUBLISH_SECONDS, when every verifier's cache has had time to fetch it.",
    )
    activate = action(
        "activate",
        _run_activate,
        help="make a key sign from now on",
        description="The key signs from now on; the one before it goes on verifying until "
        "retired. A service that fetched the key set before this key was published fetches "
        "it again when it meets the new kid (PyJWKClient and jose at most every 30 s), so "
        "activating before SIGNING_KEY_PUBLISH_SECONDS may see new tokens refused there "
        "for that long.",
    )
    activate.add_argument("kid", metavar="KID", help="the key, as `keys list` shows it")
    retire = action(
        "retire",
        _run_retire,
        help="withdraw a key: no longer published, its tokens refused",
        description="Refused while tokens the key signed may be unexpired "
        "(ACCESS_TOKEN_EXPIRE_SECONDS after it stopped signing), unless --force.",
    )
    retire.add_argument("kid", metavar="KID", help="the key, as `keys list` shows it")
    retire.add_argument(
        "--force",
        action="store_true",
        help="retire even though tokens it signed may be unexpired (their holders refresh)",
    )
