"""Which JSON flavour a GraphQL client accepts, from its Accept header."""

import re

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"

# Preferred first when a client accepts both equally: it carries the precise status codes.
_SUPPORTED = (GRAPHQL_RESPONSE_JSON, JSON)
# What a wildcard stands for, in order: the classic type older clients expect, then the other.
_WILDCARD_CHOICES = (JSON, GRAPHQL_RESPONSE_JSON)
_WILDCARDS = {"*/*", "application/*"}
_QUALITY = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")


def negotiate_response_type(accept: str | None) -> str | None:
    """The media type to answer in, or None when the client accepts neither.

    No Accept header, or a wildcard, means the classic ``application/json`` that clients
    written before the GraphQL-over-HTTP media type expect.
    """
    if accept is None or not accept.strip():
        return JSON
    explicit: dict[str, float] = {}
    wildcard = 0.0
    for entry in accept.split(","):
        media_type, _, parameters = entry.strip().partition(";")
        media_type = media_type.strip().lower()
        quality = _quality(parameters)
        if media_type in _SUPPORTED:
            explicit[media_type] = max(explicit.get(media_type, 0.0), quality)
        elif media_type in _WILDCARDS:
            wildcard = max(wildcard, quality)
    candidates = [(quality, -_SUPPORTED.index(kind), kind) for kind, quality in explicit.items()]
    # A type refused by name (q=0) is not brought back by a wildcard.
    stand_in = next((kind for kind in _WILDCARD_CHOICES if kind not in explicit), None)
    if stand_in is not None and wildcard > 0:
        candidates.append((wildcard, -len(_SUPPORTED), stand_in))
    best = max((c for c in candidates if c[0] > 0), default=None)
    return best[2] if best else None


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            # Anything but a number from 0 to 1 (nan, inf, 2) counts as a refusal.
            return float(value) if _QUALITY.fullmatch(value) else 0.0
    return 1.0
