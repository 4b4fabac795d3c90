"""Single-use tokens sent by email: issued hashed, redeemed exactly once."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import action_tokens as action_tokens_crud
from gql_app.errors import InputValidationError
from gql_app.models import ActionToken, ActionTokenPurpose, User
from gql_app.models.base import utc_now
from gql_app.security import tokens

INVALID_ACTION_TOKEN = "This link is invalid or has expired"  # noqa: S105 - a message


async def issue(
    *, session: AsyncSession, user: User, purpose: ActionTokenPurpose, lifetime_seconds: int
) -> str:
    """A new token for the user's current address; earlier ones of this purpose stop working."""
    now = utc_now()
    await spend_all(session=session, user=user, purpose=purpose)
    token = tokens.new_opaque_token()
    await action_tokens_crud.create(
        session=session,
        data=action_tokens_crud.NewActionToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=tokens.hash_opaque_token(token),
            email=user.email,
            expires_at=now + timedelta(seconds=lifetime_seconds),
        ),
    )
    return token


async def redeem(*, session: AsyncSession, token: str, purpose: ActionTokenPurpose) -> ActionToken:
    """Spend the token, or raise BAD_USER_INPUT on ``token``; of two racing requests one wins."""
    action_token = await action_tokens_crud.get_by_hash(
        session=session, token_hash=tokens.hash_opaque_token(token), purpose=purpose
    )
    now = utc_now()
    if action_token is None or not action_token.is_usable(now=now):
        raise InputValidationError.single("token", INVALID_ACTION_TOKEN)
    if not await action_tokens_crud.spend(session=session, action_token=action_token, now=now):
        raise InputValidationError.single("token", INVALID_ACTION_TOKEN)
    return action_token


async def spend_all(*, session: AsyncSession, user: User, purpose: ActionTokenPurpose) -> None:
    await action_tokens_crud.use_all_for_user(
        session=session, user_id=user.id, purpose=purpose, now=utc_now()
    )
