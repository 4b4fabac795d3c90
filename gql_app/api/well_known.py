"""What other services need to trust this one's tokens, at the addresses they look for.

``/.well-known/jwks.json`` (RFC 7517) lists the public keys that verify access tokens;
``/.well-known/openid-configuration`` names the issuer and that list, and nothing this
server does not do. Both are public by design, in every environment.
"""

import hashlib
import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from gql_app.api.request_errors import request_error
from gql_app.availability import OUTAGE_RETRY_AFTER_SECONDS, Availability, Dependency
from gql_app.config import Settings
from gql_app.db import database_unreachable, get_session
from gql_app.errors import ServiceUnavailableError, Unavailable
from gql_app.services.key_ring import KeyRing

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_MEDIA_TYPE = "application/jwk-set+json"


def _cacheable(
    request: Request,
    document: dict[str, Any],
    *,
    max_age: int,
    media_type: str,
    shared: bool = True,
) -> Response:
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    scope = "public" if shared else "private"
    headers = {"Cache-Control": f"{scope}, max-age={max_age}", "ETag": etag}
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def add_well_known_routes(app: FastAPI) -> None:
    @app.get(JWKS_PATH, include_in_schema=False)
    async def jwks(
        request: Request, session: Annotated[AsyncSession, Depends(get_session)]
    ) -> Response:
        settings: Settings = app.state.settings
        key_ring: KeyRing = app.state.key_ring
        try:
            keys = await key_ring.published_jwks(session=session)
        except ServiceUnavailableError:
            # The key ring answered for the database, which failed a moment ago.
            return _unavailable()
        except Exception as error:
            if not database_unreachable(error):
                raise
            availability: Availability = app.state.availability
            availability.failed(Dependency.DATABASE, error)
            return _unavailable()
        return _cacheable(
            request,
            {"keys": keys},
            max_age=settings.jwks_max_age_seconds,
            media_type=JWKS_MEDIA_TYPE,
        )

    @app.get(DISCOVERY_PATH, include_in_schema=False)
    async def openid_configuration(request: Request) -> Response:
        settings: Settings = app.state.settings
        issuer = settings.jwt_issuer
        document = {"issuer": issuer, "jwks_uri": _jwks_uri(request, issuer=issuer)}
        return _cacheable(
            request,
            document,
            max_age=settings.jwks_max_age_seconds,
            media_type="application/json",
            # Built from the request's Host, it must not be kept for other clients: a shared
            # cache could hand them an address someone else's request chose.
            shared=_issuer_is_url(issuer),
        )


def _issuer_is_url(issuer: str) -> bool:
    return urlsplit(issuer).scheme in ("https", "http")


def _jwks_uri(request: Request, *, issuer: str) -> str:
    # An issuer that is a URL is where verifiers look (as OpenID Connect does): it stays
    # right behind proxies that do not say how they were reached.
    if _issuer_is_url(issuer):
        return f"{issuer.rstrip('/')}{JWKS_PATH}"
    return str(request.url_for("jwks"))


def _unavailable() -> JSONResponse:
    error = ServiceUnavailableError(Unavailable.DATABASE, retry_after=OUTAGE_RETRY_AFTER_SECONDS)
    body = request_error(503, error.message, reason=error.reason, retry_after=error.retry_after)
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(error.retry_after)})
