"""Which JSON flavour a GraphQL client accepts, from its Accept header."""

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"

# Preferred first when a client accepts both equally: it carries the precise status codes.
_SUPPORTED = (GRAPHQL_RESPONSE_JSON, JSON)
_WILDCARDS = {"*/*": JSON, "application/*": JSON}


def negotiate_response_type(accept: str | None) -> str | None:
    """The media type to answer in, or None when the client accepts neither.

    No Accept header, or a wildcard, means the classic ``application/json`` that clients
    written before the GraphQL-over-HTTP media type expect.
    """
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for entry in accept.split(","):
        media_type, _, parameters = entry.strip().partition(";")
        media_type = media_type.strip().lower()
        chosen = media_type if media_type in _SUPPORTED else _WILDCARDS.get(media_type)
        quality = _quality(parameters)
        if chosen is None or quality <= 0:
            continue
        # Higher quality wins, then the more specific of the two supported types.
        rank = (quality, -_SUPPORTED.index(chosen) if media_type in _SUPPORTED else -9, chosen)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return best[2] if best else None


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0
