"""One's own passkeys: adding one (a registration ceremony), listing, renaming, removing."""

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import passkeys as passkeys_crud
from gql_app.crud import users as users_crud
from gql_app.error_reasons import ErrorReason, FieldErrorCode
from gql_app.errors import (
    AuthenticationError,
    ConflictError,
    FieldError,
    InputValidationError,
    NotFoundError,
)
from gql_app.models import Passkey
from gql_app.models.base import utc_now
from gql_app.security import passkeys
from gql_app.security.passkeys import KnownCredential, PasskeyOptions, RelyingParty
from gql_app.services.mfa import second_factor_enabled
from gql_app.services.passkey_challenges import (
    CeremonyPurpose,
    PasskeyChallengeStore,
    issue_challenge,
    take_challenge,
)
from gql_app.services.recent_authentication import require_recent_authentication
from gql_app.services.security_events import SecurityEventType, record_viewer_event
from gql_app.services.validation import clean_passkey_name
from gql_app.services.viewer import Viewer

MAX_PASSKEYS_PER_ACCOUNT = 10
DEFAULT_PASSKEY_NAME = "Passkey"


def relying_party(settings: Settings) -> RelyingParty:
    return RelyingParty(
        id=settings.passkey_rp_id,
        name=settings.webauthn_rp_name,
        user_verification=settings.webauthn_user_verification,
        accepts_origin=settings.accepts_passkey_origin,
    )


def known_credentials(held: Sequence[Passkey]) -> list[KnownCredential]:
    return [
        KnownCredential(credential_id=passkey.credential_id, transports=passkey.transports)
        for passkey in held
    ]


def malformed_credential() -> InputValidationError:
    return InputValidationError.single(
        "credential",
        FieldErrorCode.INVALID_VALUE,
        "Send the credential as credential.toJSON() returns it",
    )


async def _require_recent_authentication(
    *, session: AsyncSession, settings: Settings, viewer: Viewer
) -> None:
    require_recent_authentication(
        viewer=viewer,
        settings=settings,
        has_second_factor=await second_factor_enabled(session=session, user_id=viewer.user.id),
    )


async def list_passkeys(*, session: AsyncSession, viewer: Viewer) -> Sequence[Passkey]:
    return await passkeys_crud.list_for_user(session=session, user_id=viewer.user.id)


async def start_passkey_registration(
    *,
    session: AsyncSession,
    settings: Settings,
    challenges: PasskeyChallengeStore,
    viewer: Viewer,
) -> PasskeyOptions:
    await _require_recent_authentication(session=session, settings=settings, viewer=viewer)
    user = viewer.user
    held = await passkeys_crud.list_for_user(session=session, user_id=user.id)
    if len(held) >= MAX_PASSKEYS_PER_ACCOUNT:
        raise ConflictError(ErrorReason.TOO_MANY_PASSKEYS)
    now = utc_now()
    challenge_id, challenge = await issue_challenge(
        session=session,
        store=challenges,
        purpose=CeremonyPurpose.REGISTRATION,
        user_id=user.id,
        now=now,
    )
    await session.commit()
    options = passkeys.registration_options(
        relying_party=relying_party(settings),
        challenge=challenge,
        # The account's id, not its address: the handle says nothing about the person.
        user_handle=user.id.bytes,
        user_name=user.email,
        display_name=user.full_name or user.email,
        existing=known_credentials(held),
    )
    return PasskeyOptions(challenge_id=challenge_id, options=options)


async def finish_passkey_registration(
    *,
    session: AsyncSession,
    settings: Settings,
    challenges: PasskeyChallengeStore,
    viewer: Viewer,
    challenge_id: str,
    credential: object,
    name: str | None,
) -> Passkey:
    """The passkey the browser made for the challenge, kept for the account."""
    await _require_recent_authentication(session=session, settings=settings, viewer=viewer)
    # Input first: a request that is refused as malformed spends no challenge.
    cleaned_name = clean_passkey_name(name)
    if isinstance(cleaned_name, FieldError):
        raise InputValidationError([cleaned_name])
    try:
        parsed = passkeys.parse_registration(credential)
    except passkeys.MalformedCredentialError as error:
        raise malformed_credential() from error
    user = viewer.user
    now = utc_now()
    challenge = await take_challenge(
        session=session,
        store=challenges,
        challenge_id=challenge_id,
        purpose=CeremonyPurpose.REGISTRATION,
        user_id=user.id,
        now=now,
    )
    try:
        registered = passkeys.verify_registration(
            relying_party=relying_party(settings), credential=parsed, challenge=challenge
        )
    except passkeys.CredentialRejectedError as error:
        raise AuthenticationError(ErrorReason.PASSKEY_VERIFICATION_FAILED) from error
    # One registration of an account at a time, so two cannot both pass the limit.
    await users_crud.get_for_update(session=session, user_id=user.id)
    if await passkeys_crud.count_for_user(session=session, user_id=user.id) >= (
        MAX_PASSKEYS_PER_ACCOUNT
    ):
        raise ConflictError(ErrorReason.TOO_MANY_PASSKEYS)
    passkey = await passkeys_crud.create_unless_registered(
        session=session,
        data=passkeys_crud.NewPasskey(
            user_id=user.id,
            credential_id=registered.credential_id,
            public_key=registered.public_key,
            sign_count=registered.sign_count,
            transports=registered.transports,
            aaguid=registered.aaguid,
            backup_eligible=registered.backup_eligible,
            backed_up=registered.backed_up,
            name=cleaned_name or DEFAULT_PASSKEY_NAME,
            created_at=now,
        ),
    )
    if passkey is None:
        raise ConflictError(ErrorReason.PASSKEY_ALREADY_REGISTERED)
    await record_viewer_event(
        session=session,
        viewer=viewer,
        type=SecurityEventType.PASSKEY_ADDED,
        details={"passkey_id": str(passkey.id), "name": passkey.name},
    )
    await session.commit()
    return passkey


async def _own_passkey(*, session: AsyncSession, viewer: Viewer, passkey_id: str) -> Passkey:
    try:
        parsed_id = uuid.UUID(passkey_id)
    except ValueError as error:
        raise NotFoundError(ErrorReason.PASSKEY_NOT_FOUND) from error
    passkey = await passkeys_crud.get_for_user(
        session=session, user_id=viewer.user.id, passkey_id=parsed_id
    )
    if passkey is None:
        # Another account's passkey is not found either: its id tells nothing.
        raise NotFoundError(ErrorReason.PASSKEY_NOT_FOUND)
    return passkey


async def rename_passkey(
    *, session: AsyncSession, settings: Settings, viewer: Viewer, passkey_id: str, name: str
) -> Passkey:
    cleaned_name = clean_passkey_name(name)
    if isinstance(cleaned_name, FieldError):
        raise InputValidationError([cleaned_name])
    if cleaned_name is None:
        raise InputValidationError.single("name", FieldErrorCode.REQUIRED, "Name is required")
    await _require_recent_authentication(session=session, settings=settings, viewer=viewer)
    passkey = await _own_passkey(session=session, viewer=viewer, passkey_id=passkey_id)
    renamed = await passkeys_crud.rename(session=session, passkey=passkey, name=cleaned_name)
    await session.commit()
    return renamed


async def delete_passkey(
    *, session: AsyncSession, settings: Settings, viewer: Viewer, passkey_id: str
) -> None:
    await _require_recent_authentication(session=session, settings=settings, viewer=viewer)
    passkey = await _own_passkey(session=session, viewer=viewer, passkey_id=passkey_id)
    await passkeys_crud.delete_passkey(session=session, passkey_id=passkey.id)
    await record_viewer_event(
        session=session,
        viewer=viewer,
        type=SecurityEventType.PASSKEY_REMOVED,
        details={"passkey_id": str(passkey.id), "name": passkey.name},
    )
    await session.commit()
