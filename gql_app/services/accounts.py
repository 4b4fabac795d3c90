"""Self-service account changes: profile, password change and password reset."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import auth_sessions as sessions_crud
from gql_app.crud import users as users_crud
from gql_app.db import release_connection
from gql_app.error_reasons import ErrorReason, FieldErrorCode
from gql_app.errors import (
    ConflictError,
    FieldError,
    InputValidationError,
)
from gql_app.models import ActionToken, ActionTokenPurpose, User
from gql_app.models.base import utc_now
from gql_app.security.password_policy import assess_password
from gql_app.security.passwords import hash_password, verify_password
from gql_app.services import action_tokens
from gql_app.services import mfa as mfa_service
from gql_app.services.client_info import ClientInfo
from gql_app.services.email_verification import deliver_email_verification
from gql_app.services.jobs import JobContext, JobScheduler
from gql_app.services.recent_authentication import require_recent_authentication
from gql_app.services.security_events import (
    SecurityEventType,
    masked_email,
    record_security_event,
    record_viewer_event,
)
from gql_app.services.security_notices import deliver_email_change_notice
from gql_app.services.validation import clean_full_name, normalize_email
from gql_app.services.viewer import Viewer

RESET = ActionTokenPurpose.PASSWORD_RESET


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    """None leaves a field as it is; an empty full name clears it."""

    full_name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class PasswordChange:
    current_password: str
    new_password: str


@dataclass(frozen=True, slots=True)
class PasswordReset:
    token: str
    new_password: str


async def update_me(
    *,
    session: AsyncSession,
    settings: Settings,
    viewer: Viewer,
    changes: ProfileChanges,
    jobs: JobScheduler,
) -> User:
    user = viewer.user
    values, problems = profile_changes(user, email=changes.email, full_name=changes.full_name)
    if problems:
        raise InputValidationError(problems)
    if "email" in values:
        # The address is where password resets go: a stolen session must not move it.
        await _require_recent_authentication(session=session, settings=settings, viewer=viewer)
        await ensure_email_free(session=session, email=values["email"])
    previous_email = user.email
    await save_user_or_conflict(session=session, user=user, values=values)
    if "email" in values:
        event_id = await record_viewer_event(
            session=session,
            viewer=viewer,
            type=SecurityEventType.EMAIL_CHANGE_REQUESTED,
            details={"from": masked_email(previous_email), "to": masked_email(values["email"])},
        )
    await session.commit()
    if "email" in values:
        jobs.schedule(deliver_email_verification, user_id=user.id)
        # The address that loses the account hears of it: a thief's first move is this one.
        jobs.schedule(
            deliver_email_change_notice,
            previous_email=previous_email,
            new_email=values["email"],
            event_id=event_id,
        )
    return user


def profile_changes(
    user: User, *, email: str | None, full_name: str | None
) -> tuple[dict[str, Any], list[FieldError]]:
    """The column values a profile edit sets, and what is wrong with it. None: unchanged."""
    values: dict[str, Any] = {}
    problems: list[FieldError] = []
    if full_name is not None:
        cleaned = clean_full_name(full_name)
        if isinstance(cleaned, FieldError):
            problems.append(cleaned)
        else:
            values["full_name"] = cleaned
    if email is not None:
        normalized = normalize_email(email)
        if isinstance(normalized, FieldError):
            problems.append(normalized)
        elif normalized != user.email:
            # A new address is unconfirmed until its owner follows the link sent to it.
            values.update(email=normalized, is_verified=False)
    return values, problems


async def ensure_email_free(*, session: AsyncSession, email: str) -> None:
    if await users_crud.get_by_email(session=session, email=email) is not None:
        raise ConflictError(ErrorReason.EMAIL_TAKEN)


async def create_user_or_conflict(*, session: AsyncSession, data: users_crud.NewUser) -> User:
    try:
        return await users_crud.create(session=session, data=data)
    except IntegrityError as error:
        # A concurrent request won the race for this email.
        await session.rollback()
        raise ConflictError(ErrorReason.EMAIL_TAKEN) from error


async def save_user_or_conflict(
    *, session: AsyncSession, user: User, values: dict[str, Any]
) -> None:
    try:
        await users_crud.update(session=session, user=user, values=values)
    except IntegrityError as error:
        # Another request took the email between our check and our write.
        await session.rollback()
        raise ConflictError(ErrorReason.EMAIL_TAKEN) from error


async def password_problem(
    password: str, *, user_email: str, field: str, full_name: str | None = None
) -> FieldError | None:
    problem = await assess_password(password, email=user_email, full_name=full_name)
    return None if problem is None else problem.for_field(field)


async def new_password_hash(
    password: str, *, user_email: str, field: str, full_name: str | None = None
) -> str:
    problem = await password_problem(
        password, user_email=user_email, field=field, full_name=full_name
    )
    if problem is not None:
        raise InputValidationError([problem])
    return await hash_password(password)


CURRENT_PASSWORD_INCORRECT = "Current password is incorrect"  # noqa: S105 - a message


async def change_password(
    *, session: AsyncSession, settings: Settings, viewer: Viewer, change: PasswordChange
) -> None:
    """Replace the password the viewer proves they know; every other session ends.

    Serial per account: of concurrent changes, the first to write wins and keeps its
    session; the others find the password they proved no longer current. On an account
    with a second factor, the current password alone is not enough: the session must have
    proved the second factor recently too.
    """
    user = viewer.user
    if await mfa_service.second_factor_enabled(session=session, user_id=user.id):
        require_recent_authentication(viewer=viewer, settings=settings, has_second_factor=True)
    # The viewer was read in this session's transaction; hashing holds no connection.
    await release_connection(session)
    proved_hash = user.password_hash
    if not (await verify_password(change.current_password, proved_hash)).valid:
        raise _wrong_current_password()
    password_hash = await new_password_hash(
        change.new_password, user_email=user.email, field="new_password", full_name=user.full_name
    )
    replaced = await users_crud.replace_password_hash(
        session=session, user=user, expected=proved_hash, password_hash=password_hash
    )
    if not replaced:
        raise _wrong_current_password()
    await end_password_credentials(session=session, user=user, keep_session=viewer)
    await record_viewer_event(
        session=session, viewer=viewer, type=SecurityEventType.PASSWORD_CHANGED
    )
    await session.commit()


def _wrong_current_password() -> InputValidationError:
    return InputValidationError.single(
        "current_password", FieldErrorCode.WRONG_PASSWORD, CURRENT_PASSWORD_INCORRECT
    )


async def end_password_credentials(
    *, session: AsyncSession, user: User, keep_session: Viewer | None = None
) -> None:
    """After a password changes: other sessions end and reset links stop working."""
    await sessions_crud.revoke_all_for_user(
        session=session,
        user_id=user.id,
        now=utc_now(),
        except_session_id=keep_session.auth_session.id if keep_session else None,
    )
    await action_tokens.spend_all(session=session, user=user, purpose=RESET)
    # A sign-in the old password started must not be finished with a second factor.
    await mfa_service.end_pending_sign_ins(session=session, user_id=user.id)


def request_password_reset(*, email: str, jobs: JobScheduler) -> None:
    """Answer at once and alike for every address; the lookup and the mail happen afterwards."""
    normalized = normalize_email(email)
    if isinstance(normalized, FieldError):
        raise InputValidationError([normalized])
    jobs.schedule(deliver_password_reset, email=normalized)


async def deliver_password_reset(context: JobContext, *, email: str) -> None:
    session = context.session
    user = await users_crud.get_by_email(session=session, email=email)
    if user is None or not user.is_active:
        return
    recipient = user.email

    async def send(token: str) -> None:
        await context.email.send_password_reset(to=recipient, token=token)

    # The request came in with no account named, and was answered before this job ran:
    # the event has no client to tell of.
    await record_security_event(
        session=session, type=SecurityEventType.PASSWORD_RESET_REQUESTED, user_id=user.id
    )

    await action_tokens.deliver(
        session=session,
        user=user,
        purpose=RESET,
        lifetime_seconds=context.settings.password_reset_token_expire_seconds,
        send=send,
    )


async def reset_password(
    *, session: AsyncSession, reset: PasswordReset, client: ClientInfo | None = None
) -> None:
    action_token = await action_tokens.find_usable(
        session=session, token=reset.token, purpose=RESET
    )
    user = await _reset_target(session=session, action_token=action_token, lock=False)
    await release_connection(session)
    password_hash = await new_password_hash(
        reset.new_password, user_email=user.email, field="new_password", full_name=user.full_name
    )
    # The short transaction that writes: the account as it is now (it may have been
    # deactivated, renamed or deleted while the password was hashed), and the link spent only
    # now, so that of two resets racing with one link one spends it and the other is refused.
    user = await _reset_target(session=session, action_token=action_token, lock=True)
    await action_tokens.spend(session=session, action_token=action_token)
    await users_crud.update(
        session=session,
        user=user,
        # The link reached this address, which proves the user reads it.
        values={"password_hash": password_hash, "is_verified": True},
    )
    await end_password_credentials(session=session, user=user)
    await record_security_event(
        session=session, type=SecurityEventType.PASSWORD_RESET, user_id=user.id, client=client
    )
    await session.commit()


async def _reset_target(*, session: AsyncSession, action_token: ActionToken, lock: bool) -> User:
    """The account a reset link was sent for, if it still may use it."""
    if lock:
        user = await users_crud.get_for_update(session=session, user_id=action_token.user_id)
    else:
        user = await users_crud.get_by_id(session=session, user_id=action_token.user_id)
    if user is None or not user.is_active or user.email != action_token.email:
        raise action_tokens.invalid_action_token()
    return user


async def _require_recent_authentication(
    *, session: AsyncSession, settings: Settings, viewer: Viewer
) -> None:
    has_second_factor = await mfa_service.second_factor_enabled(
        session=session, user_id=viewer.user.id
    )
    require_recent_authentication(
        viewer=viewer, settings=settings, has_second_factor=has_second_factor
    )


async def ensure_another_active_superuser(*, session: AsyncSession, user: User) -> None:
    ensure_another_superuser(await users_crud.lock_active_superusers(session=session), user=user)


def ensure_another_superuser(active_superusers: Sequence[uuid.UUID], *, user: User) -> None:
    if all(superuser_id == user.id for superuser_id in active_superusers):
        raise ConflictError(ErrorReason.LAST_SUPERUSER)
