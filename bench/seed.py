"""Benchmark databases: a fresh schema and many users sharing one precomputed hash."""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from gql_app.crud.keyset import KeysetPosition
from gql_app.db import create_engine
from gql_app.migrations import upgrade_to_head
from gql_app.models import SecurityEvent, User
from gql_app.models.base import utc_now
from gql_app.security.passwords import hash_password
from gql_app.services.pagination import encode_cursor

SEED_PASSWORD = "seeded-users-share-this-passphrase"  # noqa: S105 - benchmark data only
# Benchmarks (and their smoke tests) of other checkouts may share the server.
BENCH_DATABASE = f"gql_app_bench_{os.getpid()}"
SQLITE_BATCH = 10_000


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


@asynccontextmanager
async def postgresql_database(server_url: str) -> AsyncIterator[str]:
    """A database of the benchmark's own on the given server, dropped afterwards."""
    url = make_url(server_url)
    admin = create_engine(
        url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}"'))
            await connection.execute(text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
        yield url.set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(
                text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
            )
        await admin.dispose()


async def seed_users(database_url: str, count: int) -> None:
    """Migrate, then insert ``count`` users created one second apart, ending an hour ago."""
    engine = create_engine(database_url)
    password_hash = await hash_password(SEED_PASSWORD)
    first_created = utc_now() - timedelta(hours=1, seconds=count)
    try:
        await upgrade_to_head(engine)
        async with engine.begin() as connection:
            if is_postgresql(database_url):
                # One statement on the server: a million rows in seconds, not an hour of
                # round trips.
                await connection.execute(
                    text(
                        "INSERT INTO users (id, email, password_hash, is_active, is_superuser,"
                        " is_verified, created_at, updated_at)"
                        " SELECT gen_random_uuid(), 'user' || n || '@example.com', :hash,"
                        " true, false, true, CAST(:first AS timestamptz) + n * interval '1 second',"
                        " CAST(:first AS timestamptz) + n * interval '1 second'"
                        " FROM generate_series(1, :count) AS n"
                    ),
                    {"hash": password_hash, "first": first_created, "count": count},
                )
                await connection.execute(text("ANALYZE users"))
            else:
                for start in range(0, count, SQLITE_BATCH):
                    rows = [
                        {
                            "id": uuid.uuid4(),
                            "email": f"user{n}@example.com",
                            "password_hash": password_hash,
                            "is_active": True,
                            "is_superuser": False,
                            "is_verified": True,
                            "created_at": first_created + timedelta(seconds=n),
                            "updated_at": first_created + timedelta(seconds=n),
                        }
                        for n in range(start, min(start + SQLITE_BATCH, count))
                    ]
                    await connection.execute(insert(User), rows)
    finally:
        await engine.dispose()


async def cursor_before_last(database_url: str, rows_after: int) -> str:
    """The cursor of the user with ``rows_after`` users after it, as a client would hold."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = (
                select(User.created_at, User.id)
                .order_by(User.created_at.desc(), User.id.desc())
                .offset(rows_after)
                .limit(1)
            )
            created_at, user_id = (await connection.execute(query)).one()
    finally:
        await engine.dispose()
    return encode_cursor(KeysetPosition(at=created_at, id=user_id))


async def seed_security_events(database_url: str, count: int) -> None:
    """Insert ``count`` failed sign-ins to unknown addresses, one second apart, ending an hour
    ago: the trail a superuser pages through."""
    engine = create_engine(database_url)
    first = utc_now() - timedelta(hours=1, seconds=count)
    try:
        async with engine.begin() as connection:
            if is_postgresql(database_url):
                await connection.execute(
                    text(
                        "INSERT INTO security_events (id, type, occurred_at, details)"
                        " SELECT gen_random_uuid(), 'SIGN_IN_FAILED',"
                        " CAST(:first AS timestamptz) + n * interval '1 second', '{}'"
                        " FROM generate_series(1, :count) AS n"
                    ),
                    {"first": first, "count": count},
                )
                await connection.execute(text("ANALYZE security_events"))
            else:
                for start in range(0, count, SQLITE_BATCH):
                    rows = [
                        {
                            "id": uuid.uuid4(),
                            "type": "SIGN_IN_FAILED",
                            "occurred_at": first + timedelta(seconds=n),
                            "details": {},
                        }
                        for n in range(start, min(start + SQLITE_BATCH, count))
                    ]
                    await connection.execute(insert(SecurityEvent), rows)
    finally:
        await engine.dispose()


async def event_cursor_before_last(database_url: str, rows_after: int) -> str:
    """The cursor of the event with ``rows_after`` older ones after it (the list is newest
    first), as a superuser paging to the end would hold."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = (
                select(SecurityEvent.occurred_at, SecurityEvent.id)
                .order_by(SecurityEvent.occurred_at, SecurityEvent.id)
                .offset(rows_after)
                .limit(1)
            )
            occurred_at, event_id = (await connection.execute(query)).one()
    finally:
        await engine.dispose()
    return encode_cursor(KeysetPosition(at=occurred_at, id=event_id))
