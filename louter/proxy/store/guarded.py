"""Deadlines and the declared failure mode around a remote store.

Every call gets `op_timeout` seconds. A call that fails or runs out of time is counted
(`store_errors_total{op}`), the connections are dropped, and the answer comes from the
failure mode (`on_error`):

    local   the in-process store answers (limits per process instead of global)
    open    reserve and acquire admit; nothing is charged
    closed  reserve and acquire refuse (retry after the back-off)

Values and counters (get/set/delete/incr) fall back to the in-process store in every
mode: a session or cache entry is then per process, a miss at worst. After a failure
the remote store is left alone for a back-off (50 ms, doubling up to 2 s) during which
calls take the fallback at once, so louter never waits on a Redis it knows is down; the
first call after it tries again. An episode is reported once through `warn` when it
starts and once when Redis answers again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import trio

from louter.proxy.store.types import Decision, Limit, StoreError

if TYPE_CHECKING:
    from louter.proxy.metrics import StoreMetrics
    from louter.proxy.store import Store
    from louter.proxy.store.memory import MemoryStore

    class Remote(Store, Protocol):
        def reset(self) -> None:
            """Drop every connection (after a failure the idle ones may be dead too)."""


T = TypeVar("T")
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 2.0
LOCAL = "local:"  # leases taken from the fallback store
OPEN_LEASE = "open"  # a lease granted by on_error = "open": nothing to release

_FAILURES = (StoreError, OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class GuardedStore:
    def __init__(
        self,
        remote: Remote,
        local: MemoryStore,
        *,
        op_timeout: float,
        on_error: str,
        metrics: StoreMetrics | None,
        warn: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remote = remote
        self.local = local
        self._timeout = op_timeout
        self._mode = on_error
        self._metrics = metrics
        self._warn = warn
        self._clock = clock
        self._down_until = 0.0
        self._backoff = 0.0  # 0 while healthy

    # ------------------------------------------------------------------ the guard

    async def _guard(
        self, op: str, call: Callable[[], Awaitable[Any]], fallback: Callable[[], Awaitable[Any]]
    ) -> Any:
        if self._backoff and self._clock() < self._down_until:
            self._count(op)
            return await fallback()
        started = time.perf_counter()
        try:
            with trio.move_on_after(self._timeout) as scope:
                result = await call()
            if scope.cancelled_caught:
                raise StoreError(f"no answer within {self._timeout * 1000:g} ms")
        except _FAILURES as exc:
            self._failed(op, exc)
            return await fallback()
        if self._metrics is not None:
            self._metrics.observe(op, time.perf_counter() - started)
        if self._backoff:
            self._backoff = 0.0
            self._warn("store: redis answers again; shared limits are back")
        return result

    def _count(self, op: str) -> None:
        if self._metrics is not None:
            self._metrics.error(op)

    def _failed(self, op: str, exc: BaseException) -> None:
        self._count(op)
        self.remote.reset()
        if not self._backoff:
            self._warn(
                f"store: redis failed on {op} ({exc}); on_error = {self._mode!r} until it "
                "answers again"
            )
        self._backoff = min(MAX_BACKOFF, self._backoff * 2) if self._backoff else FIRST_BACKOFF
        self._down_until = self._clock() + self._backoff

    def _retry_after(self) -> float:
        return max(self._down_until - self._clock(), FIRST_BACKOFF)

    # ------------------------------------------------------------------ admission

    async def reserve(
        self, keys: Sequence[str], costs: Sequence[float], limits: Sequence[Limit]
    ) -> Decision:
        async def fallback() -> Decision:
            if self._mode == "local":
                return await self.local.reserve(keys, costs, limits)
            allowed = self._mode == "open"
            retry = 0.0 if allowed else self._retry_after()
            full = tuple(int(lim.capacity) for lim in limits)
            return Decision(allowed, retry, full, tuple(0.0 for _ in limits))

        return await self._guard(
            "reserve", lambda: self.remote.reserve(keys, costs, limits), fallback
        )

    async def admit(
        self,
        keys: Sequence[str],
        costs: Sequence[float],
        limits: Sequence[Limit],
        caps: Sequence[str],
        cap_limits: Sequence[int],
        lease_seconds: float,
    ) -> Decision:
        async def fallback() -> Decision:
            if self._mode == "local":
                found = self.local.admit_now(*asked)
                if found.lease is None:
                    return found
                return found._replace(lease=LOCAL + found.lease)
            full, zero = tuple(int(lim.capacity) for lim in limits), (0.0,) * len(limits)
            if self._mode == "open":
                return Decision(True, 0.0, full, zero, OPEN_LEASE if caps else None)
            return Decision(False, self._retry_after(), full, zero)

        asked = (keys, costs, limits, caps, cap_limits, lease_seconds)
        return await self._guard("admit", partial(self.remote.admit, *asked), fallback)

    async def settle(self, key: str, limit: Limit, delta: float) -> None:
        async def fallback() -> None:
            if self._mode == "local":
                await self.local.settle(key, limit, delta)

        await self._guard("settle", lambda: self.remote.settle(key, limit, delta), fallback)

    async def acquire(
        self, keys: Sequence[str], limits: Sequence[int], lease_seconds: float
    ) -> str | None:
        async def fallback() -> str | None:
            if self._mode == "local":
                lease = await self.local.acquire(keys, limits, lease_seconds)
                return None if lease is None else LOCAL + lease
            return OPEN_LEASE if self._mode == "open" else None

        call = lambda: self.remote.acquire(keys, limits, lease_seconds)  # noqa: E731
        return await self._guard("acquire", call, fallback)

    async def renew(self, keys: Sequence[str], lease: str, lease_seconds: float) -> None:
        if lease.startswith(LOCAL):
            await self.local.renew(keys, lease.removeprefix(LOCAL), lease_seconds)
        elif lease != OPEN_LEASE:
            await self._guard(
                "renew", lambda: self.remote.renew(keys, lease, lease_seconds), _nothing
            )

    async def release(self, keys: Sequence[str], lease: str) -> None:
        if lease.startswith(LOCAL):
            await self.local.release(keys, lease.removeprefix(LOCAL))
        elif lease != OPEN_LEASE:  # a lost release: the lease expires on its own
            await self._guard("release", lambda: self.remote.release(keys, lease), _nothing)

    # ------------------------------------------------------------------ values and counters

    async def get(self, key: str) -> bytes | None:
        return await self._guard("get", lambda: self.remote.get(key), lambda: self.local.get(key))

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        await self._guard(
            "set",
            lambda: self.remote.set(key, value, ttl_seconds),
            lambda: self.local.set(key, value, ttl_seconds),
        )

    async def delete(self, key: str) -> None:
        await self.local.delete(key)
        await self._guard("delete", lambda: self.remote.delete(key), _nothing)

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        return await self._guard(
            "incr",
            lambda: self.remote.incr(key, amount, ttl_seconds),
            lambda: self.local.incr(key, amount, ttl_seconds),
        )

    async def hincr(
        self, key: str, amounts: Mapping[str, int], ttl_seconds: float | None = None
    ) -> None:
        await self._guard(
            "hincr",
            lambda: self.remote.hincr(key, amounts, ttl_seconds),
            lambda: self.local.hincr(key, amounts, ttl_seconds),
        )

    async def hgetall(self, key: str) -> dict[str, int]:
        return await self._guard(
            "hgetall", lambda: self.remote.hgetall(key), lambda: self.local.hgetall(key)
        )

    async def spend(
        self, key: str, limit: int, amount: int, ttl_seconds: float | None = None
    ) -> tuple[bool, int]:
        """A budget check; on failure `on_error` decides: local (this process's own
        count), open (admitted), closed (refused)."""

        async def fallback() -> tuple[bool, int]:
            if self._mode == "local":
                return await self.local.spend(key, limit, amount, ttl_seconds)
            return self._mode == "open", 0

        call = lambda: self.remote.spend(key, limit, amount, ttl_seconds)  # noqa: E731
        return await self._guard("spend", call, fallback)

    async def aclose(self) -> None:
        await self.remote.aclose()

    # ------------------------------------------------------------------ without a fallback

    async def strict(self, op: str, call: Callable[[Remote], Awaitable[T]]) -> T:
        """`call(remote)` under the deadline and back-off, but with no fallback: a failure
        (or the back-off after one) raises `StoreError`. For callers whose answer to a
        store outage is to do without it (the response cache bypasses)."""

        async def unavailable() -> T:
            raise StoreError(f"store unavailable for {op}")

        result: T = await self._guard(op, lambda: call(self.remote), unavailable)
        return result


async def _nothing() -> None:
    """The fallback of a call whose loss costs nothing (a lease expires on its own)."""
