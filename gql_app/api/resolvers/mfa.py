from typing import Annotated

import strawberry

from gql_app.api.context import Info
from gql_app.api.mfa_types import (
    CompleteLoginInput,
    MfaStatusType,
    ReauthenticateInput,
    TotpEnrollmentType,
)
from gql_app.api.permissions import IsAuthenticated, IsSuperuser
from gql_app.api.types import AuthPayload, UserType
from gql_app.services import mfa as mfa_service
from gql_app.services import throttling
from gql_app.services import users as users_service


@strawberry.type
class MfaQuery:
    @strawberry.field(
        description="Your account's second factors.", permission_classes=[IsAuthenticated]
    )
    async def my_mfa(self, info: Info) -> MfaStatusType:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            status = await mfa_service.mfa_status(session=session, viewer=viewer)
        return MfaStatusType.from_domain(status)


@strawberry.type
class MfaMutation:
    @strawberry.mutation(
        description=(
            "Start setting up an authenticator app: a new secret, its otpauth URI and QR code. "
            "Needs a recent sign-in (reauthenticate)."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def start_totp_enrollment(self, info: Info) -> TotpEnrollmentType:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            enrollment = await mfa_service.start_totp_enrollment(
                session=session, settings=info.context.settings, viewer=viewer
            )
        return TotpEnrollmentType.from_domain(enrollment)

    @strawberry.mutation(
        description=(
            "Turn the authenticator app on with a code it shows; answers the 10 recovery "
            "codes, shown this once."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def confirm_totp_enrollment(
        self,
        info: Info,
        code: Annotated[str, strawberry.argument(description="The code the app shows now.")],
    ) -> list[str]:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            return await mfa_service.confirm_totp_enrollment(
                session=session, settings=info.context.settings, viewer=viewer, code=code
            )

    @strawberry.mutation(
        description="Turn the authenticator app off; its recovery codes stop working.",
        permission_classes=[IsAuthenticated],
    )
    async def disable_totp(self, info: Info) -> bool:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            await mfa_service.disable_totp(
                session=session, settings=info.context.settings, viewer=viewer
            )
        return True

    @strawberry.mutation(
        description="New recovery codes, shown this once; the earlier ones stop working.",
        permission_classes=[IsAuthenticated],
    )
    async def regenerate_recovery_codes(self, info: Info) -> list[str]:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            return await mfa_service.regenerate_recovery_codes(
                session=session, settings=info.context.settings, viewer=viewer
            )

    @strawberry.mutation(
        description=(
            "Finish a sign-in that answered MFA_REQUIRED: its challenge and a second factor."
        )
    )
    async def complete_login(
        self,
        info: Info,
        input: Annotated[CompleteLoginInput, strawberry.argument(description="The challenge.")],
    ) -> AuthPayload:
        async with info.context.db() as session:
            issued = await throttling.complete_login(
                session=session,
                settings=info.context.settings,
                keys=info.context.keys,
                challenges=info.context.passkey_challenges,
                challenge=input.challenge,
                factor=input.factor.to_domain(),
                client=info.context.client_info(),
                limiter=info.context.rate_limiter,
            )
        return AuthPayload.from_tokens(issued, context=info.context)

    @strawberry.mutation(
        description=(
            "Prove who you are again (the password, a second factor, or both), for the "
            "changes that need a recent sign-in."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def reauthenticate(
        self,
        info: Info,
        input: Annotated[ReauthenticateInput, strawberry.argument(description="The proof.")],
    ) -> bool:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            await throttling.reauthenticate(
                session=session,
                settings=info.context.settings,
                challenges=info.context.passkey_challenges,
                viewer=viewer,
                password=input.password,
                factor=input.factor.to_domain() if input.factor else None,
                client=info.context.client_info(),
                limiter=info.context.rate_limiter,
            )
        return True

    @strawberry.mutation(
        description="Remove another account's second factors and passkeys, and end its sessions.",
        permission_classes=[IsSuperuser],
    )
    async def reset_user_mfa(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The account.")],
    ) -> UserType:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            user = await users_service.get_user(session=session, user_id=id)
            reset = await mfa_service.reset_user_mfa(
                session=session, settings=info.context.settings, viewer=viewer, user=user
            )
        return UserType.from_model(reset)
