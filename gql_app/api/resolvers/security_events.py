from typing import Annotated

import strawberry

from gql_app.api.context import Info
from gql_app.api.permissions import IsAuthenticated, IsSuperuser
from gql_app.api.security_event_types import SecurityEventConnection, SecurityEventFilterInput
from gql_app.crud.security_events import SecurityEventFilter
from gql_app.services import security_events as security_events_service

FirstArgument = Annotated[
    int | None,
    strawberry.argument(description="Page size, 1 to 100; null means the default, 20."),
]
AfterArgument = Annotated[
    str | None,
    strawberry.argument(description="Continue after this cursor (a previous endCursor)."),
]


@strawberry.type
class SecurityEventsQuery:
    @strawberry.field(
        description="What happened to your account, newest first: sign-ins, changes, refusals.",
        permission_classes=[IsAuthenticated],
    )
    async def my_security_events(
        self,
        info: Info,
        first: FirstArgument = security_events_service.DEFAULT_PAGE_SIZE,
        after: AfterArgument = None,
    ) -> SecurityEventConnection:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            page = await security_events_service.list_my_security_events(
                session=session,
                viewer=viewer,
                first=security_events_service.DEFAULT_PAGE_SIZE if first is None else first,
                after=after,
            )
        return SecurityEventConnection.from_page(page)

    @strawberry.field(
        description="Every account's security events, newest first (superusers only).",
        permission_classes=[IsSuperuser],
    )
    async def security_events(
        self,
        info: Info,
        first: FirstArgument = security_events_service.DEFAULT_PAGE_SIZE,
        after: AfterArgument = None,
        filter: Annotated[
            SecurityEventFilterInput | None,
            strawberry.argument(description="Only events matching this filter."),
        ] = None,
    ) -> SecurityEventConnection:
        async with info.context.db() as session:
            page = await security_events_service.list_security_events(
                session=session,
                first=security_events_service.DEFAULT_PAGE_SIZE if first is None else first,
                after=after,
                event_filter=filter.to_domain(info.context.settings)
                if filter
                else SecurityEventFilter(),
            )
        return SecurityEventConnection.from_page(page)
