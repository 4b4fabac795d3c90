"""Test doubles and helpers for the service tests: job schedulers, and the viewer of a request."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.email.service import EmailService
from gql_app.models import AuthSession, User
from gql_app.services.jobs import Job, JobContext
from gql_app.services.viewer import Viewer
from tests.auth_factories import create_auth_session


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    job: Job
    kwargs: dict[str, Any]


class CollectingScheduler:
    """A JobScheduler that only records what was scheduled; nothing runs."""

    def __init__(self) -> None:
        self.scheduled: list[ScheduledJob] = []

    def schedule(self, job: Job, /, **kwargs: Any) -> None:
        self.scheduled.append(ScheduledJob(job=job, kwargs=kwargs))


class RecordingScheduler:
    """A JobScheduler that records what was scheduled and runs it only when asked.

    ``run_all`` runs every job not run yet, each with a fresh session from the factory,
    the way the application's BackgroundJobs does after the response.
    """

    def __init__(
        self, *, session_factory: SessionFactory, settings: Settings, email: EmailService
    ) -> None:
        self.scheduled: list[ScheduledJob] = []
        self._session_factory = session_factory
        self._settings = settings
        self._email = email
        self._ran = 0

    def schedule(self, job: Job, /, **kwargs: Any) -> None:
        self.scheduled.append(ScheduledJob(job=job, kwargs=kwargs))

    async def run_all(self) -> None:
        while self._ran < len(self.scheduled):
            pending = self.scheduled[self._ran]
            self._ran += 1
            async with self._session_factory() as session:
                await pending.job(
                    JobContext(session=session, settings=self._settings, email=self._email),
                    **pending.kwargs,
                )


async def viewer_for(
    session: AsyncSession, user: User, *, auth_session: AuthSession | None = None
) -> Viewer:
    """The viewer a request of ``user`` resolves to: the user as loaded by ``session``,
    and a new session (device) of that user unless one is given."""
    loaded = await session.get(User, user.id)
    assert loaded is not None
    if auth_session is None:
        auth_session = await create_auth_session(session, loaded)
    return Viewer(user=loaded, auth_session=auth_session)
