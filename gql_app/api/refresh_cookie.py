"""Browser session mode (REFRESH_TOKEN_COOKIE): the refresh token in an HttpOnly cookie.

A single-page app that keeps a refresh token where its JavaScript can read it hands it to
any script injected into the page. In this mode the token is written only into a cookie
that scripts cannot read, and ``refreshToken`` and ``logout`` read it from there when they
are called without their argument.

The cookie:
- ``HttpOnly``, so no script reads it; ``Secure``, except for http://localhost and
  http://127.0.0.1 in development (a newcomer's frontend on plain HTTP).
- ``SameSite=Strict``: it is only ever needed by requests the app's own pages make, never
  by a navigation arriving from another site, so no cross-site request carries it at all
  (Lax would still send it with top-level GET navigations from other sites).
- ``Path=/graphql``, so the frontend's own pages and assets never carry it. That rules out
  the ``__Host-`` prefix (which needs ``Path=/``); ``__Secure-`` keeps the guarantee that
  only a secure page can have set it.
- ``Max-Age`` the session's remaining life, renewed with every rotation.

The cookie authorises only these two operations. Each of them also needs the
``X-Requested-With`` header when it would use the cookie: a cross-site form cannot set a
header, and a cross-site script can only with the CORS approval the API gives to its
configured origins, so a forged request never gets past this even if SameSite failed.
"""

from starlette.responses import Response

from gql_app.api.context import Context
from gql_app.api.http import GRAPHQL_PATH
from gql_app.error_reasons import ErrorReason
from gql_app.errors import AuthenticationError, PermissionDeniedError
from gql_app.services.auth import IssuedTokens

CSRF_HEADER = "X-Requested-With"
SECURE_COOKIE_NAME = "__Secure-refresh_token"
# Browsers accept a ``__Secure-`` cookie only with the Secure flag.
LOCAL_COOKIE_NAME = "refresh_token"
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})


def presented_refresh_token(context: Context, argument: str | None) -> str:
    """The refresh token the request presents: its argument, else (in browser session mode)
    its cookie, which counts only with the CSRF header."""
    if argument is not None:
        return argument
    if not context.settings.refresh_token_cookie:
        raise AuthenticationError(ErrorReason.REFRESH_TOKEN_MISSING)
    request = context.http_request
    token = request.cookies.get(_cookie_name(context))
    if not token:
        raise AuthenticationError(ErrorReason.REFRESH_TOKEN_MISSING)
    if not request.headers.get(CSRF_HEADER, "").strip():
        raise PermissionDeniedError(ErrorReason.CSRF_HEADER_MISSING)
    return token


def hand_over_refresh_token(context: Context, issued: IssuedTokens) -> str | None:
    """The refresh token for the response body; None when it went into the cookie."""
    if not context.settings.refresh_token_cookie:
        return issued.refresh_token
    secure = _secure(context)
    _response(context).set_cookie(
        _cookie_name(context),
        issued.refresh_token,
        max_age=issued.session_expires_in,
        path=GRAPHQL_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return None


def forget_refresh_token(context: Context) -> None:
    """Clear this browser's refresh cookie (its session is over)."""
    if not context.settings.refresh_token_cookie:
        return
    _response(context).delete_cookie(
        _cookie_name(context),
        path=GRAPHQL_PATH,
        secure=_secure(context),
        httponly=True,
        samesite="strict",
    )


def _response(context: Context) -> Response:
    assert context.response is not None, "set by the GraphQL router and the lean lane"
    return context.response


def _secure(context: Context) -> bool:
    settings = context.settings
    host = context.http_request.url.hostname
    return not (settings.environment == "development" and host in _LOCAL_HOSTS)


def _cookie_name(context: Context) -> str:
    return SECURE_COOKIE_NAME if _secure(context) else LOCAL_COOKIE_NAME
