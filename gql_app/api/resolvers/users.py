from typing import Annotated

import strawberry

from gql_app.api.context import Info
from gql_app.api.inputs import UserFilter
from gql_app.api.permissions import IsSuperuser
from gql_app.api.types import UserConnection, UserType
from gql_app.crud import users as users_crud
from gql_app.services import users as users_service


@strawberry.type
class UsersQuery:
    @strawberry.field(
        description="All users, oldest first, a page at a time (superusers only).",
        permission_classes=[IsSuperuser],
    )
    async def users(
        self,
        info: Info,
        first: Annotated[
            int | None,
            strawberry.argument(description="Page size, 1 to 100; null means the default, 20."),
        ] = users_service.DEFAULT_PAGE_SIZE,
        after: Annotated[
            str | None,
            strawberry.argument(description="Continue after this cursor (a previous endCursor)."),
        ] = None,
        filter: Annotated[
            UserFilter | None, strawberry.argument(description="Only users matching this filter.")
        ] = None,
    ) -> UserConnection:
        async with info.context.db() as session:
            page = await users_service.list_users(
                session=session,
                first=users_service.DEFAULT_PAGE_SIZE if first is None else first,
                after=after,
                user_filter=filter.to_domain() if filter else users_crud.UserFilter(),
            )
        return UserConnection.from_page(page)

    @strawberry.field(
        description="One user by id (superusers only).", permission_classes=[IsSuperuser]
    )
    async def user(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The user's id.")],
    ) -> UserType:
        async with info.context.db() as session:
            user = await users_service.get_user(session=session, user_id=id)
        return UserType.from_model(user)
