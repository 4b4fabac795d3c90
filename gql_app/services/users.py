"""Reading users for administrators, and bootstrapping the first superuser."""

import logging
import uuid
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.crud import users as users_crud
from gql_app.crud.keyset import KeysetPosition
from gql_app.crud.users import UserFilter
from gql_app.db import release_connection
from gql_app.error_reasons import ErrorReason, FieldErrorCode
from gql_app.errors import ConflictError, FieldError, InputValidationError, NotFoundError
from gql_app.models import User
from gql_app.security.password_policy import assess_password
from gql_app.security.passwords import hash_password
from gql_app.services.accounts import create_user_or_conflict
from gql_app.services.pagination import decode_cursor, encode_cursor
from gql_app.services.validation import clean_search, normalize_email

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class UserEdge:
    cursor: str
    user: User


@dataclass(frozen=True, slots=True)
class UserPage:
    edges: list[UserEdge]
    has_next_page: bool
    has_previous_page: bool
    # The filter as applied (search cleaned), for counting all pages when a client asks.
    user_filter: UserFilter


async def list_users(
    *, session: AsyncSession, first: int, after: str | None, user_filter: UserFilter
) -> UserPage:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise InputValidationError.single(
            "first", FieldErrorCode.OUT_OF_RANGE, f"first must be between 1 and {MAX_PAGE_SIZE}"
        )
    search = clean_search(user_filter.search)
    if isinstance(search, FieldError):
        raise InputValidationError([search])
    user_filter = replace(user_filter, search=search)
    position = decode_cursor(after) if after is not None else None
    users = await users_crud.list_page(
        session=session, user_filter=user_filter, limit=first + 1, after=position
    )
    page = users[:first]
    edges = [
        UserEdge(cursor=encode_cursor(KeysetPosition(at=u.created_at, id=u.id)), user=u)
        for u in page
    ]
    return UserPage(
        edges=edges,
        has_next_page=len(users) > first,
        has_previous_page=position is not None,
        user_filter=user_filter,
    )


async def count_users(*, session: AsyncSession, user_filter: UserFilter) -> int:
    """Users matching a filter that list_users applied, on all pages."""
    return await users_crud.count(session=session, user_filter=user_filter)


async def users_by_id(*, session: AsyncSession, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    """The users of ``user_ids`` that exist, in one query."""
    found = await users_crud.get_many(session=session, user_ids=user_ids)
    return {user.id: user for user in found}


async def get_user(*, session: AsyncSession, user_id: str) -> User:
    try:
        parsed_id = uuid.UUID(user_id)
    except ValueError as error:
        raise InputValidationError.single(
            "id", FieldErrorCode.INVALID_ID, "Invalid user id"
        ) from error
    user = await users_crud.get_by_id(session=session, user_id=parsed_id)
    if user is None:
        raise NotFoundError(ErrorReason.USER_NOT_FOUND)
    return user


@dataclass(frozen=True, slots=True)
class EnsuredSuperuser:
    """The account behind the email, and whether this call created it."""

    user: User
    created: bool


async def ensure_superuser(*, session: AsyncSession, email: str, password: str) -> EnsuredSuperuser:
    """Create the superuser unless an account with that email exists; safe to repeat."""
    normalized = normalize_email(email)
    if isinstance(normalized, FieldError):
        raise InputValidationError([normalized])
    existing = await users_crud.get_by_email(session=session, email=normalized)
    if existing is not None:
        if not existing.is_superuser:
            logger.warning("First superuser email belongs to an ordinary account; left unchanged")
        return EnsuredSuperuser(user=existing, created=False)
    await release_connection(session)
    problem = await assess_password(password, email=normalized)
    if problem is not None:
        raise InputValidationError([problem.for_field("password")])
    try:
        user = await create_user_or_conflict(
            session=session,
            data=users_crud.NewUser(
                email=normalized,
                password_hash=await hash_password(password),
                is_superuser=True,
                is_verified=True,
            ),
        )
    except ConflictError:
        # Another worker created it between our read and our insert.
        found = await users_crud.get_by_email(session=session, email=normalized)
        if found is None:
            raise
        return EnsuredSuperuser(user=found, created=False)
    await session.commit()
    logger.info("Created the first superuser")
    return EnsuredSuperuser(user=user, created=True)
