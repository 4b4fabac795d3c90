"""Automatic persisted queries (Apollo's protocol, version 1).

A client sends only the SHA-256 of a document it sent before; an unknown hash answers
PERSISTED_QUERY_NOT_FOUND and the client sends the document with its hash once, which is
kept. Only documents that parse and validate are kept, so the store cannot be filled with
junk, and what it holds is already in the document cache, parsed and validated.
"""

import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from strawberry.http import GraphQLRequestData

from gql_app.api.error_codes import ErrorCode
from gql_app.availability import Availability, Dependency
from gql_app.config import Settings
from gql_app.redis_pool import redis_connection_pool

logger = logging.getLogger(__name__)

SUPPORTED_VERSION = 1
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class PersistedQueryError(Exception):
    """A persisted-query request that cannot run; answered before any GraphQL work."""

    def __init__(self, *, code: ErrorCode, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class QueryStorage(Protocol):
    # The dependency whose outages the store reports, if it has one.
    dependency: Dependency | None

    async def get(self, sha256: str) -> str | None: ...

    async def put(self, sha256: str, query: str) -> None: ...

    async def ping(self, *, availability: Availability) -> bool: ...

    async def aclose(self) -> None: ...


class MemoryQueryStorage:
    """The most recently used documents of this process."""

    dependency: Dependency | None = None

    def __init__(self, *, maxsize: int) -> None:
        self._maxsize = maxsize
        self._queries: OrderedDict[str, str] = OrderedDict()

    async def get(self, sha256: str) -> str | None:
        query = self._queries.get(sha256)
        if query is not None:
            self._queries.move_to_end(sha256)
        return query

    async def put(self, sha256: str, query: str) -> None:
        self._queries[sha256] = query
        self._queries.move_to_end(sha256)
        while len(self._queries) > self._maxsize:
            self._queries.popitem(last=False)

    async def ping(self, *, availability: Availability) -> bool:
        return True

    async def aclose(self) -> None:
        return None


class RedisQueryStorage:
    """Documents shared by every worker, each kept for a while after its last use."""

    dependency: Dependency | None = Dependency.REDIS

    def __init__(self, *, settings: Settings) -> None:
        import coredis  # noqa: PLC0415 - the pool's module is loaded already; this is cheap

        self._pool = redis_connection_pool(settings, decode_responses=True)
        self._redis = coredis.Redis(connection_pool=self._pool, decode_responses=True)
        self._prefix = f"{settings.rate_limit_key_prefix}:apq:"
        self._ttl = settings.persisted_queries_ttl_seconds

    async def get(self, sha256: str) -> str | None:
        return await self._redis.getex(self._prefix + sha256, ex=self._ttl)

    async def put(self, sha256: str, query: str) -> None:
        await self._redis.set(self._prefix + sha256, query, ex=self._ttl)

    async def ping(self, *, availability: Availability) -> bool:
        try:
            await self._redis.ping()
        except Exception as error:
            availability.failed(Dependency.REDIS, error)
            return False
        availability.answered(Dependency.REDIS)
        return True

    async def aclose(self) -> None:
        self._pool.disconnect()


def persisted_query_storage(settings: Settings) -> QueryStorage:
    if settings.redis_url is None:
        return MemoryQueryStorage(maxsize=settings.persisted_queries_cache_size)
    return RedisQueryStorage(settings=settings)


class PersistedQueryStore:
    def __init__(
        self,
        *,
        storage: QueryStorage,
        accepts: Callable[[str], bool],
        max_bytes: int,
        availability: Availability | None = None,
    ) -> None:
        self.storage = storage
        self._accepts = accepts
        self._max_bytes = max_bytes
        self._availability = availability or Availability()

    async def resolve(self, data: GraphQLRequestData) -> GraphQLRequestData:
        """The request with its document filled in from the store, or as it came."""
        persisted = (data.extensions or {}).get("persistedQuery")
        if persisted is None:
            return data
        sha256 = _requested_hash(persisted)
        if data.query is None:
            query = await self._stored(sha256)
            if query is None:
                raise PersistedQueryError(
                    code=ErrorCode.PERSISTED_QUERY_NOT_FOUND,
                    message="PersistedQueryNotFound",
                    status=404,
                )
            return replace(data, query=query)
        if hashlib.sha256(data.query.encode()).hexdigest() != sha256:
            raise PersistedQueryError(
                code=ErrorCode.PERSISTED_QUERY_HASH_MISMATCH,
                message="provided sha does not match query",
                status=400,
            )
        # Comments cost no tokens, so only the size bounds what a stranger can make us keep.
        if len(data.query.encode()) <= self._max_bytes and self._accepts(data.query):
            await self._keep(sha256, data.query)
        return data

    async def _stored(self, sha256: str) -> str | None:
        try:
            query = await self.storage.get(sha256)
        except Exception as error:
            # The store is a cache: without it, clients send their documents in full.
            self._storage_failed(error)
            return None
        self._storage_answered()
        return query

    async def _keep(self, sha256: str, query: str) -> None:
        try:
            await self.storage.put(sha256, query)
        except Exception as error:
            self._storage_failed(error)
            return
        self._storage_answered()

    def _storage_failed(self, error: Exception) -> None:
        if self.storage.dependency is not None:
            self._availability.failed(self.storage.dependency, error)
        else:
            logger.warning("Persisted query storage failed", exc_info=True)

    def _storage_answered(self) -> None:
        if self.storage.dependency is not None:
            self._availability.answered(self.storage.dependency)


def _requested_hash(persisted: object) -> str:
    if not isinstance(persisted, dict) or not _is_supported_version(persisted.get("version")):
        raise PersistedQueryError(
            code=ErrorCode.PERSISTED_QUERY_INVALID,
            message=f"Only persisted query version {SUPPORTED_VERSION} is supported",
            status=400,
        )
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise PersistedQueryError(
            code=ErrorCode.PERSISTED_QUERY_INVALID,
            message="sha256Hash must be 64 lowercase hexadecimal digits",
            status=400,
        )
    return sha256


def _is_supported_version(version: object) -> bool:
    # JSON's true is Python's True, which equals 1: only the number 1 is version 1.
    return type(version) is int and version == SUPPORTED_VERSION
