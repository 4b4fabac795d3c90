from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gql_app.config import Settings
from gql_app.db import SessionFactory
from gql_app.email.backends import MemoryBackend
from gql_app.email.service import EmailService
from tests.services.support import RecordingScheduler


@pytest.fixture
def session_factory(async_test_db: tuple[AsyncEngine, SessionFactory]) -> SessionFactory:
    """Opens further sessions on the test database, to read back what another one wrote."""
    _, factory = async_test_db
    return factory


@pytest_asyncio.fixture
async def request_session(session_factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """The session of the request under test, apart from the one that set the data up."""
    async with session_factory() as session:
        yield session


@pytest.fixture
def mail_backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
def sent_mail(mail_backend: MemoryBackend) -> list[EmailMessage]:
    return mail_backend.outbox


@pytest.fixture
def email_service(mail_backend: MemoryBackend, settings: Settings) -> EmailService:
    return EmailService(backend=mail_backend, settings=settings)


@pytest.fixture
def jobs(
    session_factory: SessionFactory, settings: Settings, email_service: EmailService
) -> RecordingScheduler:
    return RecordingScheduler(
        session_factory=session_factory, settings=settings, email=email_service
    )
