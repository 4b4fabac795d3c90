"""What a command left in the SQLite file it was pointed at, read with the standard library."""

import sqlite3
from pathlib import Path
from typing import Any


def query(path: Path, sql: str) -> list[Any]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as connection:
        rows = connection.execute(sql).fetchall()
    connection.close()
    return rows


def tables_in(path: Path) -> set[str]:
    return {row[0] for row in query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def users_in(path: Path) -> list[tuple[str, int, int, str]]:
    if "users" not in tables_in(path):
        return []
    return query(path, "SELECT email, is_superuser, is_verified, password_hash FROM users")
