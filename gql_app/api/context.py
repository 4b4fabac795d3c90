import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import strawberry
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from gql_app.api.jobs import BackgroundJobs
from gql_app.config import Settings
from gql_app.db import SessionFactory, get_session, get_session_factory
from gql_app.email.service import EmailService
from gql_app.errors import AuthenticationError
from gql_app.services import auth as auth_service
from gql_app.services.auth import ClientInfo
from gql_app.services.jobs import JobScheduler
from gql_app.services.viewer import Viewer

BEARER_SCHEME = "bearer"


class Context(BaseContext):
    def __init__(
        self,
        *,
        session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        email: EmailService,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.email = email
        self._session = session
        self._session_factory = session_factory
        # Query fields resolve concurrently, but one AsyncSession serves one task at a time.
        self._session_lock = asyncio.Lock()
        self._viewer: Viewer | None = None

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        async with self._session_lock:
            yield self._session

    @property
    def http_request(self) -> Request:
        assert isinstance(self.request, Request), "GraphQL is served over HTTP only"
        return self.request

    def access_token(self) -> str:
        header = self.http_request.headers.get("authorization")
        if not header:
            raise AuthenticationError("Authentication required")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != BEARER_SCHEME or not token.strip():
            raise AuthenticationError("Authorization header must be 'Bearer <token>'")
        return token.strip()

    async def viewer(self) -> Viewer:
        if self._viewer is None:
            async with self.db() as session:
                self._viewer = await auth_service.authenticate(
                    session=session, settings=self.settings, access_token=self.access_token()
                )
        return self._viewer

    def jobs(self) -> JobScheduler:
        assert self.background_tasks is not None, "set by the GraphQL router"
        return BackgroundJobs(
            tasks=self.background_tasks,
            session_factory=self._session_factory,
            settings=self.settings,
            email=self.email,
        )

    def client_info(self) -> ClientInfo:
        request = self.http_request
        return ClientInfo(
            user_agent=request.headers.get("user-agent"),
            ip_address=request.client.host if request.client else None,
        )


def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_email_service(request: Request) -> EmailService:
    email: EmailService = request.app.state.email_service
    return email


async def get_context(
    session: Annotated[AsyncSession, Depends(get_session)],
    session_factory: Annotated[SessionFactory, Depends(get_session_factory)],
    settings: Annotated[Settings, Depends(get_settings_from_app)],
    email: Annotated[EmailService, Depends(get_email_service)],
) -> Context:
    return Context(session=session, session_factory=session_factory, settings=settings, email=email)


Info = strawberry.Info[Context, None]
