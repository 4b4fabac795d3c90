from typing import Annotated

import strawberry

from gql_app.api.context import Info
from gql_app.api.passkey_types import (
    FinishPasskeyRegistrationInput,
    FinishPasskeySignInInput,
    PasskeyOptionsType,
    PasskeyType,
)
from gql_app.api.permissions import IsAuthenticated
from gql_app.api.types import AuthPayload
from gql_app.services import passkeys as passkeys_service
from gql_app.services import throttling

PasskeyIdArgument = Annotated[
    strawberry.ID, strawberry.argument(description="The passkey's id (myPasskeys).")
]


@strawberry.type
class PasskeysQuery:
    @strawberry.field(
        description="Your passkeys, oldest first.", permission_classes=[IsAuthenticated]
    )
    async def my_passkeys(self, info: Info) -> list[PasskeyType]:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            held = await passkeys_service.list_passkeys(session=session, viewer=viewer)
        return [PasskeyType.from_model(passkey) for passkey in held]


@strawberry.type
class PasskeysMutation:
    @strawberry.mutation(
        description=(
            "Start adding a passkey: options for navigator.credentials.create(). Needs a recent "
            "sign-in (reauthenticate); at most 10 passkeys an account."
        ),
        permission_classes=[IsAuthenticated],
    )
    async def start_passkey_registration(self, info: Info) -> PasskeyOptionsType:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            ceremony = await passkeys_service.start_passkey_registration(
                session=session,
                settings=info.context.settings,
                challenges=info.context.passkey_challenges,
                viewer=viewer,
            )
        return PasskeyOptionsType.from_domain(ceremony)

    @strawberry.mutation(
        description="Finish adding a passkey with what the browser made of the options.",
        permission_classes=[IsAuthenticated],
    )
    async def finish_passkey_registration(
        self,
        info: Info,
        input: Annotated[
            FinishPasskeyRegistrationInput, strawberry.argument(description="The new passkey.")
        ],
    ) -> PasskeyType:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            passkey = await passkeys_service.finish_passkey_registration(
                session=session,
                settings=info.context.settings,
                challenges=info.context.passkey_challenges,
                viewer=viewer,
                challenge_id=input.challenge_id,
                credential=input.credential,
                name=input.name,
            )
        return PasskeyType.from_model(passkey)

    @strawberry.mutation(
        description="Give one of your passkeys a new name. Needs a recent sign-in.",
        permission_classes=[IsAuthenticated],
    )
    async def rename_passkey(
        self,
        info: Info,
        id: PasskeyIdArgument,
        name: Annotated[str, strawberry.argument(description="At most 64 characters.")],
    ) -> PasskeyType:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            passkey = await passkeys_service.rename_passkey(
                session=session,
                settings=info.context.settings,
                viewer=viewer,
                passkey_id=id,
                name=name,
            )
        return PasskeyType.from_model(passkey)

    @strawberry.mutation(
        description="Remove one of your passkeys; it signs in no more. Needs a recent sign-in.",
        permission_classes=[IsAuthenticated],
    )
    async def delete_passkey(self, info: Info, id: PasskeyIdArgument) -> bool:
        viewer = await info.context.viewer()
        async with info.context.db() as session:
            await passkeys_service.delete_passkey(
                session=session, settings=info.context.settings, viewer=viewer, passkey_id=id
            )
        return True

    @strawberry.mutation(
        description=(
            "Start signing in with a passkey: options for navigator.credentials.get() that any "
            "of the site's passkeys can answer."
        )
    )
    async def start_passkey_sign_in(self, info: Info) -> PasskeyOptionsType:
        async with info.context.db() as session:
            ceremony = await throttling.start_passkey_sign_in(
                session=session,
                settings=info.context.settings,
                challenges=info.context.passkey_challenges,
                client=info.context.client_info(),
                limiter=info.context.rate_limiter,
            )
        return PasskeyOptionsType.from_domain(ceremony)

    @strawberry.mutation(
        description=(
            "Sign in with the passkey's answer; starts a session. A passkey that did not verify "
            "you (no PIN or biometric) answers MFA_REQUIRED on an account with a second factor."
        )
    )
    async def finish_passkey_sign_in(
        self,
        info: Info,
        input: Annotated[
            FinishPasskeySignInInput, strawberry.argument(description="The passkey's answer.")
        ],
    ) -> AuthPayload:
        async with info.context.db() as session:
            issued = await throttling.finish_passkey_sign_in(
                session=session,
                settings=info.context.settings,
                keys=info.context.keys,
                challenges=info.context.passkey_challenges,
                assertion=input.to_domain(),
                client=info.context.client_info(),
                limiter=info.context.rate_limiter,
            )
        return AuthPayload.from_tokens(issued, context=info.context)
