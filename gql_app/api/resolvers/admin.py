from typing import Annotated

import strawberry

from gql_app.api.context import Info
from gql_app.api.inputs import CreateUserInput, UpdateUserInput
from gql_app.api.permissions import IsSuperuser
from gql_app.api.types import UserType
from gql_app.services import admin as admin_service

UserIdArgument = Annotated[strawberry.ID, strawberry.argument(description="The user's id.")]


@strawberry.type
class AdminMutation:
    @strawberry.mutation(
        description="Create an account (superusers only).", permission_classes=[IsSuperuser]
    )
    async def create_user(
        self,
        info: Info,
        input: Annotated[CreateUserInput, strawberry.argument(description="The account.")],
    ) -> UserType:
        async with info.context.db() as session:
            user = await admin_service.create_user(
                session=session, data=input.to_domain(), jobs=info.context.jobs()
            )
        return UserType.from_model(user)

    @strawberry.mutation(
        description=(
            "Change an account (superusers only). Deactivating it or setting its password ends "
            "its sessions; the last active superuser cannot be deactivated or demoted."
        ),
        permission_classes=[IsSuperuser],
    )
    async def update_user(
        self,
        info: Info,
        id: UserIdArgument,
        input: Annotated[UpdateUserInput, strawberry.argument(description="The changes.")],
    ) -> UserType:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            user = await admin_service.update_user(
                session=session, user_id=id, changes=input.to_domain(), viewer=viewer
            )
        return UserType.from_model(user)

    @strawberry.mutation(
        description=(
            "Delete an account and its sessions (superusers only; not your own, not the last "
            "active superuser)."
        ),
        permission_classes=[IsSuperuser],
    )
    async def delete_user(self, info: Info, id: UserIdArgument) -> bool:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            await admin_service.delete_user(session=session, viewer=viewer, user_id=id)
        return True
