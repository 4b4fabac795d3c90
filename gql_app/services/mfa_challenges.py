"""What a first factor that leaves a second one due (a right password, or a passkey without
user verification) leaves: a challenge, to be completed with the second factor
(services/mfa_sign_in.py)."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import mfa as mfa_crud
from gql_app.crud import passkeys as passkeys_crud
from gql_app.errors import MfaRequiredError
from gql_app.security import passkeys, tokens
from gql_app.security.passkeys import PasskeyOptions
from gql_app.services.mfa import MfaMethod
from gql_app.services.passkey_challenges import (
    CeremonyPurpose,
    PasskeyChallengeStore,
    issue_challenge,
)
from gql_app.services.passkeys import known_credentials, relying_party
from gql_app.services.recent_authentication import HARDWARE_KEY_METHOD

CHALLENGE_SECONDS = 300
# Wrong factors a challenge takes before it is dead and the sign-in starts again.
MAX_FAILED_FACTORS = 5


async def new_challenge(
    *,
    session: AsyncSession,
    settings: Settings,
    challenges: PasskeyChallengeStore,
    user_id: uuid.UUID,
    now: datetime,
    first_factor_methods: list[str],
) -> MfaRequiredError:
    """The challenge, stored hashed, as the error the sign-in answers with; with the
    account's passkeys as a way to complete it, unless a passkey was the first step."""
    token = tokens.new_opaque_token()
    await mfa_crud.create_challenge(
        session=session,
        user_id=user_id,
        token_hash=tokens.hash_opaque_token(token),
        now=now,
        expires_at=now + timedelta(seconds=CHALLENGE_SECONDS),
        first_factor_methods=first_factor_methods,
    )
    remaining = await mfa_crud.count_unused_recovery_codes(session=session, user_id=user_id)
    methods = [MfaMethod.TOTP] + ([MfaMethod.RECOVERY_CODE] if remaining else [])
    passkey_options = None
    if HARDWARE_KEY_METHOD not in first_factor_methods:
        passkey_options = await _passkey_ceremony(
            session=session, settings=settings, challenges=challenges, user_id=user_id, now=now
        )
    if passkey_options is not None:
        methods.append(MfaMethod.PASSKEY)
    return MfaRequiredError(
        challenge=token,
        methods=[method.value for method in methods],
        expires_in=CHALLENGE_SECONDS,
        passkey_options=passkey_options,
    )


async def _passkey_ceremony(
    *,
    session: AsyncSession,
    settings: Settings,
    challenges: PasskeyChallengeStore,
    user_id: uuid.UUID,
    now: datetime,
) -> PasskeyOptions | None:
    held = await passkeys_crud.list_for_user(session=session, user_id=user_id)
    if not held:
        return None
    challenge_id, challenge = await issue_challenge(
        session=session,
        store=challenges,
        purpose=CeremonyPurpose.SECOND_FACTOR,
        user_id=user_id,
        now=now,
    )
    options = passkeys.authentication_options(
        relying_party=relying_party(settings), challenge=challenge, allowed=known_credentials(held)
    )
    return PasskeyOptions(challenge_id=challenge_id, options=options)
