"""Registration, login and resolving who an access token belongs to."""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.crud import auth_sessions as sessions_crud
from gql_app.crud import refresh_tokens as refresh_tokens_crud
from gql_app.crud import users as users_crud
from gql_app.db import release_connection
from gql_app.error_reasons import ErrorReason, FieldErrorCode
from gql_app.errors import (
    AuthenticationError,
    ConflictError,
    FieldError,
    InputValidationError,
    InvalidCredentialsError,
    PermissionDeniedError,
)
from gql_app.models import AuthSession, User
from gql_app.models.base import utc_now
from gql_app.security import tokens
from gql_app.security.password_policy import MAX_LENGTH, assess_password
from gql_app.security.passwords import hash_password, verify_against_dummy, verify_password
from gql_app.services import mfa as mfa_service
from gql_app.services import mfa_challenges, security_events
from gql_app.services.accounts import create_user_or_conflict, ensure_email_free
from gql_app.services.client_info import ClientInfo
from gql_app.services.email_verification import deliver_email_verification
from gql_app.services.jobs import JobContext, JobScheduler
from gql_app.services.key_ring import KeyRing
from gql_app.services.passkey_challenges import PasskeyChallengeStore
from gql_app.services.recent_authentication import PASSWORD_METHOD
from gql_app.services.security_events import SecurityEventType
from gql_app.services.validation import clean_full_name, normalize_email
from gql_app.services.viewer import Viewer

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Registration:
    email: str
    password: str
    full_name: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    email: str
    password: str


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    # Seconds until the session itself ends: how long the refresh token can serve.
    session_expires_in: int


async def register(
    *, session: AsyncSession, data: Registration, jobs: JobScheduler, conceal_existing: bool = False
) -> User:
    """Create the account and mail its verification link.

    An address in use answers CONFLICT (EMAIL_TAKEN), which tells anyone that it has an
    account. With ``conceal_existing`` it answers like a new registration instead, after the
    same validation and hashing, and the owner is told by email that someone tried.
    """
    new_user = await validated_new_user(data)
    try:
        await ensure_email_free(session=session, email=new_user.email)
        user = await create_user_or_conflict(session=session, data=new_user)
    except ConflictError:
        if not conceal_existing:
            raise
        await release_connection(session)
        jobs.schedule(deliver_registration_attempt_notice, email=new_user.email)
        return unsaved_user(new_user)
    await session.commit()
    jobs.schedule(deliver_email_verification, user_id=user.id)
    return user


def unsaved_user(data: users_crud.NewUser) -> User:
    """What a new registration answers with, for an account that is never stored."""
    now = utc_now()
    return User(
        id=uuid.uuid4(),
        email=data.email,
        password_hash=data.password_hash,
        full_name=data.full_name,
        is_active=data.is_active,
        is_superuser=data.is_superuser,
        is_verified=data.is_verified,
        created_at=now,
        updated_at=now,
    )


async def deliver_registration_attempt_notice(context: JobContext, *, email: str) -> None:
    user = await users_crud.get_by_email(session=context.session, email=email)
    if user is None or not user.is_active:
        return
    recipient = user.email
    await release_connection(context.session)
    await context.email.send_registration_attempt(to=recipient)


async def validated_new_user(data: Registration) -> users_crud.NewUser:
    problems: list[FieldError] = []
    email = normalize_email(data.email)
    if isinstance(email, FieldError):
        problems.append(email)
    full_name = clean_full_name(data.full_name)
    if isinstance(full_name, FieldError):
        problems.append(full_name)
    policy_problem = await assess_password(
        data.password,
        email=email if isinstance(email, str) else data.email,
        full_name=full_name if isinstance(full_name, str) else None,
    )
    if policy_problem is not None:
        problems.append(policy_problem.for_field("password"))
    if problems:
        raise InputValidationError(problems)
    assert isinstance(email, str)
    assert not isinstance(full_name, FieldError)
    return users_crud.NewUser(
        email=email, password_hash=await hash_password(data.password), full_name=full_name
    )


async def login(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    challenges: PasskeyChallengeStore,
    credentials: Credentials,
    client: ClientInfo,
) -> IssuedTokens:
    email = normalize_email(credentials.email)
    if isinstance(email, FieldError):
        raise InputValidationError([email])
    if not credentials.password:
        raise InputValidationError.single(
            "password", FieldErrorCode.REQUIRED, "Password is required"
        )
    if len(credentials.password) > MAX_LENGTH:
        raise InputValidationError.single(
            "password",
            FieldErrorCode.TOO_LONG,
            f"Password must be at most {MAX_LENGTH} characters long",
        )

    found = await users_crud.get_by_email(session=session, email=email)
    # Checking the password takes a hashing thread for a while: no connection waits on it.
    await release_connection(session)
    if found is None:
        await verify_against_dummy(credentials.password)
        await _record_failed_sign_in(
            session=session, settings=settings, email=email, user_id=None, client=client
        )
        raise InvalidCredentialsError
    checked_hash = found.password_hash
    verification = await verify_password(credentials.password, checked_hash)
    if not verification.valid:
        await _record_failed_sign_in(
            session=session, settings=settings, email=email, user_id=found.id, client=client
        )
        raise InvalidCredentialsError
    # A short transaction writes the session, on the user as it is now (locked): a password
    # changed while this one was being checked, or an account deleted, signs nobody in.
    user = await users_crud.get_for_update(session=session, user_id=found.id)
    if user is None or user.password_hash != checked_hash:
        raise InvalidCredentialsError
    ensure_may_sign_in(user=user, settings=settings)
    if verification.updated_hash is not None:
        await users_crud.set_password_hash(
            session=session, user=user, password_hash=verification.updated_hash
        )

    now = utc_now()
    if await mfa_service.second_factor_enabled(session=session, user_id=user.id):
        required = await mfa_challenges.new_challenge(
            session=session,
            settings=settings,
            challenges=challenges,
            user_id=user.id,
            now=now,
            first_factor_methods=[PASSWORD_METHOD],
        )
        # The challenge (and a rehashed password) are kept; no session starts yet.
        await session.commit()
        raise required
    issued = await start_session(
        session=session,
        settings=settings,
        keys=keys,
        user=user,
        client=client,
        now=now,
        auth_methods=[PASSWORD_METHOD],
    )
    await session.commit()
    return issued


async def _record_failed_sign_in(
    *,
    session: AsyncSession,
    settings: Settings,
    email: str,
    user_id: uuid.UUID | None,
    client: ClientInfo,
) -> None:
    """Both a wrong password and an address no account uses leave one event and one commit,
    so neither answers sooner. The stranger's address is kept as a keyed hash only."""
    await security_events.record_security_event(
        session=session,
        type=SecurityEventType.SIGN_IN_FAILED,
        user_id=user_id,
        client=client,
        email_hash=security_events.address_hash(email, settings=settings)
        if user_id is None
        else None,
    )
    # Committed now: the failure is recorded though an error is answered.
    await session.commit()


def ensure_may_sign_in(*, user: User, settings: Settings) -> None:
    """Refuses an account that proved who it is but may not sign in; said only after the
    proof, so these reasons never tell a stranger which accounts exist."""
    if not user.is_active:
        raise PermissionDeniedError(ErrorReason.ACCOUNT_DISABLED)
    if settings.require_verified_email and not user.is_verified:
        raise PermissionDeniedError(ErrorReason.EMAIL_NOT_VERIFIED)


async def start_session(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    user: User,
    client: ClientInfo,
    now: datetime,
    auth_methods: list[str],
) -> IssuedTokens:
    """A new session of ``user``, signed in now by ``auth_methods``, and its first tokens.
    The caller commits."""
    auth_session = await sessions_crud.create(
        session=session,
        data=sessions_crud.NewAuthSession(
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_expire_seconds),
            user_agent=client.stored_user_agent,
            ip_address=client.stored_ip_address,
            auth_methods=auth_methods,
            authenticated_at=now,
        ),
    )
    await security_events.record_security_event(
        session=session,
        type=SecurityEventType.SIGNED_IN,
        user_id=user.id,
        client=client,
        session_id=auth_session.id,
        details={"methods": auth_methods},
        now=now,
    )
    return await _issue_tokens(
        session=session, settings=settings, keys=keys, user=user, auth_session=auth_session, now=now
    )


async def refresh(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    refresh_token: str,
    client: ClientInfo | None = None,
) -> IssuedTokens:
    """Rotate a refresh token: a new pair for the same session, the presented token retired.

    The new refresh token is derived from the presented one, so refreshes racing with one
    token, or repeating it within the grace window, all get the same successor (each with a
    fresh access token): the session's tokens stay one chain. A retired token presented
    after the grace window means two parties hold the session's tokens, so the whole
    session is revoked.
    """
    found = await refresh_tokens_crud.get_with_session_and_user(
        session=session, token_hash=tokens.hash_opaque_token(refresh_token)
    )
    if found is None:
        raise AuthenticationError(ErrorReason.REFRESH_TOKEN_INVALID)
    presented, auth_session, user = found
    now = utc_now()
    if not auth_session.is_usable(now=now):
        raise AuthenticationError(ErrorReason.SESSION_ENDED)
    if presented.rotated_at is not None:
        grace = timedelta(seconds=settings.refresh_reuse_grace_seconds)
        if now - presented.rotated_at > grace:
            await sessions_crud.revoke(session=session, auth_session=auth_session, now=now)
            await security_events.record_security_event(
                session=session,
                type=SecurityEventType.REFRESH_TOKEN_REUSE_DETECTED,
                user_id=user.id,
                client=client,
                session_id=auth_session.id,
                now=now,
            )
            # Committed now: the revocation must outlast the error answered next.
            await session.commit()
            logger.warning("Refresh token reuse detected; session %s revoked", auth_session.id)
            raise AuthenticationError(ErrorReason.REFRESH_TOKEN_REUSED)
    if not user.is_active:
        raise PermissionDeniedError(ErrorReason.ACCOUNT_DISABLED)
    successor = tokens.successor_refresh_token(refresh_token, key=settings.refresh_successor_key)
    successor_hash = tokens.hash_opaque_token(successor)
    retired_now = presented.rotated_at is None and await refresh_tokens_crud.retire(
        session=session, refresh_token=presented, now=now
    )
    if retired_now:
        await refresh_tokens_crud.create(
            session=session, session_id=auth_session.id, token_hash=successor_hash
        )
    else:
        # Rotated a moment ago, by a request that won a race or came just before: its
        # successor, unless that was rotated in turn (then this token is stale, not stolen).
        current = await refresh_tokens_crud.get_by_hash(session=session, token_hash=successor_hash)
        if current is None or current.rotated_at is not None:
            raise AuthenticationError(ErrorReason.REFRESH_TOKEN_SUPERSEDED)
    issued = await _with_access_token(
        session=session,
        settings=settings,
        keys=keys,
        user=user,
        auth_session=auth_session,
        now=now,
        refresh_token=successor,
    )
    await session.commit()
    return issued


async def logout(
    *, session: AsyncSession, refresh_token: str, client: ClientInfo | None = None
) -> None:
    found = await refresh_tokens_crud.get_with_session_and_user(
        session=session, token_hash=tokens.hash_opaque_token(refresh_token)
    )
    if found is None:
        raise AuthenticationError(ErrorReason.REFRESH_TOKEN_INVALID)
    _, auth_session, user = found
    await sessions_crud.revoke(session=session, auth_session=auth_session, now=utc_now())
    await security_events.record_security_event(
        session=session,
        type=SecurityEventType.SIGNED_OUT,
        user_id=user.id,
        client=client,
        session_id=auth_session.id,
    )
    await session.commit()


async def _issue_tokens(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    user: User,
    auth_session: AuthSession,
    now: datetime,
) -> IssuedTokens:
    refresh_token = tokens.new_opaque_token()
    await refresh_tokens_crud.create(
        session=session,
        session_id=auth_session.id,
        token_hash=tokens.hash_opaque_token(refresh_token),
    )
    return await _with_access_token(
        session=session,
        settings=settings,
        keys=keys,
        user=user,
        auth_session=auth_session,
        now=now,
        refresh_token=refresh_token,
    )


async def _with_access_token(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: KeyRing,
    user: User,
    auth_session: AuthSession,
    now: datetime,
    refresh_token: str,
) -> IssuedTokens:
    await sessions_crud.mark_used(session=session, auth_session=auth_session, now=now)
    access_token = tokens.create_access_token(
        signing_key=await keys.signing_key(session=session),
        settings=settings,
        user_id=user.id,
        session_id=auth_session.id,
        now=now,
        auth_methods=auth_session.auth_methods,
        authenticated_at=auth_session.authenticated_at,
    )
    return IssuedTokens(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=settings.access_token_expire_seconds,
        user=user,
        session_expires_in=max(0, int((auth_session.expires_at - now).total_seconds())),
    )


async def authenticate(
    *, session: AsyncSession, settings: Settings, keys: KeyRing, access_token: str
) -> Viewer:
    key = await _verification_key(session=session, settings=settings, keys=keys, token=access_token)
    claims = tokens.decode_access_token(access_token, key=key, settings=settings)
    found = await sessions_crud.get_with_user(session=session, session_id=claims.session_id)
    if found is None:
        raise AuthenticationError(ErrorReason.SESSION_ENDED)
    auth_session, user = found
    if auth_session.user_id != claims.user_id:
        raise AuthenticationError(ErrorReason.TOKEN_INVALID)
    if not auth_session.is_usable(now=utc_now()):
        raise AuthenticationError(ErrorReason.SESSION_ENDED)
    if not user.is_active:
        raise PermissionDeniedError(ErrorReason.ACCOUNT_DISABLED)
    return Viewer(user=user, auth_session=auth_session)


async def _verification_key(
    *, session: AsyncSession, settings: Settings, keys: KeyRing, token: str
) -> tokens.TokenVerifier:
    """The key that checks the token. A genuine token that can no longer be checked (its
    key was retired, or it predates signing keys) is TOKEN_EXPIRED, so its holder
    refreshes as on expiry; an unknown key is TOKEN_INVALID, like a forgery."""
    kid = tokens.key_id_of(token)
    if kid is None:
        if tokens.signed_before_signing_keys(token, settings=settings):
            raise AuthenticationError(ErrorReason.TOKEN_EXPIRED)
        raise AuthenticationError(ErrorReason.TOKEN_INVALID)
    key = await keys.verification_key(session=session, kid=kid)
    if key is not None:
        return key
    retired = await keys.retired_key(session=session, kid=kid)
    if retired is not None:
        tokens.decode_access_token(token, key=retired, settings=settings)
        raise AuthenticationError(ErrorReason.TOKEN_EXPIRED)
    raise AuthenticationError(ErrorReason.TOKEN_INVALID)
