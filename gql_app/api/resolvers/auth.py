from typing import Annotated

import strawberry

from gql_app.api.context import Info
from gql_app.api.inputs import LoginInput, RegisterInput
from gql_app.api.permissions import IsAuthenticated
from gql_app.api.types import AuthPayload, UserType
from gql_app.services import throttling


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The signed-in account.", permission_classes=[IsAuthenticated])
    async def me(self, info: Info) -> UserType:
        viewer = await info.context.viewer()
        return UserType.from_model(viewer.user)


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Create an account. Sign in afterwards with `login`.")
    async def register(
        self,
        info: Info,
        input: Annotated[RegisterInput, strawberry.argument(description="The new account.")],
    ) -> UserType:
        async with info.context.db() as session:
            user = await throttling.register(
                session=session,
                data=input.to_domain(),
                jobs=info.context.jobs(),
                client=info.context.client_info(),
                limiter=info.context.rate_limiter,
                conceal_existing=info.context.settings.registration_conceals_existing,
            )
        return UserType.from_model(user)

    @strawberry.mutation(
        description="Sign in; starts a session and returns its access and refresh tokens."
    )
    async def login(
        self,
        info: Info,
        input: Annotated[LoginInput, strawberry.argument(description="The credentials.")],
    ) -> AuthPayload:
        async with info.context.db() as session:
            issued = await throttling.login(
                session=session,
                settings=info.context.settings,
                keys=info.context.keys,
                challenges=info.context.passkey_challenges,
                credentials=input.to_domain(),
                client=info.context.client_info(),
                limiter=info.context.rate_limiter,
            )
        return AuthPayload.from_tokens(issued, context=info.context)
