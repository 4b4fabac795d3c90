"""A service of another team that trusts gql-app's access tokens offline.

It knows gql-app's JWKS URL and nothing else: no shared secret, no database, no call to
gql-app per request. Each token is checked with the published key its ``kid`` names, with
that key's own algorithm (never the one the token's header asks for, never an HMAC), and
gql-app's issuer, audience and claims. ``GET /whoami`` answers 200 ``{"sub": ...}`` or 401
``{"error": ...}`` saying why.

Run it as its own process (tests/e2e/test_token_verification.py does, with ``serve``)::

    GQL_APP_JWKS_URL=http://127.0.0.1:8000/.well-known/jwks.json \\
        python -m uvicorn --factory tests.resource_service:create_app

PyJWKClient caches the key set for ``JWKS_CACHE_SECONDS`` and fetches it again early when a
token names a kid it does not hold (at most once per ``JWKS_REFETCH_COOLDOWN_SECONDS``).
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gql_app.testing.server import HOST, free_port

REQUIRED_CLAIMS = ["exp", "iat", "sub", "sid", "jti", "type", "iss", "aud"]
# A key set served over HTTP must never make a shared secret of a public key.
ASYMMETRIC_ALGORITHMS = frozenset({"ES256", "EdDSA", "RS256"})
START_TIMEOUT_SECONDS = 30.0
REPOSITORY = Path(__file__).resolve().parents[1]


class TokenRefusedError(Exception):
    """A token this service does not accept; the message says why."""


@dataclass(frozen=True)
class VerifierSettings:
    jwks_url: str
    issuer: str = "gql-app"
    audience: str = "gql-app"
    # PyJWKClient's defaults: a production service keeps them.
    jwks_cache_seconds: float = 300.0
    jwks_refetch_cooldown_seconds: float = 30.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "VerifierSettings":
        return cls(
            jwks_url=environ["GQL_APP_JWKS_URL"],
            issuer=environ.get("JWT_ISSUER", "gql-app"),
            audience=environ.get("JWT_AUDIENCE", "gql-app"),
            jwks_cache_seconds=float(environ.get("JWKS_CACHE_SECONDS", "300")),
            jwks_refetch_cooldown_seconds=float(environ.get("JWKS_REFETCH_COOLDOWN_SECONDS", "30")),
        )


class TokenVerifier:
    def __init__(self, settings: VerifierSettings) -> None:
        self.settings = settings
        self.jwks = jwt.PyJWKClient(
            settings.jwks_url,
            cache_jwk_set=True,
            lifespan=settings.jwks_cache_seconds,
            cooldown_duration=settings.jwks_refetch_cooldown_seconds,
            timeout=5,
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of an access token gql-app signed with a key it publishes."""
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise
        except jwt.PyJWKClientError as error:
            raise TokenRefusedError("unknown signing key") from error
        except jwt.PyJWTError as error:
            raise TokenRefusedError("malformed token") from error
        algorithm = key.algorithm_name
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise TokenRefusedError(f"key algorithm {algorithm} is not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidAlgorithmError as error:
            raise TokenRefusedError("algorithm not allowed") from error
        except jwt.InvalidSignatureError as error:
            raise TokenRefusedError("bad signature") from error
        except jwt.ExpiredSignatureError as error:
            raise TokenRefusedError("expired") from error
        except jwt.InvalidAudienceError as error:
            raise TokenRefusedError("wrong audience") from error
        except jwt.InvalidIssuerError as error:
            raise TokenRefusedError("wrong issuer") from error
        except jwt.MissingRequiredClaimError as error:
            raise TokenRefusedError(f"missing claim {error.claim}") from error
        except jwt.PyJWTError as error:
            raise TokenRefusedError("invalid token") from error
        if claims["type"] != "access":
            raise TokenRefusedError("not an access token")
        return claims


def _refused(reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def create_app(settings: VerifierSettings | None = None) -> Starlette:
    verifier = TokenVerifier(settings or VerifierSettings.from_environment())

    # Synchronous: Starlette runs it in a thread, where PyJWKClient's blocking fetch belongs.
    def whoami(request: Request) -> JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _refused("no bearer token")
        try:
            claims = verifier.verify(token)
        except TokenRefusedError as refused:
            return _refused(str(refused))
        except jwt.PyJWKClientConnectionError:
            return JSONResponse({"error": "gql-app's key set is unreachable"}, status_code=503)
        return JSONResponse({"sub": claims["sub"], "kid": jwt.get_unverified_header(token)["kid"]})

    def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/whoami", whoami), Route("/healthz", healthz)])


@contextmanager
def serve(settings: VerifierSettings) -> Iterator[str]:
    """The service under uvicorn, in a process of its own on a free loopback port; its URL."""
    port = free_port()
    environment = {
        **os.environ,
        "GQL_APP_JWKS_URL": settings.jwks_url,
        "JWT_ISSUER": settings.issuer,
        "JWT_AUDIENCE": settings.audience,
        "JWKS_CACHE_SECONDS": str(settings.jwks_cache_seconds),
        "JWKS_REFETCH_COOLDOWN_SECONDS": str(settings.jwks_refetch_cooldown_seconds),
    }
    process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tests.resource_service:create_app",
            "--app-dir",
            str(REPOSITORY),
            "--host",
            HOST,
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=environment,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://{HOST}:{port}"
    try:
        _wait_until_up(url, process)
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: "subprocess.Popen[bytes]") -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with httpx.Client(base_url=url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the resource service exited with {process.returncode}")
            try:
                if http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"the resource service did not answer within {START_TIMEOUT_SECONDS} s")
