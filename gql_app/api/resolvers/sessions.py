from typing import Annotated

import strawberry

from gql_app.api.context import Info
from gql_app.api.permissions import IsAuthenticated
from gql_app.api.refresh_cookie import forget_refresh_token, presented_refresh_token
from gql_app.api.types import AuthPayload, SessionType
from gql_app.services import auth as auth_service
from gql_app.services import sessions as sessions_service
from gql_app.services import throttling

RefreshTokenArgument = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "The refresh token from login or the last refresh. Leave it out in browser session "
            "mode: the cookie carries it (with the X-Requested-With header)."
        )
    ),
]


@strawberry.type
class SessionsQuery:
    @strawberry.field(
        description="Your active sessions, newest first.", permission_classes=[IsAuthenticated]
    )
    async def my_sessions(self, info: Info) -> list[SessionType]:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            sessions = await sessions_service.list_sessions(session=session, viewer=viewer)
        return [SessionType.from_model(s, current_id=viewer.auth_session.id) for s in sessions]


@strawberry.type
class SessionsMutation:
    @strawberry.mutation(
        description=(
            "Trade a refresh token for a new pair. The presented token is retired; presenting "
            "it again later revokes the whole session."
        )
    )
    async def refresh_token(
        self, info: Info, refresh_token: RefreshTokenArgument = None
    ) -> AuthPayload:
        with presented_refresh_token(info.context, refresh_token) as presented:
            async with info.context.db() as session:
                issued = await throttling.refresh(
                    session=session,
                    settings=info.context.settings,
                    keys=info.context.keys,
                    refresh_token=presented,
                    client=info.context.client_info(),
                    limiter=info.context.rate_limiter,
                )
        return AuthPayload.from_tokens(issued, context=info.context)

    @strawberry.mutation(
        description=(
            "End the session this refresh token belongs to (in browser session mode, with no "
            "argument, this browser's session, whose cookie is cleared)."
        )
    )
    async def logout(self, info: Info, refresh_token: RefreshTokenArgument = None) -> bool:
        with presented_refresh_token(info.context, refresh_token) as presented:
            async with info.context.db() as session:
                await auth_service.logout(
                    session=session, refresh_token=presented, client=info.context.client_info()
                )
        if refresh_token is None:
            forget_refresh_token(info.context)
        return True

    @strawberry.mutation(
        description="End every session of your account, this one included.",
        permission_classes=[IsAuthenticated],
    )
    async def logout_all(self, info: Info) -> bool:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            await sessions_service.logout_all(session=session, viewer=viewer)
        forget_refresh_token(info.context)
        return True

    @strawberry.mutation(
        description="End one of your sessions (see mySessions).",
        permission_classes=[IsAuthenticated],
    )
    async def revoke_session(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The session's id.")],
    ) -> bool:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            revoked = await sessions_service.revoke_session(
                session=session, viewer=viewer, session_id=id
            )
        if revoked == viewer.auth_session.id:
            forget_refresh_token(info.context)
        return True
