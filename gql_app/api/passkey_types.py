"""The GraphQL shapes of passkeys and their ceremonies."""

from datetime import datetime
from typing import Self

import strawberry
from strawberry.scalars import JSON

from gql_app.models import Passkey
from gql_app.security.passkeys import PasskeyOptions
from gql_app.services.passkey_sign_in import PasskeyAssertion


@strawberry.type(name="Passkey", description="A passkey you sign in with.")
class PasskeyType:
    id: strawberry.ID = strawberry.field(description="The passkey's id, for rename and delete.")
    name: str = strawberry.field(description="The name you gave it.")
    created_at: datetime = strawberry.field(description="When it was added.")
    last_used_at: datetime | None = strawberry.field(description="When it last signed you in.")
    backed_up: bool = strawberry.field(
        description=(
            "Whether the authenticator says the passkey is backed up (synced to other devices), "
            "so losing one device does not lose it."
        )
    )
    transports: list[str] = strawberry.field(
        description="How the browser reaches the authenticator (internal, hybrid, usb, ...)."
    )

    @classmethod
    def from_model(cls, passkey: Passkey) -> Self:
        return cls(
            id=strawberry.ID(str(passkey.id)),
            name=passkey.name,
            created_at=passkey.created_at,
            last_used_at=passkey.last_used_at,
            backed_up=passkey.backed_up,
            transports=list(passkey.transports),
        )


@strawberry.type(name="PasskeyOptions", description="A passkey ceremony to run in the browser.")
class PasskeyOptionsType:
    challenge_id: str = strawberry.field(description="Send it back with the credential.")
    options: JSON = strawberry.field(
        description=(
            "WebAuthn's options in their JSON form: pass them to "
            "PublicKeyCredential.parseCreationOptionsFromJSON (registration) or "
            "parseRequestOptionsFromJSON (sign-in)."
        )
    )

    @classmethod
    def from_domain(cls, ceremony: PasskeyOptions) -> Self:
        return cls(challenge_id=ceremony.challenge_id, options=JSON(ceremony.options))


@strawberry.input(description="The passkey the browser made, for startPasskeyRegistration.")
class FinishPasskeyRegistrationInput:
    challenge_id: str = strawberry.field(description="challengeId of startPasskeyRegistration.")
    credential: JSON = strawberry.field(
        description="What navigator.credentials.create() answered, as credential.toJSON()."
    )
    name: str | None = strawberry.field(
        default=None, description="A name to tell it apart by (at most 64 characters)."
    )


@strawberry.input(description="A passkey's answer to a sign-in ceremony.")
class FinishPasskeySignInInput:
    challenge_id: str = strawberry.field(
        description="challengeId of startPasskeySignIn, or of MFA_REQUIRED's passkeyOptions."
    )
    credential: JSON = strawberry.field(
        description="What navigator.credentials.get() answered, as credential.toJSON()."
    )

    def to_domain(self) -> PasskeyAssertion:
        return PasskeyAssertion(challenge_id=self.challenge_id, credential=self.credential)
