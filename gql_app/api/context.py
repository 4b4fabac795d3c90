import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Annotated

import strawberry
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from gql_app.api.jobs import BackgroundJobs
from gql_app.availability import OUTAGE_RETRY_AFTER_SECONDS, Availability, Dependency
from gql_app.config import Settings
from gql_app.db import (
    SessionFactory,
    database_unreachable,
    discard_changes,
    get_session,
    get_session_factory,
    release_connection,
)
from gql_app.email.service import EmailService
from gql_app.error_reasons import ErrorReason
from gql_app.errors import AuthenticationError, ServiceUnavailableError, Unavailable
from gql_app.models import User
from gql_app.security.rate_limit import RateLimiter
from gql_app.services import auth as auth_service
from gql_app.services import mfa as mfa_service
from gql_app.services import users as users_service
from gql_app.services.client_info import ClientInfo
from gql_app.services.jobs import JobScheduler
from gql_app.services.key_ring import KeyRing
from gql_app.services.passkey_challenges import PasskeyChallengeStore
from gql_app.services.security_events import committed_events
from gql_app.services.security_notices import NOTIFYING_TYPES, deliver_security_notice
from gql_app.services.viewer import Viewer

BEARER_SCHEME = "bearer"

Network = IPv4Network | IPv6Network


class Context(BaseContext):
    def __init__(
        self,
        *,
        session: AsyncSession,
        session_factory: SessionFactory,
        settings: Settings,
        email: EmailService,
        rate_limiter: RateLimiter,
        availability: Availability,
        keys: KeyRing,
        passkey_challenges: PasskeyChallengeStore,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.keys = keys
        self.passkey_challenges = passkey_challenges
        self.email = email
        self.rate_limiter = rate_limiter
        self.availability = availability
        self._session = session
        self._session_factory = session_factory
        # Query fields resolve concurrently, but one AsyncSession serves one task at a time.
        self._session_lock = asyncio.Lock()
        self._viewer: Viewer | None = None
        # User.mfaEnabled for every user the request shows, in one query, not one a user.
        self.mfa_enabled: DataLoader[uuid.UUID, bool] = DataLoader(load_fn=self._mfa_enabled)
        # SecurityEvent.user for a whole page of events in one query.
        self.users: DataLoader[uuid.UUID, User | None] = DataLoader(load_fn=self._users)

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The request's session, for one field at a time; the edge where outages are typed.

        A block is one short unit of work: when it ends, so does what it left open (services
        commit their writes; what is left is a read), and the connection goes back to the
        pool at once rather than when the response has been built and sent.
        """
        async with self._session_lock:
            try:
                yield self._session
                if self._session.in_transaction():
                    await release_connection(self._session)
                self._send_security_notices()
            except asyncio.CancelledError:
                # The request's deadline passed: no waiting for a rollback (on a frozen
                # server it would wait out the command timeout); the connection is dropped,
                # and its transaction with it.
                with suppress(Exception):
                    await self._session.invalidate()
                raise
            except BaseException as error:
                # A field that failed must not leave half its writes for the next field's
                # commit (several mutations in one document share this session).
                await discard_changes(self._session)
                # What it committed before failing stays (a revoked session), and is told.
                self._send_security_notices()
                if isinstance(error, Exception) and database_unreachable(error):
                    self.availability.failed(Dependency.DATABASE, error)
                    raise ServiceUnavailableError(
                        Unavailable.DATABASE, retry_after=OUTAGE_RETRY_AFTER_SECONDS
                    ) from error
                raise

    def forget_viewer(self) -> None:
        """After the viewer's account went: a later field of the request signs in anew."""
        self._viewer = None

    def _send_security_notices(self) -> None:
        """Mail the account owners of the events this block committed, after the response
        (a notice never delays or fails the change it tells of)."""
        for event_id, event_type in committed_events(self._session):
            if event_type in NOTIFYING_TYPES:
                self.jobs().schedule(deliver_security_notice, event_id=event_id)

    async def _mfa_enabled(self, user_ids: list[uuid.UUID]) -> list[bool]:
        async with self.db() as session:
            enabled = await mfa_service.accounts_with_second_factor(
                session=session, user_ids=user_ids
            )
        return [user_id in enabled for user_id in user_ids]

    async def _users(self, user_ids: list[uuid.UUID]) -> list[User | None]:
        async with self.db() as session:
            found = await users_service.users_by_id(session=session, user_ids=user_ids)
        return [found.get(user_id) for user_id in user_ids]

    @property
    def http_request(self) -> Request:
        assert isinstance(self.request, Request), "GraphQL is served over HTTP only"
        return self.request

    def access_token(self) -> str:
        header = self.http_request.headers.get("authorization")
        if not header:
            raise AuthenticationError(ErrorReason.TOKEN_MISSING)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != BEARER_SCHEME or not token.strip():
            raise AuthenticationError(
                ErrorReason.TOKEN_INVALID, message="Authorization header must be 'Bearer <token>'"
            )
        return token.strip()

    async def viewer(self) -> Viewer:
        if self._viewer is None:
            async with self.db() as session:
                viewer = await auth_service.authenticate(
                    session=session,
                    settings=self.settings,
                    keys=self.keys,
                    access_token=self.access_token(),
                )
            self._viewer = replace(viewer, client=self.client_info())
        return self._viewer

    def jobs(self) -> JobScheduler:
        assert self.background_tasks is not None, "set by the GraphQL router"
        return BackgroundJobs(
            tasks=self.background_tasks,
            session_factory=self._session_factory,
            settings=self.settings,
            email=self.email,
            availability=self.availability,
        )

    def client_info(self) -> ClientInfo:
        request = self.http_request
        return ClientInfo(
            user_agent=request.headers.get("user-agent"),
            ip_address=client_ip(
                peer=request.client.host if request.client else None,
                forwarded_for=request.headers.getlist("x-forwarded-for"),
                trusted_proxies=self.settings.trusted_proxies,
            ),
        )


def client_ip(
    *, peer: str | None, forwarded_for: Iterable[str], trusted_proxies: Sequence[Network]
) -> str | None:
    """The client's address: the socket peer, unless that is a trusted proxy.

    Behind trusted proxies, X-Forwarded-For is read from the right (each proxy appends the
    address it was connected from) and the first address that is not a trusted proxy is
    the client; everything left of it was written by the client and proves nothing.
    """
    if peer is None or not is_trusted_proxy(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    client = peer
    for hop in reversed(hops):
        parsed = _parse_ip(hop)
        if parsed is None:
            # Not an address a trusted proxy would write: keep the last hop we can vouch for.
            return client
        client = str(parsed)
        if not is_trusted_proxy(client, trusted_proxies):
            return client
    return client


def _parse_ip(value: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(value)
    except ValueError:
        return None


def is_trusted_proxy(address: str, trusted_proxies: Sequence[Network]) -> bool:
    parsed = _parse_ip(address)
    return parsed is not None and any(parsed in network for network in trusted_proxies)


async def get_context(
    request: Request,
    session: Annotated[AsyncSession, Depends(get_session)],
    session_factory: Annotated[SessionFactory, Depends(get_session_factory)],
) -> Context:
    return context_for(request, session=session, session_factory=session_factory)


def context_for(
    request: Request, *, session: AsyncSession, session_factory: SessionFactory
) -> Context:
    """A request's context, from what the application holds for every request."""
    state = request.app.state
    return Context(
        session=session,
        session_factory=session_factory,
        settings=state.settings,
        email=state.email_service,
        rate_limiter=state.rate_limiter,
        availability=state.availability,
        keys=state.key_ring,
        passkey_challenges=state.passkey_challenges,
    )


Info = strawberry.Info[Context, None]
