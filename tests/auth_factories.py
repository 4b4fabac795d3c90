"""Builders for the rows behind signing in and emailed links: sessions, refresh and action tokens.

Each returns the plaintext token with its row where there is one, the way a client holds it.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.config import Settings
from gql_app.models import (
    ActionToken,
    ActionTokenPurpose,
    AuthSession,
    RefreshToken,
    SigningKey,
    User,
)
from gql_app.security import tokens
from gql_app.security.tokens import AccessTokenClaims, hash_opaque_token, new_opaque_token
from gql_app.services.key_ring import KeyRing

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


async def signed_access_token(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    now: datetime | None = None,
) -> str:
    """An access token for any claims, signed by the key that signs now (made if none)."""
    signer = await KeyRing(settings).signing_key(session=session)
    await session.commit()
    return tokens.create_access_token(
        signing_key=signer,
        settings=settings,
        user_id=user_id,
        session_id=session_id,
        now=now or datetime.now(UTC),
    )


async def verified_claims(
    session: AsyncSession, settings: Settings, token: str
) -> AccessTokenClaims:
    """The claims of a token, checked against the key it names."""
    key = await KeyRing(settings).verification_key(session=session, kid=tokens.key_id_of(token))
    assert key is not None, "signed by a stored key"
    return tokens.decode_access_token(token, key=key, settings=settings)


async def signed_claims(token: str, db_session: AsyncSession, settings: Settings) -> Any:
    """Every claim of an access token (amr, auth_time...), checked with the stored key."""
    header = jwt.get_unverified_header(token)
    stored = await db_session.scalar(select(SigningKey).where(SigningKey.kid == header["kid"]))
    assert stored is not None
    return jwt.decode(
        token,
        jwt.PyJWK(stored.public_jwk).key,
        algorithms=[header["alg"]],
        audience=settings.jwt_audience,
    )


async def create_auth_session(
    session: AsyncSession,
    user: User,
    *,
    expires_at: datetime = FAR_FUTURE,
    revoked_at: datetime | None = None,
    created_at: datetime | None = None,
) -> AuthSession:
    auth_session = AuthSession(user_id=user.id, expires_at=expires_at, revoked_at=revoked_at)
    if created_at is not None:
        auth_session.created_at = created_at
    session.add(auth_session)
    await session.commit()
    return auth_session


async def create_refresh_token(
    session: AsyncSession,
    auth_session: AuthSession,
    *,
    rotated_at: datetime | None = None,
) -> tuple[str, RefreshToken]:
    token = new_opaque_token()
    row = RefreshToken(
        session_id=auth_session.id, token_hash=hash_opaque_token(token), rotated_at=rotated_at
    )
    session.add(row)
    await session.commit()
    return token, row


async def create_action_token(
    session: AsyncSession,
    user: User,
    *,
    purpose: ActionTokenPurpose = ActionTokenPurpose.PASSWORD_RESET,
    email: str | None = None,
    expires_at: datetime | None = None,
    used_at: datetime | None = None,
) -> tuple[str, ActionToken]:
    token = new_opaque_token()
    row = ActionToken(
        id=uuid.uuid4(),
        user_id=user.id,
        purpose=purpose,
        token_hash=hash_opaque_token(token),
        email=email or user.email,
        expires_at=expires_at or datetime.now(UTC) + timedelta(hours=1),
        used_at=used_at,
    )
    session.add(row)
    await session.commit()
    return token, row
