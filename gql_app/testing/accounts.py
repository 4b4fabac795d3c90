"""Accounts made for a test straight in the server's database, through the same seeding
service as `gql-app seed`: no superuser, no mail and no rate limit involved, flags exactly as
asked, and register's checks on what the test chose."""

import asyncio
import secrets
import threading
import uuid
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import TypeAdapter

from gql_app.config import PasswordHashingCost
from gql_app.db import create_engine, create_session_factory
from gql_app.security.passwords import configure_password_hashing
from gql_app.services import seeding
from gql_app.services.seeding import SeedAccount

T = TypeVar("T")

EMAIL_DOMAIN = "example.com"


@dataclass(frozen=True)
class Account:
    """An account on the server under test, with the password it signs in with."""

    id: str
    email: str
    password: str
    full_name: str | None
    is_superuser: bool
    is_verified: bool
    is_active: bool


def unique_email(prefix: str = "user") -> str:
    # Unique across runs too: a PostgreSQL database given to the plugin is never emptied.
    return f"{prefix}-{uuid.uuid4().hex[:16]}@{EMAIL_DOMAIN}"


def unique_password() -> str:
    return secrets.token_urlsafe(18)


class AccountMaker:
    """Writes accounts into ``database_url`` from an event loop on a thread of its own.

    A thread of its own: a test that calls it may be running an event loop already (an
    async test), and one loop for all calls keeps one engine and its connections.
    """

    def __init__(self, database_url: str, *, hashing_cost: str = "standard") -> None:
        # The accounts are hashed here, at the cost the server hashes at.
        configure_password_hashing(
            cost=TypeAdapter(PasswordHashingCost).validate_python(hashing_cost)
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="gql-app-accounts", daemon=True
        )
        self._thread.start()
        self._engine = create_engine(database_url)
        self._session_factory = create_session_factory(self._engine)

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(work, self._loop)
        return future.result()

    def create(
        self,
        *,
        email: str | None = None,
        password: str | None = None,
        full_name: str | None = None,
        is_superuser: bool = False,
        is_verified: bool = False,
        is_active: bool = True,
    ) -> Account:
        wanted = SeedAccount(
            email=email if email is not None else unique_email(),
            password=password if password is not None else unique_password(),
            full_name=full_name,
            is_superuser=is_superuser,
            is_verified=is_verified,
            is_active=is_active,
        )
        seeded = self._run(self._seed(wanted))
        if not seeded.created:
            raise ValueError(
                f"{seeded.user.email} is already registered: leave out email= for a unique one"
            )
        user = seeded.user
        return Account(
            id=str(user.id),
            email=user.email,
            password=wanted.password,
            full_name=user.full_name,
            is_superuser=user.is_superuser,
            is_verified=user.is_verified,
            is_active=user.is_active,
        )

    async def _seed(self, account: SeedAccount) -> seeding.SeededAccount:
        async with self._session_factory() as session:
            [seeded] = await seeding.seed_accounts(session=session, accounts=[account])
            return seeded

    def close(self) -> None:
        self._run(self._engine.dispose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
