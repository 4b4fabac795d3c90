import uuid
from datetime import datetime
from typing import Self

import strawberry

from gql_app.api.context import Context, Info
from gql_app.api.refresh_cookie import hand_over_refresh_token
from gql_app.crud.users import UserFilter
from gql_app.models import AuthSession
from gql_app.models import User as UserModel
from gql_app.services import users as users_service
from gql_app.services.auth import IssuedTokens
from gql_app.services.users import UserPage


@strawberry.type(name="User", description="A registered account.")
class UserType:
    id: strawberry.ID = strawberry.field(description="Stable identifier (a UUID).")
    email: str = strawberry.field(description="Email address, lowercased.")
    full_name: str | None = strawberry.field(description="Display name, if given.")
    is_active: bool = strawberry.field(description="Whether the account may sign in.")
    is_superuser: bool = strawberry.field(description="Whether the account administers others.")
    is_verified: bool = strawberry.field(description="Whether the email address was confirmed.")
    created_at: datetime = strawberry.field(description="When the account was created (UTC).")
    updated_at: datetime = strawberry.field(description="When the account last changed (UTC).")

    @strawberry.field(description="Whether signing in asks for a second factor.")
    async def mfa_enabled(self, info: Info) -> bool:
        return await info.context.mfa_enabled.load(uuid.UUID(self.id))

    @classmethod
    def from_model(cls, user: UserModel) -> Self:
        return cls(
            id=strawberry.ID(str(user.id)),
            email=user.email,
            full_name=user.full_name,
            is_active=user.is_active,
            is_superuser=user.is_superuser,
            is_verified=user.is_verified,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


@strawberry.type(description="Tokens issued by a successful sign-in.")
class AuthPayload:
    access_token: str = strawberry.field(
        description="Short-lived JWT to send as 'Authorization: Bearer <token>'."
    )
    refresh_token: str | None = strawberry.field(
        description=(
            "Opaque long-lived token for this session; keep it secret. Null in browser session "
            "mode (REFRESH_TOKEN_COOKIE), where it travels only in an HttpOnly cookie."
        )
    )
    token_type: str = strawberry.field(description="Always 'Bearer'.")
    expires_in: int = strawberry.field(description="Seconds until the access token expires.")
    user: UserType = strawberry.field(description="The signed-in account.")

    @classmethod
    def from_tokens(cls, issued: IssuedTokens, *, context: Context) -> Self:
        """The payload for this client; in browser session mode the refresh token goes into
        its cookie instead."""
        return cls(
            access_token=issued.access_token,
            refresh_token=hand_over_refresh_token(context, issued),
            token_type="Bearer",  # noqa: S106 - the OAuth token type, not a secret
            expires_in=issued.expires_in,
            user=UserType.from_model(issued.user),
        )


@strawberry.type(description="Where a page sits in a connection (Relay cursor connections).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    has_previous_page: bool = strawberry.field(description="Whether items precede this page.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first item, if any.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last item, if any; pass it as 'after' for the next page."
    )

    @classmethod
    def of(cls, cursors: list[str], *, has_next_page: bool, has_previous_page: bool) -> Self:
        """The state of a page whose items have ``cursors``, in order."""
        return cls(
            has_next_page=has_next_page,
            has_previous_page=has_previous_page,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


@strawberry.type(description="A user with its position in the listing.")
class UserEdge:
    cursor: str = strawberry.field(description="Opaque position of this user in the listing.")
    node: UserType = strawberry.field(description="The user.")


@strawberry.type(description="One page of users, oldest first.")
class UserConnection:
    edges: list[UserEdge] = strawberry.field(description="The users on this page.")
    page_info: PageInfo = strawberry.field(description="Pagination state of this page.")
    user_filter: strawberry.Private[UserFilter]

    @strawberry.field(description="Users matching the filter, on all pages.")
    async def total_count(self, info: Info) -> int:
        # Counted only when asked for: on a large table the count costs more than the page.
        async with info.context.db() as session:
            return await users_service.count_users(session=session, user_filter=self.user_filter)

    @classmethod
    def from_page(cls, page: UserPage) -> Self:
        edges = [UserEdge(cursor=e.cursor, node=UserType.from_model(e.user)) for e in page.edges]
        return cls(
            edges=edges,
            page_info=PageInfo.of(
                [edge.cursor for edge in edges],
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
            ),
            user_filter=page.user_filter,
        )


@strawberry.type(name="Session", description="A signed-in device or browser of the account.")
class SessionType:
    id: strawberry.ID = strawberry.field(description="The session's id, for revokeSession.")
    created_at: datetime = strawberry.field(description="When the user signed in.")
    last_used_at: datetime | None = strawberry.field(
        description="When tokens were last issued for this session."
    )
    expires_at: datetime = strawberry.field(description="When the session ends by itself.")
    user_agent: str | None = strawberry.field(description="The client's User-Agent at sign-in.")
    ip_address: str | None = strawberry.field(description="The client's address at sign-in.")
    current: bool = strawberry.field(description="Whether this request uses this session.")
    auth_methods: list[str] = strawberry.field(
        description=(
            "How the session last proved who it is (RFC 8176: pwd, otp, mfa, hwk, user), at "
            "sign-in or by reauthenticate."
        )
    )
    authenticated_at: datetime = strawberry.field(description="When it last proved it (UTC).")

    @classmethod
    def from_model(cls, auth_session: AuthSession, *, current_id: uuid.UUID) -> Self:
        return cls(
            id=strawberry.ID(str(auth_session.id)),
            created_at=auth_session.created_at,
            last_used_at=auth_session.last_used_at,
            expires_at=auth_session.expires_at,
            user_agent=auth_session.user_agent,
            ip_address=auth_session.ip_address,
            current=auth_session.id == current_id,
            auth_methods=list(auth_session.auth_methods),
            authenticated_at=auth_session.authenticated_at,
        )
