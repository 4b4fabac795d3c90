import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import strawberry
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from gql_app.config import Settings
from gql_app.db import get_session
from gql_app.errors import AuthenticationError
from gql_app.services import auth as auth_service
from gql_app.services.auth import ClientInfo, Viewer

BEARER_SCHEME = "bearer"


class Context(BaseContext):
    def __init__(self, *, session: AsyncSession, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self._session = session
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

    def client_info(self) -> ClientInfo:
        request = self.http_request
        return ClientInfo(
            user_agent=request.headers.get("user-agent"),
            ip_address=request.client.host if request.client else None,
        )


def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_context(
    session: Annotated[AsyncSession, Depends(get_session)],
    settings: Annotated[Settings, Depends(get_settings_from_app)],
) -> Context:
    return Context(session=session, settings=settings)


Info = strawberry.Info[Context, None]
