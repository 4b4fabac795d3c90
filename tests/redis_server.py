"""Where the Redis-backed rate-limit tests get their server.

``TEST_REDIS_URL`` (or ``REDIS_URL``) when set; otherwise a server answering on
127.0.0.1:6379; otherwise the tests are skipped, or fail when ``CI`` is set (CI must
never silently skip them). Each test uses a key prefix of its own, so parallel workers
and earlier runs never share counters.
"""

import os
import socket

import pytest

REDIS_URL_ENV = "TEST_REDIS_URL"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
NO_SERVER = (
    f"no Redis server for the Redis rate-limit tests: set {REDIS_URL_ENV}=redis://host:6379/0 "
    "or start redis-server on 127.0.0.1:6379"
)


def _local_redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_url() -> str:
    configured = os.environ.get(REDIS_URL_ENV) or os.environ.get("REDIS_URL")
    if configured:
        return configured
    if _local_redis_answers():
        return LOCAL_REDIS_URL
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but there is {NO_SERVER}", pytrace=False)
    pytest.skip(NO_SERVER)
