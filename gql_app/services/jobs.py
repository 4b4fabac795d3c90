"""Work that runs after the response: mail that must not change a request's timing or outcome."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.email.service import EmailService


@dataclass(frozen=True, slots=True)
class JobContext:
    session: AsyncSession
    settings: Settings
    email: EmailService


Job = Callable[..., Awaitable[None]]


class JobScheduler(Protocol):
    def schedule(self, job: Job, /, **kwargs: Any) -> None:
        """Run ``await job(JobContext, **kwargs)`` later, with a database session of its own."""
