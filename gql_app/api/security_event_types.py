"""The GraphQL shapes of the security trail."""

import uuid
from datetime import datetime
from typing import Self

import strawberry
from strawberry.scalars import JSON

from gql_app.api.context import Info
from gql_app.api.types import PageInfo, UserType
from gql_app.config import Settings
from gql_app.crud.security_events import SecurityEventFilter
from gql_app.models import SecurityEvent
from gql_app.services.security_events import (
    SecurityEventPage,
    SecurityEventType,
    hashed_address,
    parsed_user_id,
    utc_instant,
)

SecurityEventTypeEnum = strawberry.enum(
    SecurityEventType, name="SecurityEventType", description="What happened to an account."
)


@strawberry.type(name="SecurityEvent", description="Something that happened to an account.")
class SecurityEventNode:
    id: strawberry.ID = strawberry.field(description="The event's id.")
    event_type: SecurityEventTypeEnum = strawberry.field(  # type: ignore[valid-type]
        name="type", description="What happened."
    )
    occurred_at: datetime = strawberry.field(description="When (UTC).")
    ip_address: str | None = strawberry.field(description="The client's address, if known.")
    user_agent: str | None = strawberry.field(description="The client's User-Agent, if known.")
    session_id: strawberry.ID | None = strawberry.field(
        description="The session it happened in, where one applies."
    )
    details: JSON | None = strawberry.field(
        description="A little more, by type: the methods of a sign-in, the fields an admin changed."
    )
    address_hash: str | None = strawberry.field(
        description=(
            "For a sign-in to an address no account uses: a keyed hash of the address, the "
            "same for every attempt on it (filter by the address to find them)."
        )
    )
    owner_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The account; null for an address no account uses.")
    async def user(self, info: Info) -> UserType | None:
        if self.owner_id is None:
            return None
        user = await info.context.users.load(self.owner_id)
        return UserType.from_model(user) if user is not None else None

    @classmethod
    def from_model(cls, event: SecurityEvent) -> Self:
        return cls(
            id=strawberry.ID(str(event.id)),
            event_type=SecurityEventType(event.type),
            occurred_at=event.occurred_at,
            ip_address=event.ip_address,
            user_agent=event.user_agent,
            session_id=strawberry.ID(str(event.session_id)) if event.session_id else None,
            details=JSON(event.details) if event.details else None,
            address_hash=event.email_hash,
            owner_id=event.user_id,
        )


@strawberry.type(description="An event with its position in the list.")
class SecurityEventEdge:
    cursor: str = strawberry.field(description="Opaque position of this event in the list.")
    node: SecurityEventNode = strawberry.field(description="The event.")


@strawberry.type(description="One page of security events, newest first.")
class SecurityEventConnection:
    edges: list[SecurityEventEdge] = strawberry.field(description="The events on this page.")
    page_info: PageInfo = strawberry.field(description="Pagination state of this page.")

    @classmethod
    def from_page(cls, page: SecurityEventPage) -> Self:
        edges = [
            SecurityEventEdge(cursor=edge.cursor, node=SecurityEventNode.from_model(edge.event))
            for edge in page.edges
        ]
        return cls(
            edges=edges,
            page_info=PageInfo.of(
                [edge.cursor for edge in edges],
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
            ),
        )


@strawberry.input(name="SecurityEventFilter", description="Which events to list.")
class SecurityEventFilterInput:
    user_id: strawberry.ID | None = strawberry.field(default=None, description="One account's.")
    types: list[SecurityEventTypeEnum] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Only events of these types."
    )
    since: datetime | None = strawberry.field(default=None, description="At or after this time.")
    until: datetime | None = strawberry.field(default=None, description="Before this time.")
    address: str | None = strawberry.field(
        default=None,
        description="Sign-ins to this address that no account uses (matched by its hash).",
    )

    def to_domain(self, settings: Settings) -> SecurityEventFilter:
        return SecurityEventFilter(
            email_hash=hashed_address(self.address, settings=settings)
            if self.address is not None
            else None,
            user_id=parsed_user_id(self.user_id) if self.user_id is not None else None,
            types=[SecurityEventType(kind).value for kind in self.types] if self.types else None,
            since=utc_instant(self.since, field="filter.since"),
            until=utc_instant(self.until, field="filter.until"),
        )
