"""Deleting an account, by a superuser or by its owner: what goes with it, and what of its
security trail stays."""

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import users as users_crud
from gql_app.models import User
from gql_app.services.accounts import ensure_another_active_superuser
from gql_app.services.security_events import (
    SecurityEventType,
    forget_account,
    record_security_event,
)
from gql_app.services.viewer import Viewer


async def delete_account(*, session: AsyncSession, user: User, viewer: Viewer) -> None:
    """The account and everything of it (sessions, tokens, factors, passkeys go by ON DELETE
    CASCADE), in the caller's transaction. Its security events stay, for the abuse an
    admin may still have to answer for, but lose the account, the addresses and the user
    agents: nothing in them names a person any more. The caller commits."""
    if user.is_superuser and user.is_active:
        await ensure_another_active_superuser(session=session, user=user)
    await forget_account(session=session, user_id=user.id)
    await users_crud.delete(session=session, user=user)
    by_owner = viewer.user.id == user.id
    details = {"account_id": str(user.id)}
    if not by_owner:
        details["by_admin"] = str(viewer.user.id)
    await record_security_event(
        session=session,
        type=SecurityEventType.ACCOUNT_DELETED,
        user_id=None,
        # The owner's own address and client are what deletion forgets.
        client=None if by_owner else viewer.client,
        session_id=None if by_owner else viewer.auth_session.id,
        # The id alone names no one once the account is gone, and lets an admin answer what
        # became of it.
        details=details,
    )
