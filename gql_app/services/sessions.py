"""A user's own sessions: listing them and ending them."""

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import auth_sessions as sessions_crud
from gql_app.error_reasons import ErrorReason, FieldErrorCode
from gql_app.errors import InputValidationError, NotFoundError
from gql_app.models import AuthSession
from gql_app.models.base import utc_now
from gql_app.services.security_events import SecurityEventType, record_viewer_event
from gql_app.services.viewer import Viewer


async def list_sessions(*, session: AsyncSession, viewer: Viewer) -> Sequence[AuthSession]:
    return await sessions_crud.list_active_for_user(
        session=session, user_id=viewer.user.id, now=utc_now()
    )


async def logout_all(*, session: AsyncSession, viewer: Viewer) -> None:
    await sessions_crud.revoke_all_for_user(session=session, user_id=viewer.user.id, now=utc_now())
    await record_viewer_event(
        session=session, viewer=viewer, type=SecurityEventType.ALL_SESSIONS_REVOKED
    )
    await session.commit()


async def revoke_session(*, session: AsyncSession, viewer: Viewer, session_id: str) -> uuid.UUID:
    """End one of the viewer's sessions; the id of the session revoked."""
    try:
        parsed_id = uuid.UUID(session_id)
    except ValueError as error:
        raise InputValidationError.single(
            "id", FieldErrorCode.INVALID_ID, "Invalid session id"
        ) from error
    auth_session = await sessions_crud.get_for_user(
        session=session, session_id=parsed_id, user_id=viewer.user.id
    )
    if auth_session is None:
        # Someone else's session looks exactly like one that does not exist.
        raise NotFoundError(ErrorReason.SESSION_NOT_FOUND)
    await sessions_crud.revoke(session=session, auth_session=auth_session, now=utc_now())
    await record_viewer_event(
        session=session,
        viewer=viewer,
        type=SecurityEventType.SESSION_REVOKED,
        details={"revoked_session_id": str(auth_session.id)},
    )
    await session.commit()
    return auth_session.id
