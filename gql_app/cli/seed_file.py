"""The file `gql-app seed` loads: accounts in JSON or YAML, told apart by the file's suffix,
checked for shape (what each account's values mean is the seeding service's to check)."""

import json
from pathlib import Path
from typing import Any

import yaml

from gql_app.cli.errors import USAGE, CliError, one_line
from gql_app.services.seeding import SeedAccount

REQUIRED = ("email", "password")
FLAGS = ("is_superuser", "is_verified", "is_active")
KNOWN = (*REQUIRED, "full_name", *FLAGS)


def _refuse(path: Path, problem: str) -> CliError:
    # Nothing was written when the file is refused: a usage error.
    return CliError(f"{path}: {problem}", exit_code=USAGE)


def read_seed_file(path: Path) -> list[SeedAccount]:
    """The file's accounts, in its order; a one-line CliError on anything out of shape."""
    parsed = _parse(path, _read(path))
    if isinstance(parsed, dict) and set(parsed) == {"accounts"}:
        parsed = parsed["accounts"]
    if not isinstance(parsed, list):
        raise _refuse(path, 'expected a list of accounts, or {"accounts": [...]}')
    return [_account(path, entry, position) for position, entry in enumerate(parsed, start=1)]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _refuse(path, "no such file") from None
    except UnicodeDecodeError:
        raise _refuse(path, "not UTF-8 text") from None
    except OSError as error:
        raise _refuse(path, f"cannot read it: {error.strerror or one_line(error)}") from None


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise _refuse(
                path, f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
            ) from None
    if suffix in {".yaml", ".yml"}:
        try:
            return yaml.safe_load(text)
        except yaml.MarkedYAMLError as error:
            where = error.problem_mark
            at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
            raise _refuse(path, f"not valid YAML: {error.problem or error.context}{at}") from None
        except yaml.YAMLError as error:
            raise _refuse(path, f"not valid YAML: {one_line(error)}") from None
    raise _refuse(path, "the name must end in .json, .yaml or .yml, which says its format")


def _account(path: Path, entry: object, position: int) -> SeedAccount:
    where = f"account {position}"
    if not isinstance(entry, dict):
        raise _refuse(path, f"{where}: expected an object with email and password")
    unknown = sorted(str(key) for key in entry if key not in KNOWN)
    if unknown:
        raise _refuse(path, f"{where}: unknown field {unknown[0]!r} (known: {', '.join(KNOWN)})")
    for key in REQUIRED:
        if key not in entry:
            raise _refuse(path, f"{where}: {key} is missing")
        if not isinstance(entry[key], str):
            raise _refuse(path, f"{where}: {key} must be a string")
    full_name = entry.get("full_name")
    if full_name is not None and not isinstance(full_name, str):
        raise _refuse(path, f"{where}: full_name must be a string or null")
    for flag in FLAGS:
        if flag in entry and not isinstance(entry[flag], bool):
            raise _refuse(path, f"{where}: {flag} must be true or false")
    return SeedAccount(
        email=entry["email"],
        password=entry["password"],
        full_name=full_name,
        is_superuser=entry.get("is_superuser", False),
        is_verified=entry.get("is_verified", False),
        is_active=entry.get("is_active", True),
    )
