import logging
from typing import Any

from starlette.background import BackgroundTasks

from gql_app.availability import Availability, Dependency
from gql_app.config import Settings
from gql_app.db import SessionFactory, database_unreachable, open_session
from gql_app.email.service import EmailService
from gql_app.errors import EmailDeliveryError
from gql_app.services.jobs import Job, JobContext

logger = logging.getLogger(__name__)


class BackgroundJobs:
    """Runs jobs after the response is sent, each with its own database session."""

    def __init__(
        self,
        *,
        tasks: BackgroundTasks,
        session_factory: SessionFactory,
        settings: Settings,
        email: EmailService,
        availability: Availability,
    ) -> None:
        self._tasks = tasks
        self._session_factory = session_factory
        self._settings = settings
        self._email = email
        self._availability = availability

    def schedule(self, job: Job, /, **kwargs: Any) -> None:
        self._tasks.add_task(self._run, job, kwargs)

    async def _run(self, job: Job, kwargs: dict[str, Any]) -> None:
        name = getattr(job, "__name__", repr(job))
        try:
            async with open_session(self._session_factory) as session:
                await job(
                    JobContext(session=session, settings=self._settings, email=self._email),
                    **kwargs,
                )
        except EmailDeliveryError:
            logger.warning("Background job %s could not deliver its email", name, exc_info=True)
        except Exception as error:
            if database_unreachable(error):
                # The outage is logged once, not once for each job it stops.
                self._availability.failed(Dependency.DATABASE, error)
                logger.info("Background job %s dropped: the database is unavailable", name)
                return
            # The response is already sent; the log is the only place this can go.
            logger.exception("Background job %s failed", name)
