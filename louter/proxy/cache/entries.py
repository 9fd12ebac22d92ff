"""Where cached answers live: in this process (`MemoryEntries`, an LRU bounded by bytes)
or in the shared store (`StoreEntries`: Redis, entries expire there). A store that does
not answer raises `StoreError`: the cache then bypasses, the request goes upstream."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from louter.proxy.store.guarded import GuardedStore

ENTRY_OVERHEAD = 160  # bytes an entry costs beyond its key and value (dict slot, tuple)
KEY_PREFIX = "cache:"


class Entries(Protocol):
    kind: str  # "memory" | "store"

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...
    def stats(self) -> dict[str, int | None]: ...


class MemoryEntries:
    """Least recently used entries, at most `max_bytes` in all (keys, values and a fixed
    overhead each); an expired entry goes when it is next read or evicted."""

    kind = "memory"

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[1] <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return found[0]

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        cost = _cost(key, value)
        if cost > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (value, self._clock() + ttl_seconds)
        self.bytes += cost
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        value, _ = self._entries.pop(key)
        self.bytes -= _cost(key, value)

    def stats(self) -> dict[str, int | None]:
        return {"entries": len(self._entries), "size_bytes": self.bytes}


def _cost(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


class StoreEntries:
    """Entries in the shared store (Redis), with its expiry; every call under the store's
    deadline and back-off, without its in-process fallback (`GuardedStore.strict`)."""

    kind = "store"

    def __init__(self, store: GuardedStore) -> None:
        self._store = store

    async def get(self, key: str) -> bytes | None:
        return await self._store.strict("cache_get", lambda r: r.get(KEY_PREFIX + key))

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._store.strict("cache_set", lambda r: r.set(KEY_PREFIX + key, value, ttl_seconds))

    def stats(self) -> dict[str, int | None]:
        return {"entries": None, "size_bytes": None}  # Redis knows (INFO, DBSIZE)
