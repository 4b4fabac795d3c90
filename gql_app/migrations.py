"""Running Alembic from the application and the CLI, on the app's own engine."""

import asyncio
import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command

PACKAGE_DIR = Path(__file__).resolve().parent
# A wheel has no project folder around the package, so it carries alembic.ini and alembic/
# inside it (pyproject.toml, force-include); a source checkout has them beside the package.
BUNDLED_MIGRATIONS = PACKAGE_DIR / "_migrations"
MIGRATIONS_ROOT = (
    BUNDLED_MIGRATIONS if (BUNDLED_MIGRATIONS / "alembic.ini").is_file() else PACKAGE_DIR.parent
)
ALEMBIC_INI = MIGRATIONS_ROOT / "alembic.ini"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_ROOT / "alembic"))
    if database_url is not None:
        # ConfigParser treats % as interpolation; URLs may contain %-escapes.
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


# Any constant shared by every process of the application; names the migration lock.
MIGRATION_LOCK_ID = 0x6471_6C61_7070  # "gqlapp"


async def upgrade_to_head(engine: AsyncEngine) -> None:
    async with _sqlite_file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several workers start at once: one migrates, the others wait, then find
            # nothing left to do. The lock ends with this transaction.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": MIGRATION_LOCK_ID}
            )
        await connection.run_sync(_upgrade_on, alembic_config())


def _upgrade_on(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@asynccontextmanager
async def _sqlite_file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Workers starting together on one SQLite file migrate one after the other.

    SQLite has no advisory locks; a lock on a file beside the database does the same job.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    try:
        lock = Path(f"{database}.migration-lock").open("a")  # noqa: ASYNC230, SIM115 - at start
    except OSError:
        # Nowhere to put the lock: SQLite, opening the database there, will say why.
        yield
        return
    with lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
