"""Signing in with a passkey: alone (a discoverable credential, no account named first),
and the proof of a passkey that the second step of a sign-in and reauthentication use."""

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import passkeys as passkeys_crud
from gql_app.crud import users as users_crud
from gql_app.error_reasons import ErrorReason
from gql_app.errors import AuthenticationError
from gql_app.models import Passkey
from gql_app.models.base import utc_now
from gql_app.security import passkeys
from gql_app.security.passkeys import PasskeyOptions
from gql_app.services import auth as auth_service
from gql_app.services import mfa_challenges
from gql_app.services.auth import IssuedTokens
from gql_app.services.client_info import ClientInfo
from gql_app.services.key_ring import KeyRing
from gql_app.services.mfa import second_factor_enabled
from gql_app.services.passkey_challenges import (
    CeremonyPurpose,
    PasskeyChallengeStore,
    issue_challenge,
    take_challenge,
)
from gql_app.services.passkeys import malformed_credential, relying_party
from gql_app.services.recent_authentication import HARDWARE_KEY_METHOD, USER_VERIFIED_METHOD

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PasskeyAssertion:
    """What a browser's navigator.credentials.get() answered, for one challenge."""

    challenge_id: str
    credential: object


@dataclass(frozen=True, slots=True)
class ProvenPasskey:
    passkey: Passkey
    user_verified: bool

    @property
    def auth_methods(self) -> list[str]:
        return [HARDWARE_KEY_METHOD] + ([USER_VERIFIED_METHOD] if self.user_verified else [])


async def start_passkey_sign_in(
    *, session: AsyncSession, settings: Settings, challenges: PasskeyChallengeStore
) -> PasskeyOptions:
    """A ceremony any passkey of the site can answer: it names no account, so it says
    nothing about which exist."""
    challenge_id, challenge = await issue_challenge(
        session=session,
        store=challenges,
        purpose=CeremonyPurpose.SIGN_IN,
        user_id=None,
        now=utc_now(),
    )
    await session.commit()
    options = passkeys.authentication_options(
        relying_party=relying_party(settings), challenge=challenge, allowed=[]
    )
    return PasskeyOptions(challenge_id=challenge_id, options=options)


async def prove_passkey(
    *,
    session: AsyncSession,
    settings: Settings,
    challenges: PasskeyChallengeStore,
    assertion: PasskeyAssertion,
    purpose: CeremonyPurpose,
    challenged_user_id: uuid.UUID | None,
    owner_id: uuid.UUID | None,
) -> ProvenPasskey:
    """The passkey that signed the challenge, its use recorded (the caller commits).

    ``challenged_user_id`` is the account the challenge was handed to (None for a sign-in
    ceremony); ``owner_id``, when given, the account the passkey must belong to.
    """
    try:
        credential = passkeys.parse_authentication(assertion.credential)
    except passkeys.MalformedCredentialError as error:
        raise malformed_credential() from error
    now = utc_now()
    challenge = await take_challenge(
        session=session,
        store=challenges,
        challenge_id=assertion.challenge_id,
        purpose=purpose,
        user_id=challenged_user_id,
        now=now,
    )
    passkey = await passkeys_crud.get_by_credential_id(
        session=session, credential_id=credential.raw_id
    )
    if passkey is None or (owner_id is not None and passkey.user_id != owner_id):
        raise AuthenticationError(ErrorReason.PASSKEY_NOT_RECOGNISED)
    user_handle = credential.response.user_handle
    # WebAuthn §7.2: a ceremony that named no account must get the account back from the
    # authenticator; any that names one must name the passkey's.
    handle_required = owner_id is None
    if (user_handle is None and handle_required) or (
        user_handle is not None and user_handle != passkey.user_id.bytes
    ):
        logger.info("passkey %s: the assertion does not name its account", passkey.id)
        raise AuthenticationError(ErrorReason.PASSKEY_VERIFICATION_FAILED)
    try:
        verified = passkeys.verify_assertion(
            relying_party=relying_party(settings),
            credential=credential,
            challenge=challenge,
            public_key=passkey.public_key,
        )
    except passkeys.CredentialRejectedError as error:
        logger.info("passkey %s refused: %s", passkey.id, error)
        raise AuthenticationError(ErrorReason.PASSKEY_VERIFICATION_FAILED) from error
    if verified.backup_eligible != passkey.backup_eligible:
        # §7.2: whether a credential may be backed up is fixed when it is made.
        logger.info("passkey %s refused: its backup eligibility changed", passkey.id)
        raise AuthenticationError(ErrorReason.PASSKEY_VERIFICATION_FAILED)
    stored_count = passkey.sign_count
    if not await passkeys_crud.record_use(
        session=session,
        passkey_id=passkey.id,
        sign_count=verified.sign_count,
        backed_up=verified.backed_up,
        now=now,
    ):
        # WebAuthn §6.1.1: a counter that does not grow means two copies of the key exist.
        logger.warning(
            "passkey %s refused: its signature counter went from %d to %d; the "
            "authenticator may have been cloned",
            passkey.id,
            stored_count,
            verified.sign_count,
        )
        raise AuthenticationError(ErrorReason.PASSKEY_VERIFICATION_FAILED)
    return ProvenPasskey(passkey=passkey, user_verified=verified.user_verified)


async def finish_passkey_sign_in(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    challenges: PasskeyChallengeStore,
    assertion: PasskeyAssertion,
    client: ClientInfo,
) -> IssuedTokens:
    """A session for the passkey's account. A passkey that verified its holder is two
    factors; one that did not is one, and an account with a second factor then asks for it
    (MfaRequiredError)."""
    proven = await prove_passkey(
        session=session,
        settings=settings,
        challenges=challenges,
        assertion=assertion,
        purpose=CeremonyPurpose.SIGN_IN,
        challenged_user_id=None,
        owner_id=None,
    )
    user = await users_crud.get_for_update(session=session, user_id=proven.passkey.user_id)
    if user is None:
        raise AuthenticationError(ErrorReason.PASSKEY_NOT_RECOGNISED)
    auth_service.ensure_may_sign_in(user=user, settings=settings)
    now = utc_now()
    if not proven.user_verified and await second_factor_enabled(session=session, user_id=user.id):
        required = await mfa_challenges.new_challenge(
            session=session,
            settings=settings,
            challenges=challenges,
            user_id=user.id,
            now=now,
            first_factor_methods=proven.auth_methods,
        )
        # The challenge and the passkey's counter are kept; no session starts yet.
        await session.commit()
        raise required
    issued = await auth_service.start_session(
        session=session,
        settings=settings,
        keys=keys,
        user=user,
        client=client,
        now=now,
        auth_methods=proven.auth_methods,
    )
    await session.commit()
    return issued
