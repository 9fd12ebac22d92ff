"""Where cached answers live: in this process (`MemoryEntries`, an LRU bounded by bytes)
or in the shared store (`StoreEntries`: Redis, entries expire there). A store that does
not answer raises `StoreError`: the cache then bypasses, the request goes upstream.

`count()` is what `/health/cache` reports: exact in this process; from Redis an estimate
kept in counters (`StoreEntries`), since entries expire there unseen."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from louter.proxy.store.types import StoreError

if TYPE_CHECKING:
    from louter.proxy.store.guarded import GuardedStore

ENTRY_OVERHEAD = 160  # bytes an entry costs beyond its key and value (dict slot, tuple)
KEY_PREFIX = "cache:"
COUNT_PREFIX = "cache-count:"
SLOTS = 16  # the time slots a TTL's worth of stores is counted in (StoreEntries)


class Entries(Protocol):
    kind: str  # "memory" | "store"

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...
    def stats(self) -> dict[str, int | None]:
        """What is known without asking the store (None: not known here)."""
        ...

    async def count(self) -> dict[str, int | None]:
        """`entries` and `size_bytes` for `/health/cache` (may ask the store)."""
        ...


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

    async def count(self) -> dict[str, int | None]:
        return self.stats()


def _cost(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


class StoreEntries:
    """Entries in the shared store (Redis), with its expiry; every call under the store's
    deadline and back-off, without its in-process fallback (`GuardedStore.strict`).

    Redis expires entries without telling anyone, so their number and size are counted
    as they are stored: per time slot (a `ttl_seconds / SLOTS` stretch, at least a
    second), in two counters that expire with the slot's last entry. `count()` sums
    the slots whose entries are still alive (the oldest one pro rata): every louter on
    this Redis counts, with this louter's `ttl_seconds`. An estimate: a refreshed entry
    counts twice until the first copy's time is up, and an entry Redis evicted to stay
    within its `maxmemory` still counts. Sizes are keys and values in bytes."""

    kind = "store"

    def __init__(
        self, store: GuardedStore, ttl_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._slot = max(ttl_seconds / SLOTS, 1.0)
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        return await self._store.strict("cache_get", lambda r: r.get(KEY_PREFIX + key))

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._store.strict("cache_set", lambda r: r.set(KEY_PREFIX + key, value, ttl_seconds))
        slot = int(self._clock() // self._slot)
        alive = ttl_seconds + self._slot  # the slot's last entry expires by then
        size = len(KEY_PREFIX) + len(key) + len(value)
        strict = self._store.strict
        try:
            await strict("cache_count", lambda r: r.incr(_counter("n", slot), 1, alive))
            await strict("cache_count", lambda r: r.incr(_counter("b", slot), size, alive))
        except StoreError:
            return  # stored all the same: the estimate misses it

    def stats(self) -> dict[str, int | None]:
        return {"entries": None, "size_bytes": None}  # only `count` asks Redis

    async def count(self) -> dict[str, int | None]:
        """The estimate (see the class); None for both when the store does not answer."""
        now = self._clock()
        oldest = now - self._ttl  # entries stored before this have expired
        first, last = int(oldest // self._slot), int(now // self._slot)
        entries = size = 0.0
        try:
            for slot in range(first, last + 1):
                start = slot * self._slot
                share = min(1.0, (start + self._slot - oldest) / self._slot)
                entries += share * await self._read("n", slot)
                size += share * await self._read("b", slot)
        except StoreError:
            return {"entries": None, "size_bytes": None}
        return {"entries": round(entries), "size_bytes": round(size)}

    async def _read(self, kind: str, slot: int) -> int:
        raw = await self._store.strict("cache_count", lambda r: r.get(_counter(kind, slot)))
        return int(raw) if raw else 0


def _counter(kind: str, slot: int) -> str:
    return f"{COUNT_PREFIX}{kind}:{slot}"
