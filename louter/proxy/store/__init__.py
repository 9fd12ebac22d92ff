"""The one state store: where limits, leases, sessions, cache entries and counters live.

Without `[store]` everything stays in this process (`MemoryStore`, no I/O). With
`[store] url = "redis://..."` the same calls go to Redis (`RedisStore`), so counters are
exact across any number of louter processes, behind `GuardedStore`, which gives every
call a deadline (`op_timeout_ms`) and the declared failure mode (`on_error`). Redis code
(and `hiredis`) is imported only by `build_store` when a URL is configured.

The interface (`Store`), all calls async, every time taken from the store's own clock
(Redis server TIME inside the scripts; never the caller's):

    reserve(keys, costs, limits) -> Decision
        Token buckets, one per key: `limits[i]` holds `capacity` tokens, refilled evenly
        over `window_seconds` (rpm: capacity N, window 60, cost 1; tpm: capacity T, cost
        the request's estimate). All keys admit or none is charged (one atomic script).
    settle(key, limit, delta)
        Charge `delta` more tokens (negative: give back) once real usage is known; a
        bucket may go into debt. Off the critical path: RedisStore pipelines settles.
    admit(keys, costs, limits, caps, cap_limits, lease_seconds) -> Decision
        `reserve` and `acquire` at once, all or nothing (one atomic script, one round
        trip): a slot in each of `caps`, then the buckets; `Decision.full` when a cap has
        no free slot (nothing charged), `Decision.lease` the slot taken.
    acquire(keys, limits, lease_seconds) -> lease | None
        One slot in each concurrency counter (`max_concurrent`), all or none. Slots are
        leases that expire, so a crashed instance cannot hold them forever; `renew`
        extends a long stream's lease, `release` frees it.
    get(key) / set(key, value, ttl_seconds) / delete(key)
        Small byte values with an optional time to live (sessions, routes, cache).
    incr(key, amount, ttl_seconds) -> int
        A counter; the TTL starts with the first increment (fixed windows, usage).
    hincr(key, amounts, ttl_seconds) / hgetall(key) -> {field: int}
        A hash of integer counters (usage per day), incremented together; the TTL is
        set on every call.
    spend(key, limit, amount, ttl_seconds) -> (allowed, total)
        A budget: refused (nothing added) when the counter has reached `limit`, else
        `amount` added; one atomic script with Redis. `incr` settles it later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from louter.proxy.store.memory import MemoryStore
from louter.proxy.store.types import Decision, Limit, StoreError

if TYPE_CHECKING:
    from louter.config import StoreConfig
    from louter.proxy.metrics import StoreMetrics

__all__ = ["Decision", "Limit", "MemoryStore", "Store", "StoreError", "build_store"]


class Store(Protocol):
    async def reserve(
        self, keys: Sequence[str], costs: Sequence[float], limits: Sequence[Limit]
    ) -> Decision: ...

    async def settle(self, key: str, limit: Limit, delta: float) -> None: ...

    async def admit(
        self,
        keys: Sequence[str],
        costs: Sequence[float],
        limits: Sequence[Limit],
        caps: Sequence[str],
        cap_limits: Sequence[int],
        lease_seconds: float,
    ) -> Decision: ...

    async def acquire(
        self, keys: Sequence[str], limits: Sequence[int], lease_seconds: float
    ) -> str | None: ...

    async def renew(self, keys: Sequence[str], lease: str, lease_seconds: float) -> None: ...

    async def release(self, keys: Sequence[str], lease: str) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int: ...

    async def hincr(
        self, key: str, amounts: Mapping[str, int], ttl_seconds: float | None = None
    ) -> None: ...

    async def hgetall(self, key: str) -> dict[str, int]: ...

    async def spend(
        self, key: str, limit: int, amount: int, ttl_seconds: float | None = None
    ) -> tuple[bool, int]: ...

    async def aclose(self) -> None: ...


def build_store(
    config: StoreConfig | None,
    *,
    metrics: StoreMetrics | None = None,
    warn: Callable[[str], None] | None = None,
) -> Store:
    """The store `config` asks for: a `MemoryStore` without `[store]`, else a guarded
    `RedisStore` (the only place Redis code gets imported)."""
    if config is None:
        return MemoryStore()
    from louter.proxy.store.guarded import GuardedStore  # noqa: PLC0415 - only when configured
    from louter.proxy.store.redis import RedisStore  # noqa: PLC0415 - imports hiredis

    return GuardedStore(
        RedisStore.from_config(config),
        MemoryStore(),
        op_timeout=config.op_timeout_ms / 1000,
        on_error=config.on_error,
        metrics=metrics,
        warn=warn or _no_warning,
    )


def _no_warning(message: str) -> None:
    """No one asked to hear about store episodes (they are still counted in metrics)."""
