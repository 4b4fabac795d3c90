"""The reports service: it signs nobody in itself. A request carries an access token that
gql-app issued, and the service checks it the way gql-app does: HS256 with the shared
SECRET_KEY, gql-app's issuer and audience, and the claims gql-app always sets.

It cannot see a session ended in gql-app before the token expires (15 minutes by
default); a service that must, asks gql-app's `me` with the token instead.
"""

import os
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

REQUIRED_CLAIMS = ["exp", "iat", "sub", "sid", "jti", "type", "iss", "aud"]
NOT_SIGNED_IN = HTTPException(
    status_code=status.HTTP_401_UNAUTHORIZED,
    detail="Sign in with gql-app and send its access token",
    headers={"WWW-Authenticate": "Bearer"},
)


@dataclass(frozen=True)
class TokenSettings:
    """gql-app's SECRET_KEY, JWT_ISSUER and JWT_AUDIENCE, shared with this service."""

    secret_key: str
    issuer: str = "gql-app"
    audience: str = "gql-app"

    @classmethod
    def from_environment(cls) -> "TokenSettings":
        return cls(
            secret_key=os.environ["SECRET_KEY"],
            issuer=os.environ.get("JWT_ISSUER", "gql-app"),
            audience=os.environ.get("JWT_AUDIENCE", "gql-app"),
        )


def signed_in_user(token: str, settings: TokenSettings) -> str:
    """The id of the user an access token names; 401 for anything else."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.secret_key,
            algorithms=["HS256"],
            audience=settings.audience,
            issuer=settings.issuer,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError:
        raise NOT_SIGNED_IN from None
    if claims["type"] != "access":
        raise NOT_SIGNED_IN
    return str(claims["sub"])


def create_app(settings: TokenSettings) -> FastAPI:
    app = FastAPI(title="reports")
    bearer = HTTPBearer(auto_error=False)

    def current_user(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        if credentials is None:
            raise NOT_SIGNED_IN
        return signed_in_user(credentials.credentials, settings)

    @app.get("/reports/mine")
    def my_reports(user_id: Annotated[str, Depends(current_user)]) -> dict[str, Any]:
        return {"owner": user_id, "reports": []}

    return app
