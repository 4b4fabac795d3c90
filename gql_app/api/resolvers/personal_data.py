from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from gql_app.api.context import Info
from gql_app.api.permissions import IsAuthenticated
from gql_app.api.refresh_cookie import forget_refresh_token
from gql_app.services import personal_data as personal_data_service
from gql_app.services import throttling


@strawberry.type
class PersonalDataMutation:
    @strawberry.mutation(
        description=(
            "Delete your account and everything of it; a confirmation goes to its address. "
            "Needs the password, and a recent second factor on an account that has one."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def delete_me(
        self,
        info: Info,
        password: Annotated[str, strawberry.argument(description="Your password.")],
    ) -> bool:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            await throttling.delete_me(
                session=session,
                settings=info.context.settings,
                viewer=viewer,
                password=password,
                jobs=info.context.jobs(),
                client=info.context.client_info(),
                limiter=info.context.rate_limiter,
            )
        # Fields after this one in the document find the session gone, not a deleted user.
        info.context.forget_viewer()
        forget_refresh_token(info.context)
        return True

    @strawberry.mutation(
        description=(
            "A copy of everything stored about you, as JSON (format 1): profile, sessions, "
            "second factors and passkeys (no secrets), security events. Needs a recent sign-in."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def export_my_data(self, info: Info) -> JSON:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            exported = await personal_data_service.export_my_data(
                session=session, settings=info.context.settings, viewer=viewer
            )
        return JSON(exported)
