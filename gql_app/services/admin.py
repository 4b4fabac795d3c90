"""Superusers managing other accounts."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import auth_sessions as sessions_crud
from gql_app.crud import users as users_crud
from gql_app.db import release_connection
from gql_app.error_reasons import ErrorReason
from gql_app.errors import (
    InputValidationError,
    NotFoundError,
    PermissionDeniedError,
)
from gql_app.models import User
from gql_app.models.base import utc_now
from gql_app.security.passwords import hash_password
from gql_app.services.account_deletion import delete_account
from gql_app.services.accounts import (
    create_user_or_conflict,
    end_password_credentials,
    ensure_another_superuser,
    ensure_email_free,
    password_problem,
    profile_changes,
    save_user_or_conflict,
)
from gql_app.services.auth import Registration, validated_new_user
from gql_app.services.email_verification import deliver_email_verification
from gql_app.services.jobs import JobScheduler
from gql_app.services.security_events import SecurityEventType, record_security_event
from gql_app.services.users import get_user
from gql_app.services.viewer import Viewer


@dataclass(frozen=True, slots=True)
class NewAccount:
    email: str
    password: str
    full_name: str | None = None
    is_active: bool = True
    is_superuser: bool = False
    is_verified: bool = False


@dataclass(frozen=True, slots=True)
class AccountChanges:
    """None leaves a field as it is."""

    email: str | None = None
    full_name: str | None = None
    password: str | None = None
    is_active: bool | None = None
    is_superuser: bool | None = None
    is_verified: bool | None = None


async def create_user(*, session: AsyncSession, data: NewAccount, jobs: JobScheduler) -> User:
    # The superuser was read in this session's transaction; hashing holds no connection.
    await release_connection(session)
    new_user = await validated_new_user(
        Registration(email=data.email, password=data.password, full_name=data.full_name)
    )
    await ensure_email_free(session=session, email=new_user.email)
    user = await create_user_or_conflict(
        session=session,
        data=users_crud.NewUser(
            email=new_user.email,
            password_hash=new_user.password_hash,
            full_name=new_user.full_name,
            is_active=data.is_active,
            is_superuser=data.is_superuser,
            is_verified=data.is_verified,
        ),
    )
    await session.commit()
    if not user.is_verified:
        jobs.schedule(deliver_email_verification, user_id=user.id)
    return user


async def update_user(
    *,
    session: AsyncSession,
    user_id: str,
    changes: AccountChanges,
    viewer: Viewer | None = None,
) -> User:
    """``viewer``: the superuser making the change, for the account's security events."""
    user = await get_user(session=session, user_id=user_id)
    # Validating may hash a new password: no connection waits on it.
    await release_connection(session)
    values = await _validated_changes(user, changes)
    loses_power = values.get("is_active") is False or values.get("is_superuser") is False
    # The superusers are locked before the account, as delete_user locks them: two
    # superusers demoting each other at once then wait for one another instead of each
    # holding one row and waiting for the other's (a deadlock the database ends with an error).
    superusers = await users_crud.lock_active_superusers(session=session) if loses_power else ()
    # Written to the account as it is now: deleted meanwhile, it is not found.
    found = await users_crud.get_for_update(session=session, user_id=user.id)
    if found is None:
        raise NotFoundError(ErrorReason.USER_NOT_FOUND)
    if "email" in values:
        await ensure_email_free(session=session, email=values["email"])
    if loses_power and user.is_superuser and user.is_active:
        ensure_another_superuser(superusers, user=user)
    await save_user_or_conflict(session=session, user=user, values=values)
    if "password_hash" in values:
        await end_password_credentials(session=session, user=user)
    elif values.get("is_active") is False:
        await sessions_crud.revoke_all_for_user(session=session, user_id=user.id, now=utc_now())
    if not values:
        await session.commit()
        return user
    await _record_admin_event(
        session=session,
        viewer=viewer,
        user=user,
        type=SecurityEventType.ACCOUNT_UPDATED_BY_ADMIN,
        # Which fields, never their values: a password above all.
        details={"changed": sorted(_FIELD_NAMES.get(name, name) for name in values)},
    )
    if values.get("is_active") is False:
        await _record_admin_event(
            session=session, viewer=viewer, user=user, type=SecurityEventType.ACCOUNT_DISABLED
        )
    if "password_hash" in values:
        # The owner hears of a password they did not set (PASSWORD_CHANGED is mailed).
        await _record_admin_event(
            session=session, viewer=viewer, user=user, type=SecurityEventType.PASSWORD_CHANGED
        )
    await session.commit()
    return user


# What the API calls the columns an update sets.
_FIELD_NAMES = {
    "password_hash": "password",
    "full_name": "fullName",
    "is_active": "isActive",
    "is_superuser": "isSuperuser",
    "is_verified": "isVerified",
}


async def _record_admin_event(
    *,
    session: AsyncSession,
    viewer: Viewer | None,
    user: User,
    type: SecurityEventType,
    details: dict[str, Any] | None = None,
) -> None:
    by = {"by_admin": str(viewer.user.id)} if viewer is not None else {}
    # Not the superuser's address, client or session: the account's owner reads this event,
    # and those are the superuser's own.
    await record_security_event(
        session=session, type=type, user_id=user.id, details={**(details or {}), **by}
    )


async def delete_user(*, session: AsyncSession, viewer: Viewer, user_id: str) -> None:
    user = await get_user(session=session, user_id=user_id)
    if user.id == viewer.user.id:
        raise PermissionDeniedError(ErrorReason.CANNOT_DELETE_OWN_ACCOUNT)
    await delete_account(session=session, user=user, viewer=viewer)
    await session.commit()


async def _validated_changes(user: User, changes: AccountChanges) -> dict[str, Any]:
    values, problems = profile_changes(user, email=changes.email, full_name=changes.full_name)
    for flag in ("is_active", "is_superuser", "is_verified"):
        value = getattr(changes, flag)
        if value is not None:
            values[flag] = value
    if changes.password is not None:
        problem = await password_problem(
            changes.password,
            user_email=values.get("email", user.email),
            field="password",
            full_name=values.get("full_name", user.full_name),
        )
        if problem is not None:
            problems.append(problem)
    if problems:
        raise InputValidationError(problems)
    if changes.password is not None:
        values["password_hash"] = await hash_password(changes.password)
    return values
