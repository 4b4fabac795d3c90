from typing import Annotated

import strawberry

from gql_app.api.context import Info
from gql_app.api.inputs import ChangePasswordInput, ResetPasswordInput, UpdateMeInput
from gql_app.api.permissions import IsAuthenticated
from gql_app.api.refresh_cookie import forget_refresh_token
from gql_app.api.types import UserType
from gql_app.services import accounts as accounts_service
from gql_app.services import email_verification as email_verification_service
from gql_app.services import throttling


@strawberry.type
class AccountMutation:
    @strawberry.mutation(
        description="Change your name or email address.", permission_classes=[IsAuthenticated]
    )
    async def update_me(
        self,
        info: Info,
        input: Annotated[UpdateMeInput, strawberry.argument(description="The changes.")],
    ) -> UserType:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            user = await accounts_service.update_me(
                session=session,
                settings=info.context.settings,
                viewer=viewer,
                changes=input.to_domain(),
                jobs=info.context.jobs(),
            )
        return UserType.from_model(user)

    @strawberry.mutation(
        description="Change your password; every other session of yours ends.",
        permission_classes=[IsAuthenticated],
    )
    async def change_password(
        self,
        info: Info,
        input: Annotated[ChangePasswordInput, strawberry.argument(description="The passwords.")],
    ) -> bool:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            await accounts_service.change_password(
                session=session,
                settings=info.context.settings,
                viewer=viewer,
                change=input.to_domain(),
            )
        return True

    @strawberry.mutation(
        description=(
            "Email a password reset link if an account uses this address. Always true: the "
            "answer does not tell whether the account exists."
        )
    )
    async def request_password_reset(
        self,
        info: Info,
        email: Annotated[str, strawberry.argument(description="The account's email address.")],
    ) -> bool:
        await throttling.request_password_reset(
            email=email,
            jobs=info.context.jobs(),
            client=info.context.client_info(),
            limiter=info.context.rate_limiter,
        )
        return True

    @strawberry.mutation(description="Set a new password with an emailed token; all sessions end.")
    async def reset_password(
        self,
        info: Info,
        input: Annotated[ResetPasswordInput, strawberry.argument(description="Token, password.")],
    ) -> bool:
        async with info.context.db() as session:
            await accounts_service.reset_password(
                session=session, reset=input.to_domain(), client=info.context.client_info()
            )
        # Every session of the account ended, whoever's it was, this browser's too.
        forget_refresh_token(info.context)
        return True

    @strawberry.mutation(
        description="Email a new confirmation link for your address (nothing if confirmed).",
        permission_classes=[IsAuthenticated],
    )
    async def request_email_verification(self, info: Info) -> bool:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            await email_verification_service.request_email_verification(
                session=session,
                settings=info.context.settings,
                email=info.context.email,
                viewer=viewer,
            )
        return True

    @strawberry.mutation(description="Confirm an email address with the emailed token.")
    async def verify_email(
        self,
        info: Info,
        token: Annotated[str, strawberry.argument(description="The token from the emailed link.")],
    ) -> UserType:
        async with info.context.db() as session:
            user = await throttling.verify_email(
                session=session,
                token=token,
                client=info.context.client_info(),
                limiter=info.context.rate_limiter,
            )
        return UserType.from_model(user)
