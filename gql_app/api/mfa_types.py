"""The GraphQL shapes of second factors."""

from typing import Self, TypeVar

import strawberry

from gql_app.api.passkey_types import FinishPasskeySignInInput
from gql_app.services.mfa import MfaMethod, MfaStatus, TotpEnrollment
from gql_app.services.mfa_sign_in import SecondFactor

MfaMethodEnum = strawberry.enum(MfaMethod, name="MfaMethod", description="A second factor.")


@strawberry.type(name="TotpEnrollment", description="What an authenticator app is set up from.")
class TotpEnrollmentType:
    secret: str = strawberry.field(description="The secret in base32, to type in by hand.")
    otpauth_uri: str = strawberry.field(description="The otpauth://totp/ URI apps read.")
    qr_code_svg: str = strawberry.field(description="The URI as a QR code, an SVG document.")

    @classmethod
    def from_domain(cls, enrollment: TotpEnrollment) -> Self:
        return cls(
            secret=enrollment.secret,
            otpauth_uri=enrollment.otpauth_uri,
            qr_code_svg=enrollment.qr_code_svg,
        )


@strawberry.type(name="MfaStatus", description="Your account's second factors.")
class MfaStatusType:
    enabled: bool = strawberry.field(description="Whether sign-in asks for a second factor.")
    methods: list[MfaMethodEnum] = strawberry.field(  # type: ignore[valid-type]
        description="The second factors sign-in accepts."
    )
    recovery_codes_remaining: int = strawberry.field(description="Recovery codes not used yet.")

    @classmethod
    def from_domain(cls, status: MfaStatus) -> Self:
        return cls(
            enabled=status.enabled,
            methods=list(status.methods),
            recovery_codes_remaining=status.recovery_codes_remaining,
        )


@strawberry.input(one_of=True, description="Exactly one second factor.")
class MfaFactorInput:
    totp_code: str | None = strawberry.field(
        default=strawberry.UNSET, description="The 6 digits the authenticator app shows now."
    )
    recovery_code: str | None = strawberry.field(
        default=strawberry.UNSET, description="One of your recovery codes, dashes optional."
    )
    passkey: FinishPasskeySignInInput | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "One of your passkeys: for completeLogin, answering MFA_REQUIRED's passkeyOptions; "
            "for reauthenticate, a startPasskeySignIn ceremony."
        ),
    )

    def to_domain(self) -> SecondFactor:
        passkey = _given(self.passkey)
        return SecondFactor(
            totp_code=_given(self.totp_code),
            recovery_code=_given(self.recovery_code),
            passkey=passkey.to_domain() if passkey is not None else None,
        )


_Given = TypeVar("_Given")


def _given(value: _Given | None) -> _Given | None:
    return None if value is strawberry.UNSET else value


@strawberry.input(description="The challenge login answered, and the second factor.")
class CompleteLoginInput:
    challenge: str = strawberry.field(description="extensions.challenge of MFA_REQUIRED.")
    factor: MfaFactorInput = strawberry.field(description="The second factor.")


@strawberry.input(description="A new proof of who you are: the password, a factor, or both.")
class ReauthenticateInput:
    password: str | None = strawberry.field(default=None, description="Your password.")
    factor: MfaFactorInput | None = strawberry.field(default=None, description="A second factor.")
