"""Confirming that a user reads the email address on their account."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import users as users_crud
from gql_app.email.service import EmailService
from gql_app.models import ActionTokenPurpose, User
from gql_app.services import action_tokens
from gql_app.services.client_info import ClientInfo
from gql_app.services.jobs import JobContext
from gql_app.services.security_events import SecurityEventType, masked_email, record_security_event
from gql_app.services.viewer import Viewer

PURPOSE = ActionTokenPurpose.EMAIL_VERIFICATION


async def request_email_verification(
    *, session: AsyncSession, settings: Settings, email: EmailService, viewer: Viewer
) -> None:
    """Mail a fresh verification link now; EmailDeliveryError tells the caller it failed."""
    if viewer.user.is_verified:
        return
    await send_verification(session=session, settings=settings, email=email, user=viewer.user)


async def deliver_email_verification(context: JobContext, *, user_id: uuid.UUID) -> None:
    user = await users_crud.get_by_id(session=context.session, user_id=user_id)
    if user is None or user.is_verified or not user.is_active:
        return
    await send_verification(
        session=context.session, settings=context.settings, email=context.email, user=user
    )


async def send_verification(
    *, session: AsyncSession, settings: Settings, email: EmailService, user: User
) -> None:
    recipient = user.email

    async def send(token: str) -> None:
        await email.send_email_verification(to=recipient, token=token)

    await action_tokens.deliver(
        session=session,
        user=user,
        purpose=PURPOSE,
        lifetime_seconds=settings.email_verification_token_expire_seconds,
        send=send,
    )


async def verify_email(
    *, session: AsyncSession, token: str, client: ClientInfo | None = None
) -> User:
    action_token = await action_tokens.redeem(session=session, token=token, purpose=PURPOSE)
    user = await users_crud.get_by_id(session=session, user_id=action_token.user_id)
    if user is None or not user.is_active or user.email != action_token.email:
        raise action_tokens.invalid_action_token()
    await users_crud.update(session=session, user=user, values={"is_verified": True})
    await action_tokens.spend_all(session=session, user=user, purpose=PURPOSE)
    await record_security_event(
        session=session,
        type=SecurityEventType.EMAIL_VERIFIED,
        user_id=user.id,
        client=client,
        details={"email": masked_email(user.email)},
    )
    await session.commit()
    return user
