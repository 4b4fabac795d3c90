"""Taking one counted attempt back out of a moving window, which `limits` cannot do.

The library's moving-window strategy counts but never uncounts: a cost of zero or less
acquires nothing and removes nothing, and ``clear`` forgets the whole window (one correct
sign-in would wipe out every failure counted before it). Both of its storages keep a moving
window as a list of entry timestamps, newest first: in the process, a list of entries under a
lock per key; in Redis, a list per key, changed only by scripts. The classes here remove one
entry from that list the same way, so a removal is atomic with the library's own updates.

The entry removed is the oldest one counted since the attempt began: its own, or one that a
concurrent attempt counted just before it. Every entry left is then as new as, or newer than,
those an exact removal would leave, so a give-back never frees a place sooner than it should.
``tests/security/test_rate_limit.py`` holds both storages to this layout.
"""

from typing import TYPE_CHECKING, Protocol

from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.errors import StorageError

if TYPE_CHECKING:
    import coredis

# KEYS[1]: a moving window's list of entry timestamps. ARGV[1]: when the attempt began.
# The oldest entry at or after it goes; equal timestamps are interchangeable, so LREM by value.
REMOVE_OLDEST_ENTRY_SINCE = """
local since = tonumber(ARGV[1])
local oldest = nil
for _, entry in ipairs(redis.call('lrange', KEYS[1], 0, -1)) do
    local timestamp = tonumber(entry)
    if timestamp >= since and (oldest == nil or timestamp < tonumber(oldest)) then
        oldest = entry
    end
end
if oldest == nil then
    return 0
end
return redis.call('lrem', KEYS[1], -1, oldest)
"""


class GiveBack(Protocol):
    async def remove_entry(self, key: str, *, counted_since: float) -> None: ...


class MemoryGiveBack:
    def __init__(self, storage: MemoryStorage) -> None:
        self._storage = storage

    async def remove_entry(self, key: str, *, counted_since: float) -> None:
        # The lock the storage takes to add entries and to drop expired ones.
        async with self._storage.locks[key]:
            entries = self._storage.events.get(key, [])
            since = [entry for entry in entries if entry.atime >= counted_since]
            if since:
                entries.remove(min(since, key=lambda entry: entry.atime))


class RedisGiveBack:
    def __init__(self, storage: RedisStorage, pool: "coredis.ConnectionPool") -> None:
        import coredis  # noqa: PLC0415 - the pool's module is loaded already; this is cheap

        self._storage = storage
        self._script = coredis.Redis(connection_pool=pool).register_script(
            REMOVE_OLDEST_ENTRY_SINCE
        )

    async def remove_entry(self, key: str, *, counted_since: float) -> None:
        import coredis.exceptions  # noqa: PLC0415 - loaded with the storage; cheap

        try:
            await self._script.execute(
                [self._storage.bridge.prefixed_key(key)], [repr(counted_since)]
            )
        except coredis.exceptions.RedisError as error:
            # As the storage reports its own failures (wrap_exceptions).
            raise StorageError(error) from error


def give_back_for(storage: Storage, pool: "coredis.ConnectionPool | None") -> GiveBack:
    if isinstance(storage, MemoryStorage):
        return MemoryGiveBack(storage)
    if isinstance(storage, RedisStorage) and pool is not None:
        return RedisGiveBack(storage, pool)
    raise TypeError(f"no way to give back an attempt counted in {type(storage).__name__}")
