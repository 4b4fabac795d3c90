"""Single-use tokens sent by email: issued hashed, redeemed exactly once."""

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import action_tokens as action_tokens_crud
from gql_app.error_reasons import FieldErrorCode
from gql_app.errors import EmailDeliveryError, InputValidationError
from gql_app.models import ActionToken, ActionTokenPurpose, User
from gql_app.models.base import utc_now
from gql_app.security import tokens

INVALID_ACTION_TOKEN = "This link is invalid or has expired"  # noqa: S105 - a message


def invalid_action_token() -> InputValidationError:
    """BAD_USER_INPUT on ``token``: unknown, spent, expired or no longer for its account."""
    return InputValidationError.single("token", FieldErrorCode.INVALID_TOKEN, INVALID_ACTION_TOKEN)


async def deliver(
    *,
    session: AsyncSession,
    user: User,
    purpose: ActionTokenPurpose,
    lifetime_seconds: int,
    send: Callable[[str], Awaitable[None]],
) -> None:
    """Mail a new token to the user's current address with ``send``.

    Once it is sent, earlier tokens of this purpose stop working; when it cannot be sent
    (EmailDeliveryError, raised on), they keep working and the new one never does. The mail
    server may take seconds to answer or to time out: no transaction is open meanwhile.
    """
    token = tokens.new_opaque_token()
    issued = await action_tokens_crud.create(
        session=session,
        data=action_tokens_crud.NewActionToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=tokens.hash_opaque_token(token),
            email=user.email,
            expires_at=utc_now() + timedelta(seconds=lifetime_seconds),
        ),
    )
    # Stored before the mail server is talked to, so no connection waits on it.
    await session.commit()
    try:
        await send(token)
    except EmailDeliveryError:
        await action_tokens_crud.spend(session=session, action_token=issued, now=utc_now())
        # The unsent token never works; the links sent before it still do.
        await session.commit()
        raise
    # Only tokens older than this one: of two deliveries in flight, neither spends the other's
    # newer link, and the newest stands.
    await action_tokens_crud.use_all_for_user(
        session=session,
        user_id=user.id,
        purpose=purpose,
        now=utc_now(),
        created_before=issued.created_at,
    )
    await session.commit()


async def redeem(*, session: AsyncSession, token: str, purpose: ActionTokenPurpose) -> ActionToken:
    """Spend the token, or raise BAD_USER_INPUT on ``token``; of two racing requests one wins."""
    action_token = await find_usable(session=session, token=token, purpose=purpose)
    await spend(session=session, action_token=action_token)
    return action_token


async def find_usable(
    *, session: AsyncSession, token: str, purpose: ActionTokenPurpose
) -> ActionToken:
    """The unspent, unexpired token, or BAD_USER_INPUT on ``token``; nothing is spent."""
    action_token = await action_tokens_crud.get_by_hash(
        session=session, token_hash=tokens.hash_opaque_token(token), purpose=purpose
    )
    if action_token is None or not action_token.is_usable(now=utc_now()):
        raise invalid_action_token()
    return action_token


async def spend(*, session: AsyncSession, action_token: ActionToken) -> None:
    """Mark a found token used, or BAD_USER_INPUT on ``token`` if another request did first."""
    if not await action_tokens_crud.spend(
        session=session, action_token=action_token, now=utc_now()
    ):
        raise invalid_action_token()


async def spend_all(*, session: AsyncSession, user: User, purpose: ActionTokenPurpose) -> None:
    await action_tokens_crud.use_all_for_user(
        session=session, user_id=user.id, purpose=purpose, now=utc_now()
    )
