"""Another service verifies gql-app's access tokens offline, through a key rotation.

gql-app runs as `gql-app serve` runs it, on a PostgreSQL database of this module's own (so
the keys it starts with are known: the one it creates); the resource service of
tests/resource_service.py runs beside it, in its own uvicorn process, knowing only the JWKS
URL. Keys are changed with the real `gql-app keys` CLI, as an operator changes them.

Caches, and why the waits here are bounded polls: gql-app's workers re-read the keys every
SIGNING_KEY_CACHE_SECONDS (1 s here) and serve the JWKS from what they read; the resource
service keeps the key set it fetched for JWKS_CACHE_SECONDS (1 s here, 300 s by default),
fetching it early only for a kid it does not hold. A retirement therefore reaches an offline
verifier only after both caches turn over: the tests poll for up to a few times their sum.
"""

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gql_app.testing import GqlAppError, GqlAppServer, GqlClient
from gql_app.testing.server import running_server, server_environment
from tests import resource_service
from tests.e2e.postgres import database_name, drop_database, recreate_database

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVER_KEY_CACHE_SECONDS = 1.0
# PyJWKClient's own 300 s would make the service honour a retirement five minutes late.
VERIFIER_JWKS_CACHE_SECONDS = 1.0
# A change made through the CLI is seen within the sum of the caches; a few times that, and
# a loaded machine's slowness, bound the polls.
CHANGE_DEADLINE_SECONDS = 4 * (SERVER_KEY_CACHE_SECONDS + VERIFIER_JWKS_CACHE_SECONDS) + 2
POLL_INTERVAL_SECONDS = 0.1
CLI_TIMEOUT_SECONDS = 60
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
PASSWORD = "violet tangerine submarine 42"

REGISTER = "mutation ($input: RegisterInput!) { register(input: $input) { id } }"
LOGIN = "mutation ($input: LoginInput!) { login(input: $input) { accessToken } }"
ME = "{ me { id } }"


@dataclass(frozen=True)
class Deployment:
    gql_app: GqlAppServer
    resource_url: str
    folder: Path

    def keys(self, *arguments: str) -> Any:
        """``gql-app keys ... --json`` against the server's database: its printed JSON."""
        done = self.finished(self.start_keys(*arguments))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def start_keys(self, *arguments: str) -> "subprocess.Popen[str]":
        """The command started; its interpreter takes seconds to start, the test goes on."""
        return subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "gql_app.cli", "keys", *arguments, "--json"],
            cwd=self.folder,  # no .env of the checkout's
            env=server_environment(self.gql_app.settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def finished(process: "subprocess.Popen[str]") -> "subprocess.CompletedProcess[str]":
        try:
            stdout, stderr = process.communicate(timeout=CLI_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def keys_database_url(postgres_server_url: str, worker_id: str) -> Iterator[str]:
    name = database_name("gql_app_keys", worker_id)
    url = recreate_database(postgres_server_url, name)
    yield url
    drop_database(postgres_server_url, name)


@pytest.fixture(scope="module")
def deployment(
    keys_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("token-verification")
    settings = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": keys_database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "MIGRATE_ON_START": "true",
        "EMAIL_BACKEND": "memory",
        "RATE_LIMIT_ENABLED": "false",
        "PASSWORD_HASHING_COST": "minimal",
        "SIGNING_KEY_CACHE_SECONDS": str(SERVER_KEY_CACHE_SECONDS),
        "LOG_LEVEL": "WARNING",
    }
    with running_server(settings, folder=folder) as gql_app:
        verifier = resource_service.VerifierSettings(
            jwks_url=gql_app.jwks_url,
            jwks_cache_seconds=VERIFIER_JWKS_CACHE_SECONDS,
            # `keys activate` below skips the publish delay that, in production, puts a key
            # in every verifier's cache before it signs: here the service meets a new kid
            # first in a token, and a cooldown begun by its last fetch would refuse it.
            jwks_refetch_cooldown_seconds=0,
        )
        with resource_service.serve(verifier) as resource_url:
            yield Deployment(gql_app=gql_app, resource_url=resource_url, folder=folder)


@pytest.fixture(scope="module")
def resource(deployment: Deployment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployment.resource_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def gql(deployment: Deployment) -> GqlClient:
    return GqlClient(deployment.gql_app.graphql_url)


@dataclass(frozen=True)
class User:
    id: str
    email: str


@pytest.fixture(scope="module")
def user(gql: GqlClient) -> User:
    email = f"verified-{uuid.uuid4().hex[:12]}@example.com"
    registered = gql(REGISTER, {"input": {"email": email, "password": PASSWORD}})
    return User(id=registered["register"]["id"], email=email)


def login(gql: GqlClient, user: User) -> str:
    token: str = gql(LOGIN, {"input": {"email": user.email, "password": PASSWORD}})["login"][
        "accessToken"
    ]
    return token


def login_signed_by(gql: GqlClient, user: User, kid: str) -> str:
    """A sign-in's access token, once the server signs them with ``kid``."""
    tokens: list[str] = []

    def signed_by_kid() -> bool:
        tokens.append(login(gql, user))
        return kid_of(tokens[-1]) == kid

    eventually(signed_by_kid, f"sign-ins signed by {kid}")
    return tokens[-1]


def kid_of(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


def whoami(resource: httpx.Client, token: str) -> httpx.Response:
    return resource.get("/whoami", headers={"Authorization": f"Bearer {token}"})


def published(deployment: Deployment) -> list[dict[str, Any]]:
    answer = httpx.get(deployment.gql_app.jwks_url, timeout=30)
    assert answer.status_code == 200, answer.text
    keys: list[dict[str, Any]] = answer.json()["keys"]
    return keys


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CHANGE_DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {CHANGE_DEADLINE_SECONDS:g} s: {what}")
        time.sleep(POLL_INTERVAL_SECONDS)


def test_a_fresh_token_is_accepted_by_the_service(
    resource: httpx.Client, gql: GqlClient, user: User
) -> None:
    token = login(gql, user)

    answer = whoami(resource, token)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"sub": user.id, "kid": kid_of(token)}


def test_through_a_rotation_both_keys_verify_and_the_retired_one_is_refused(
    deployment: Deployment, resource: httpx.Client, gql: GqlClient, user: User
) -> None:
    old_token = login(gql, user)
    old_kid = kid_of(old_token)
    assert whoami(resource, old_token).status_code == 200

    rotated = deployment.keys("rotate")
    new_kid = rotated["kid"]
    # Published, not signing: it signs after SIGNING_KEY_PUBLISH_SECONDS (an hour).
    assert rotated["state"] == "next"
    eventually(
        lambda: new_kid in {key["kid"] for key in published(deployment)}, "the new key published"
    )
    assert kid_of(login(gql, user)) == old_kid

    assert deployment.keys("activate", new_kid)["state"] == "current"
    # Tokens the old key signed are unexpired for another ACCESS_TOKEN_EXPIRE_SECONDS: a
    # retirement without --force is refused (run while the test goes on).
    premature_retirement = deployment.start_keys("retire", old_kid)
    new_token = login_signed_by(gql, user, new_kid)

    # The service had fetched the key set before the new key signed: its kid makes it fetch
    # the set again. The old key verifies until it is retired.
    for token, kid in ((new_token, new_kid), (old_token, old_kid)):
        answer = whoami(resource, token)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"sub": user.id, "kid": kid}

    premature = deployment.finished(premature_retirement)
    assert premature.returncode != 0
    assert "may be unexpired" in premature.stderr
    # A verifier with PyJWKClient's own defaults (a 300 s cache), holding the old key now.
    long_cache = jwt.PyJWKClient(deployment.gql_app.jwks_url)
    assert long_cache.get_signing_key(old_kid).key_id == old_kid

    assert deployment.keys("retire", old_kid, "--force")["state"] == "retired"

    eventually(
        lambda: whoami(resource, old_token).status_code == 401,
        "the retired key's token refused by the service",
    )
    assert whoami(resource, old_token).json() == {"error": "unknown signing key"}
    assert old_kid not in {key["kid"] for key in published(deployment)}
    assert whoami(resource, new_token).json() == {"sub": user.id, "kid": new_kid}
    with pytest.raises(GqlAppError) as refused:
        gql(ME, token=old_token)
    # Genuine, but its key is withdrawn: its holder is told to refresh, not to sign in.
    assert (refused.value.code, refused.value.reason) == ("UNAUTHENTICATED", "TOKEN_EXPIRED")
    # Offline verification has this price: a verifier honours a retirement only when its
    # cached key set expires. The one with the long cache still holds the retired key.
    stale = long_cache.get_signing_key(old_kid)
    assert jwt.decode(old_token, stale.key, algorithms=["ES256"], audience="gql-app")["sub"] == (
        user.id
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token made by hand: PyJWT refuses an asymmetric key's text as an HMAC secret."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@dataclass(frozen=True)
class Genuine:
    """A token gql-app signed, its parts, and the published key that verifies it."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    jwk: dict[str, Any]

    @property
    def public_pem(self) -> bytes:
        public_key = jwt.PyJWK(self.jwk).key
        pem: bytes = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem


def tampered_signature(genuine: Genuine) -> str:
    signing_input, _, signature = genuine.token.rpartition(".")
    flipped = bytearray(_unb64(signature))
    flipped[len(flipped) // 2] ^= 0x01
    return f"{signing_input}.{_b64(bytes(flipped))}"


def tampered_claims(genuine: Genuine) -> str:
    _, _, signature = genuine.token.rpartition(".")
    claims = {**genuine.claims, "sub": str(uuid.uuid4())}
    return f"{_segment(genuine.header)}.{_segment(claims)}.{signature}"


def hs256_with_the_pem(genuine: Genuine) -> str:
    return _hs256({**genuine.header, "alg": "HS256"}, genuine.claims, genuine.public_pem)


def hs256_with_the_jwk(genuine: Genuine) -> str:
    published_text = json.dumps(genuine.jwk, separators=(",", ":"), sort_keys=True)
    return _hs256({**genuine.header, "alg": "HS256"}, genuine.claims, published_text.encode())


def alg_none(genuine: Genuine) -> str:
    return f"{_segment({**genuine.header, 'alg': 'none'})}.{_segment(genuine.claims)}."


def signed_by_another_key(kid: str | None) -> Callable[[Genuine], str]:
    def forge(genuine: Genuine) -> str:
        headers = {"kid": kid or genuine.header["kid"]}
        return jwt.encode(
            genuine.claims, ec.generate_private_key(ec.SECP256R1()), "ES256", headers=headers
        )

    return forge


@pytest.fixture
def genuine(deployment: Deployment, gql: GqlClient, user: User) -> Genuine:
    token = login(gql, user)
    header = jwt.get_unverified_header(token)
    [jwk] = [key for key in published(deployment) if key["kid"] == header["kid"]]
    claims = jwt.decode(token, options={"verify_signature": False})
    return Genuine(token=token, header=header, claims=claims, jwk=jwk)


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (tampered_signature, "bad signature"),
        (tampered_claims, "bad signature"),
        (hs256_with_the_pem, "algorithm not allowed"),
        (hs256_with_the_jwk, "algorithm not allowed"),
        (alg_none, "algorithm not allowed"),
        (signed_by_another_key("not-a-published-kid"), "unknown signing key"),
        (signed_by_another_key(None), "bad signature"),
    ],
    ids=[
        "tampered signature",
        "tampered claims",
        "HS256 with the public key's PEM",
        "HS256 with the published JWK",
        "alg none",
        "unknown kid",
        "another key under the published kid",
    ],
)
def test_a_forged_token_is_refused(
    resource: httpx.Client, genuine: Genuine, forge: Callable[[Genuine], str], reason: str
) -> None:
    # The real token passes: what the forgery changes is what gets it refused.
    assert whoami(resource, genuine.token).status_code == 200

    answer = whoami(resource, forge(genuine))

    assert answer.status_code == 401
    assert answer.json() == {"error": reason}
    assert answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("audience", "issuer", "reason"),
    [("billing", "gql-app", "wrong audience"), ("gql-app", "another-issuer", "wrong issuer")],
    ids=["another audience", "another issuer"],
)
def test_a_genuine_token_is_refused_by_a_service_expecting_another_issuer_or_audience(
    deployment: Deployment, genuine: Genuine, audience: str, issuer: str, reason: str
) -> None:
    # The service's own verifier, in this process: the same keys, other expectations.
    settings = resource_service.VerifierSettings(jwks_url=deployment.gql_app.jwks_url)
    assert (
        resource_service.TokenVerifier(settings).verify(genuine.token)["sub"]
        == (genuine.claims["sub"])
    )
    verifier = resource_service.TokenVerifier(replace(settings, audience=audience, issuer=issuer))

    with pytest.raises(resource_service.TokenRefusedError, match=f"^{reason}$"):
        verifier.verify(genuine.token)


def test_the_published_keys_hold_no_private_material(deployment: Deployment) -> None:
    answer = httpx.get(deployment.gql_app.jwks_url, timeout=30)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/jwk-set+json"
    keys = answer.json()["keys"]
    assert keys
    for key in keys:
        assert not PRIVATE_JWK_MEMBERS & key.keys(), key
        assert (key["alg"], key["use"], key["kty"], key["crv"]) == ("ES256", "sig", "EC", "P-256")
        assert isinstance(jwt.PyJWK(key).key, ec.EllipticCurvePublicKey)


def test_the_discovery_document_points_at_the_key_set(deployment: Deployment) -> None:
    answer = httpx.get(f"{deployment.gql_app.url}/.well-known/openid-configuration", timeout=30)

    assert answer.status_code == 200
    assert answer.json() == {"issuer": "gql-app", "jwks_uri": deployment.gql_app.jwks_url}
