"""BackgroundJobs (api/jobs.py): jobs run after the response, on sessions of their own,
and nothing they raise reaches the request."""

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.background import BackgroundTasks

from gql_app.api.jobs import BackgroundJobs
from gql_app.availability import Availability
from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.email.backends import MemoryBackend
from gql_app.email.service import EmailService
from gql_app.errors import EmailDeliveryError
from gql_app.models import User
from gql_app.services import accounts as accounts_service
from gql_app.services.jobs import JobContext
from tests.factories import create_user
from tests.fixtures.email import FailingEmailBackend

JOBS_LOGGER = "gql_app.api.jobs"


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def job_log() -> Iterator[list[logging.LogRecord]]:
    handler = ListHandler()
    logger = logging.getLogger(JOBS_LOGGER)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(previous_level)


@pytest.fixture
def session_factory(async_test_db: tuple[AsyncEngine, SessionFactory]) -> SessionFactory:
    _, factory = async_test_db
    return factory


@pytest.fixture
def email_service(settings: Settings) -> EmailService:
    return EmailService(backend=MemoryBackend(), settings=settings)


@pytest.fixture
def tasks() -> BackgroundTasks:
    return BackgroundTasks()


@pytest.fixture
def jobs(
    tasks: BackgroundTasks,
    session_factory: SessionFactory,
    settings: Settings,
    email_service: EmailService,
) -> BackgroundJobs:
    return BackgroundJobs(
        tasks=tasks,
        session_factory=session_factory,
        settings=settings,
        email=email_service,
        availability=Availability(),
    )


class Recorder:
    """A job that notes the context it was given and what it saw through its session."""

    def __init__(self) -> None:
        self.contexts: list[JobContext] = []
        self.kwargs: list[dict[str, Any]] = []
        self.active_during_job: list[bool] = []

    async def __call__(self, context: JobContext, **kwargs: Any) -> None:
        self.contexts.append(context)
        self.kwargs.append(kwargs)
        await context.session.execute(select(1))
        self.active_during_job.append(context.session.in_transaction())


class TestScheduling:
    async def test_nothing_runs_until_the_tasks_run(
        self, jobs: BackgroundJobs, tasks: BackgroundTasks
    ) -> None:
        recorder = Recorder()

        jobs.schedule(recorder, user_id="x")

        assert recorder.contexts == []
        assert len(tasks.tasks) == 1

    async def test_the_job_gets_its_arguments_and_a_context(
        self,
        jobs: BackgroundJobs,
        tasks: BackgroundTasks,
        settings: Settings,
        email_service: EmailService,
    ) -> None:
        recorder = Recorder()
        user_id = uuid.uuid4()

        jobs.schedule(recorder, user_id=user_id, email="a@example.com")
        await tasks()

        assert recorder.kwargs == [{"user_id": user_id, "email": "a@example.com"}]
        [context] = recorder.contexts
        assert context.settings is settings
        assert context.email is email_service

    async def test_each_job_runs_with_its_own_session_closed_afterwards(
        self, jobs: BackgroundJobs, tasks: BackgroundTasks, db_session: AsyncSession
    ) -> None:
        recorder = Recorder()

        jobs.schedule(recorder)
        jobs.schedule(recorder)
        await tasks()

        first, second = (context.session for context in recorder.contexts)
        assert first is not second
        assert db_session not in (first, second)
        assert recorder.active_during_job == [True, True]
        assert not first.in_transaction()
        assert not second.in_transaction()

    async def test_what_a_job_commits_is_stored(
        self,
        jobs: BackgroundJobs,
        tasks: BackgroundTasks,
        db_session: AsyncSession,
        session_factory: SessionFactory,
    ) -> None:
        user = await create_user(db_session, full_name="Before")

        async def rename(context: JobContext, *, user_id: uuid.UUID) -> None:
            loaded = await context.session.get(User, user_id)
            assert loaded is not None
            loaded.full_name = "Renamed By Job"
            await context.session.commit()

        jobs.schedule(rename, user_id=user.id)
        await tasks()

        async with session_factory() as other:
            stored = await other.scalar(select(User.full_name).where(User.id == user.id))
        assert stored == "Renamed By Job"

    async def test_a_failed_job_does_not_stop_the_next_one(
        self, jobs: BackgroundJobs, tasks: BackgroundTasks, job_log: list[logging.LogRecord]
    ) -> None:
        recorder = Recorder()

        async def broken(context: JobContext) -> None:
            raise RuntimeError("boom")

        jobs.schedule(broken)
        jobs.schedule(recorder)
        await tasks()

        assert len(recorder.contexts) == 1


class TestFailures:
    async def test_an_email_delivery_error_is_a_warning_and_does_not_propagate(
        self, jobs: BackgroundJobs, tasks: BackgroundTasks, job_log: list[logging.LogRecord]
    ) -> None:
        async def undeliverable(context: JobContext) -> None:
            raise EmailDeliveryError

        jobs.schedule(undeliverable)
        await tasks()

        [record] = job_log
        assert record.levelno == logging.WARNING
        assert "undeliverable" in record.getMessage()
        assert record.exc_info is not None
        assert record.exc_info[0] is EmailDeliveryError

    async def test_a_real_mail_job_whose_server_refuses_is_a_warning(
        self,
        tasks: BackgroundTasks,
        session_factory: SessionFactory,
        settings: Settings,
        db_session: AsyncSession,
        job_log: list[logging.LogRecord],
    ) -> None:
        user = await create_user(db_session)
        backend = FailingEmailBackend()
        jobs = BackgroundJobs(
            tasks=tasks,
            session_factory=session_factory,
            settings=settings,
            email=EmailService(backend=backend, settings=settings),
            availability=Availability(),
        )

        jobs.schedule(accounts_service.deliver_password_reset, email=user.email)
        await tasks()

        assert [message["To"] for message in backend.attempts] == [user.email]
        [record] = job_log
        assert record.levelno == logging.WARNING
        assert "deliver_password_reset" in record.getMessage()

    async def test_any_other_exception_is_an_error_with_its_traceback(
        self, jobs: BackgroundJobs, tasks: BackgroundTasks, job_log: list[logging.LogRecord]
    ) -> None:
        async def broken(context: JobContext) -> None:
            raise ValueError("unexpected state")

        jobs.schedule(broken)
        await tasks()

        [record] = job_log
        assert record.levelno == logging.ERROR
        assert "broken" in record.getMessage()
        assert record.exc_info is not None
        assert record.exc_info[0] is ValueError
        assert str(record.exc_info[1]) == "unexpected state"

    async def test_what_a_failed_job_did_not_commit_is_rolled_back(
        self,
        jobs: BackgroundJobs,
        tasks: BackgroundTasks,
        db_session: AsyncSession,
        session_factory: SessionFactory,
        job_log: list[logging.LogRecord],
    ) -> None:
        user = await create_user(db_session, full_name="Before")

        async def half_done(context: JobContext, *, user_id: uuid.UUID) -> None:
            loaded = await context.session.get(User, user_id)
            assert loaded is not None
            loaded.full_name = "Half Done"
            await context.session.flush()
            raise RuntimeError("gave up")

        jobs.schedule(half_done, user_id=user.id)
        await tasks()

        async with session_factory() as other:
            stored = await other.scalar(select(User.full_name).where(User.id == user.id))
        assert stored == "Before"
        assert [record.levelno for record in job_log] == [logging.ERROR]

    async def test_a_job_without_a_name_is_logged_by_its_repr(
        self, jobs: BackgroundJobs, tasks: BackgroundTasks, job_log: list[logging.LogRecord]
    ) -> None:
        class Unnamed:
            def __repr__(self) -> str:
                return "<unnamed job>"

            async def __call__(self, context: JobContext) -> None:
                raise RuntimeError("no name")

        jobs.schedule(Unnamed())
        await tasks()

        [record] = job_log
        assert "<unnamed job>" in record.getMessage()

    async def test_a_successful_job_logs_nothing(
        self, jobs: BackgroundJobs, tasks: BackgroundTasks, job_log: list[logging.LogRecord]
    ) -> None:
        jobs.schedule(Recorder())
        await tasks()

        assert job_log == []
