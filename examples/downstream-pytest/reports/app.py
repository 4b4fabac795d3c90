"""The reports service: it signs nobody in itself. A request carries an access token that
gql-app issued, and the service verifies it offline, as any service that trusts gql-app
should: with the public key the token's ``kid`` names, from gql-app's JWKS
(``/.well-known/jwks.json``), with that key's own algorithm, gql-app's issuer and audience,
and the claims gql-app always sets. It shares no secret with gql-app.

PyJWKClient keeps the key set for five minutes. gql-app publishes a key an hour before it
signs with it, so it is cached by then; a token naming a key the cache lacks makes the
client fetch the set again (at most every 30 s). A key gql-app retires is refused once the
cached set expires.

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
# gql-app publishes only public keys; a published key never checks an HMAC.
ACCEPTED_ALGORITHMS = frozenset({"ES256", "EdDSA", "RS256"})
NOT_SIGNED_IN = HTTPException(
    status_code=status.HTTP_401_UNAUTHORIZED,
    detail="Sign in with gql-app and send its access token",
    headers={"WWW-Authenticate": "Bearer"},
)


@dataclass(frozen=True)
class TokenSettings:
    """Where gql-app publishes its keys, and its JWT_ISSUER and JWT_AUDIENCE."""

    jwks_url: str
    issuer: str = "gql-app"
    audience: str = "gql-app"

    @classmethod
    def from_environment(cls) -> "TokenSettings":
        return cls(
            jwks_url=os.environ["GQL_APP_JWKS_URL"],
            issuer=os.environ.get("JWT_ISSUER", "gql-app"),
            audience=os.environ.get("JWT_AUDIENCE", "gql-app"),
        )


def signed_in_user(token: str, settings: TokenSettings, keys: jwt.PyJWKClient) -> str:
    """The id of the user an access token names; 401 for anything else."""
    try:
        key = keys.get_signing_key_from_jwt(token)
        if key.algorithm_name not in ACCEPTED_ALGORITHMS:
            raise NOT_SIGNED_IN
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=settings.audience,
            issuer=settings.issuer,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWKClientConnectionError:
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="gql-app's signing keys cannot be fetched",
        ) from None
    except jwt.PyJWTError:
        raise NOT_SIGNED_IN from None
    if claims["type"] != "access":
        raise NOT_SIGNED_IN
    return str(claims["sub"])


def create_app(settings: TokenSettings) -> FastAPI:
    app = FastAPI(title="reports")
    bearer = HTTPBearer(auto_error=False)
    keys = jwt.PyJWKClient(settings.jwks_url, timeout=5)

    # Not async: FastAPI runs it in a thread, where PyJWKClient's blocking fetch belongs.
    def current_user(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        if credentials is None:
            raise NOT_SIGNED_IN
        return signed_in_user(credentials.credentials, settings, keys)

    @app.get("/reports/mine")
    def my_reports(user_id: Annotated[str, Depends(current_user)]) -> dict[str, Any]:
        return {"owner": user_id, "reports": []}

    return app
