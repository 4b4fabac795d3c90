"""Browser session mode (REFRESH_TOKEN_COOKIE): the refresh token in an HttpOnly cookie.

A single-page app that keeps a refresh token where its JavaScript can read it hands it to
any script injected into the page. In this mode the token is written only into a cookie
that scripts cannot read, and ``refreshToken`` and ``logout`` read it from there when they
are called without their argument. The mode is the deployment's: every client of it gets
``refreshToken: null``.

The cookie:
- ``HttpOnly``, so no script reads it; ``Secure``, except for http://localhost and
  http://127.0.0.1 in development (a newcomer's frontend on plain HTTP).
- ``SameSite=Strict``: it is only ever needed by requests the app's own pages make, never
  by a navigation arriving from another site, so no cross-site request carries it at all
  (Lax would still send it with top-level GET navigations from other sites).
- ``Path=/graphql``, so the frontend's own pages and assets never carry it. That rules out
  the ``__Host-`` prefix (which needs ``Path=/``); ``__Secure-`` keeps the guarantee that
  only a secure page can have set it, but not that this host did: a page of a sibling
  subdomain may set one for the parent domain. Two cookies of the name therefore count as
  none (see ``_cookie_token``).
- ``Max-Age`` the session's remaining life, renewed with every rotation.

The cookie authorises only these two operations. Each of them also needs the
``X-Requested-With`` header when it would use the cookie: a cross-site form cannot set a
header, and a cross-site script can only with the CORS approval the API gives to its
configured origins, so a forged request never gets past this even if SameSite failed.
"""

from collections.abc import Iterator
from contextlib import contextmanager

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
# Refusals after which the cookie can never serve again: it is cleared with the answer.
_ENDED = frozenset(
    {ErrorReason.REFRESH_TOKEN_INVALID, ErrorReason.REFRESH_TOKEN_REUSED, ErrorReason.SESSION_ENDED}
)


@contextmanager
def presented_refresh_token(context: Context, argument: str | None) -> Iterator[str]:
    """The refresh token the request presents, for the block that uses it: its argument,
    else (in browser session mode) its cookie, which counts only with the CSRF header.

    If the block finds the cookie's session over (revoked, replayed, unknown), the cookie
    goes with the refusal. A superseded token is left: another tab's answer may already
    have set its successor.
    """
    from_cookie = argument is None
    token = argument if argument is not None else _cookie_token(context)
    try:
        yield token
    except AuthenticationError as error:
        if from_cookie and error.reason in _ENDED:
            forget_refresh_token(context)
        raise


def _cookie_token(context: Context) -> str:
    if not context.settings.refresh_token_cookie:
        raise AuthenticationError(ErrorReason.REFRESH_TOKEN_MISSING)
    request = context.http_request
    tokens = _cookie_values(request.headers.get("cookie", ""), _cookie_name(context))
    if not tokens:
        raise AuthenticationError(ErrorReason.REFRESH_TOKEN_MISSING)
    if not request.headers.get(CSRF_HEADER, "").strip():
        raise PermissionDeniedError(ErrorReason.CSRF_HEADER_MISSING)
    if len(tokens) > 1:
        # One of them was set for a parent domain by another site of it ("cookie tossing"):
        # which one this API set cannot be told, and taking the other would sign this
        # browser into someone else's session. Nothing is cleared: clearing ours would
        # leave theirs.
        raise AuthenticationError(ErrorReason.REFRESH_TOKEN_INVALID)
    return tokens[0]


def hand_over_refresh_token(context: Context, issued: IssuedTokens) -> str | None:
    """The refresh token for the response body; None when it went into the cookie."""
    if not context.settings.refresh_token_cookie:
        return issued.refresh_token
    secure = _secure(context)
    _response_without_the_cookie(context).set_cookie(
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
    _response_without_the_cookie(context).delete_cookie(
        _cookie_name(context),
        path=GRAPHQL_PATH,
        secure=_secure(context),
        httponly=True,
        samesite="strict",
    )


def _response_without_the_cookie(context: Context) -> Response:
    """The answer's response, without what an earlier field of the document set for the
    cookie: the last field's word is the only one (a browser would keep the last of several,
    but other clients may not)."""
    response = context.response
    assert response is not None, "set by the GraphQL router and the lean lane"
    prefix = f"{_cookie_name(context)}=".encode()
    response.headers.raw[:] = [
        (key, value)
        for key, value in response.headers.raw
        if not (key == b"set-cookie" and value.startswith(prefix))
    ]
    return response


def _secure(context: Context) -> bool:
    url = context.http_request.url
    local = url.scheme == "http" and url.hostname in _LOCAL_HOSTS
    return not (context.settings.environment == "development" and local)


def _cookie_values(header: str, name: str) -> list[str]:
    """Every value the Cookie header gives ``name`` (browsers send one per cookie they hold,
    however many of the same name; Starlette's parser keeps only the last)."""
    values: list[str] = []
    for pair in header.split(";"):
        key, separator, value = pair.strip().partition("=")
        if separator and key == name and value:
            values.append(value)
    return values


def _cookie_name(context: Context) -> str:
    return SECURE_COOKIE_NAME if _secure(context) else LOCAL_COOKIE_NAME
