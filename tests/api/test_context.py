"""The per-request context (gql_app/api/context.py): one database session for every field."""

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.api.context import Context
from gql_app.availability import Availability
from gql_app.config import Settings
from gql_app.email.backends import MemoryBackend
from gql_app.email.service import EmailService
from gql_app.models import User
from gql_app.security.rate_limit import RateLimiter
from gql_app.services.key_ring import KeyRing
from gql_app.services.passkey_challenges import DatabaseChallengeStore


class TestAFailedFieldLeavesNothingBehind:
    async def test_its_writes_are_rolled_back_before_another_field_can_commit_them(
        self, db_session: AsyncSession, settings: Settings
    ) -> None:
        # Every field of a request shares one session; a field that raised must not leave
        # pending writes (a spent token, a half-made change) for the next field's commit.
        context = Context(
            session=db_session,
            session_factory=lambda: db_session,  # type: ignore[arg-type,return-value]
            settings=settings,
            email=EmailService(backend=MemoryBackend(), settings=settings),
            rate_limiter=RateLimiter.from_settings(settings),
            availability=Availability(),
            keys=KeyRing(settings),
            passkey_challenges=DatabaseChallengeStore(),
        )

        async def failing_field() -> None:
            async with context.db() as session:
                session.add(User(email="half@example.com", password_hash="x"))
                await session.flush()
                raise RuntimeError("the field failed")

        with pytest.raises(RuntimeError):
            await failing_field()
        async with context.db() as session:
            await session.commit()

        assert await db_session.scalar(select(User).where(User.email == "half@example.com")) is None
