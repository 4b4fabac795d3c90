"""Per-token sign and verify time of each signing algorithm, on the app's own code paths.

Keys are made and loaded as the key ring loads them (the private half from its stored DER
bytes, the public half from its published JWK; an HMAC key verifies with its secret), and
tokens are made and checked by the functions the app calls. Verifying is what a request pays
before its session query: reading the ``kid``, then checking signature and claims (the key
ring's lookup, a dictionary read, is left out).

The algorithms take turns in batches, so a noisy moment on a shared machine falls on all of
them rather than on whichever ran then, and each figure is the median of single calls.
"""

import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import SecretStr

from bench.server import SECRET_KEY
from gql_app.config import Settings
from gql_app.security.signing_keys import (
    SIGNING_ALGORITHMS,
    PublicKey,
    SigningAlgorithm,
    generate_key,
    load_private_key,
    load_public_key,
)
from gql_app.security.tokens import (
    TokenSigner,
    TokenVerifier,
    create_access_token,
    decode_access_token,
    key_id_of,
)

BATCH = 100
# However slow the machine, one algorithm's signing or verifying stops after this long.
MAX_SECONDS_PER_MEASUREMENT = 10.0


@dataclass
class TokenTiming:
    algorithm: SigningAlgorithm
    sign_ns: list[int] = field(default_factory=list)
    verify_ns: list[int] = field(default_factory=list)
    token_bytes: int = 0

    def summary(self) -> dict[str, float | int]:
        return {
            "sign_us": _micro(statistics.median(self.sign_ns)),
            "sign_p90_us": _micro(_p90(self.sign_ns)),
            "verify_us": _micro(statistics.median(self.verify_ns)),
            "verify_p90_us": _micro(_p90(self.verify_ns)),
            "samples": min(len(self.sign_ns), len(self.verify_ns)),
            "token_bytes": self.token_bytes,
        }


def _micro(nanoseconds: float) -> float:
    return round(nanoseconds / 1000, 1)


def _p90(samples: list[int]) -> float:
    return statistics.quantiles(samples, n=10)[-1] if len(samples) > 1 else samples[0]


def _keys(algorithm: SigningAlgorithm) -> tuple[TokenSigner, TokenVerifier]:
    generated = generate_key(algorithm)
    signer = TokenSigner(
        kid=generated.kid,
        algorithm=algorithm,
        key=load_private_key(generated.private_bytes, algorithm=algorithm),
    )
    # An HMAC key checks with the secret that signs; the others with the published half.
    public: PublicKey = (
        signer.key
        if isinstance(signer.key, bytes)
        else load_public_key(generated.public_jwk, algorithm=algorithm)
    )
    return signer, TokenVerifier(kid=generated.kid, algorithm=algorithm, key=public)


def _settings() -> Settings:
    # Only the claims' issuer, audience and lifetime matter here: the defaults, as served.
    return Settings(_env_file=None, environment="test", secret_key=SecretStr(SECRET_KEY))


def measure_tokens(iterations: int) -> dict[str, dict[str, float | int]]:
    """Up to ``iterations`` timed signs and verifies per algorithm, each a fresh token."""
    settings = _settings()
    keys = {algorithm: _keys(algorithm) for algorithm in SIGNING_ALGORITHMS}
    timings = {algorithm: TokenTiming(algorithm) for algorithm in SIGNING_ALGORITHMS}
    spent = dict.fromkeys(SIGNING_ALGORITHMS, 0.0)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    # One untimed token each first: imports and lazy set-up are not a token's cost.
    for signer, verifier in keys.values():
        token = create_access_token(
            signing_key=signer,
            settings=settings,
            user_id=user_id,
            session_id=session_id,
            now=datetime.now(UTC),
        )
        decode_access_token(token, key=verifier, settings=settings)
    done = 0
    while done < iterations:
        batch = min(BATCH, iterations - done)
        for algorithm, (signer, verifier) in keys.items():
            if spent[algorithm] >= MAX_SECONDS_PER_MEASUREMENT:
                continue
            started = time.perf_counter()
            _batch(
                timings[algorithm],
                signer=signer,
                verifier=verifier,
                settings=settings,
                count=batch,
                user_id=user_id,
                session_id=session_id,
            )
            spent[algorithm] += time.perf_counter() - started
        done += batch
        if all(seconds >= MAX_SECONDS_PER_MEASUREMENT for seconds in spent.values()):
            break
    return {algorithm: timing.summary() for algorithm, timing in timings.items()}


def _batch(
    timing: TokenTiming,
    *,
    signer: TokenSigner,
    verifier: TokenVerifier,
    settings: Settings,
    count: int,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
) -> None:
    tokens = []
    for _ in range(count):
        now = datetime.now(UTC)
        started = time.perf_counter_ns()
        token = create_access_token(
            signing_key=signer, settings=settings, user_id=user_id, session_id=session_id, now=now
        )
        timing.sign_ns.append(time.perf_counter_ns() - started)
        tokens.append(token)
    timing.token_bytes = len(tokens[-1])
    for token in tokens:
        started = time.perf_counter_ns()
        if key_id_of(token) != verifier.kid:
            raise RuntimeError(f"{timing.algorithm} token names another key")
        decode_access_token(token, key=verifier, settings=settings)
        timing.verify_ns.append(time.perf_counter_ns() - started)
