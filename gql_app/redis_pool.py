"""Connections to Redis, shared by the rate limiter and the persisted query store."""

from typing import TYPE_CHECKING

from gql_app.config import Settings

if TYPE_CHECKING:
    import coredis


def redis_connection_pool(
    settings: Settings, *, decode_responses: bool = False
) -> "coredis.ConnectionPool":
    """A pool whose every connect and command is bounded by the Redis timeouts."""
    assert settings.redis_url is not None, "only with REDIS_URL"
    # Imported here: the Redis client costs each worker about 12 MB, for nothing when
    # counters and persisted queries are kept in memory.
    import coredis  # noqa: PLC0415

    # The pool is ours, so that closing the application closes its connections.
    return coredis.ConnectionPool.from_url(
        settings.redis_url,
        decode_responses=decode_responses,
        connect_timeout=settings.redis_connect_timeout_seconds,
        stream_timeout=settings.redis_timeout_seconds,
    )
