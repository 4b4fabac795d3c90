"""What a right password on an account with a second factor leaves: a challenge, to be
completed with the factor (services/mfa_sign_in.py)."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import mfa as mfa_crud
from gql_app.errors import MfaRequiredError
from gql_app.security import tokens

CHALLENGE_SECONDS = 300
# Wrong factors a challenge takes before it is dead and the sign-in starts again.
MAX_FAILED_FACTORS = 5


async def new_challenge(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> MfaRequiredError:
    """The challenge, stored hashed, as the error the sign-in answers with."""
    token = tokens.new_opaque_token()
    await mfa_crud.create_challenge(
        session=session,
        user_id=user_id,
        token_hash=tokens.hash_opaque_token(token),
        now=now,
        expires_at=now + timedelta(seconds=CHALLENGE_SECONDS),
    )
    remaining = await mfa_crud.count_unused_recovery_codes(session=session, user_id=user_id)
    methods = ["TOTP"] + (["RECOVERY_CODE"] if remaining else [])
    return MfaRequiredError(challenge=token, methods=methods, expires_in=CHALLENGE_SECONDS)
