"""The in-process store: plain dicts, one trio thread, no I/O, no locks. Its calls never
wait, so each has a synchronous twin (`reserve_now`, `admit_now`, ...) that in-process
callers use without a coroutine.

Everything is lazy: a bucket refills when it is next read, an expired value or lease is
dropped when it is next touched, and every `SWEEP_EVERY` writes one pass drops whatever
expired untouched, so memory stays bounded by what is live.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial

from louter.proxy.store.types import FULL, Decision, Limit

SWEEP_EVERY = 4096  # writes between two passes over expired values and idle buckets
_decision = partial(tuple.__new__, Decision)  # a Decision from a full tuple (no __new__ call)
ADMITTED = Decision(True, 0.0, (), ())  # `admit` with neither buckets nor caps


class MemoryStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float, float]] = {}  # key -> (tokens, at, full_at)
        self._leases: dict[str, dict[str, float]] = {}  # key -> lease -> expiry
        self._values: dict[str, tuple[bytes, float]] = {}  # key -> (value, expiry)
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (count, expiry)
        self._hashes: dict[str, tuple[dict[str, int], float]] = {}  # key -> (fields, expiry)
        self._writes = 0
        self._ids = map(str, itertools.count(1))  # lease ids (in-process: a counter is unique)

    # ------------------------------------------------------------------ token buckets

    def reserve_now(
        self, keys: Sequence[str], costs: Sequence[float], limits: Sequence[Limit]
    ) -> Decision:
        """`reserve`, synchronously (what the in-process callers use: no checkpoint)."""
        return self._reserve(keys, costs, limits, self._clock())

    def _reserve(
        self,
        keys: Sequence[str],
        costs: Sequence[float],
        limits: Sequence[Limit],
        now: float,
        lease: str | None = None,
    ) -> Decision:
        """Charge every bucket in one pass; a bucket short of its cost gives back what the
        ones before it were charged (exactly: a state read at `now` or later is the same
        whether written before or after the charge) and the answer is a refusal. `lease`:
        the admitted answer's (`admit_now` takes the slot once the charge succeeded)."""
        buckets = self._buckets
        remaining: list[int] = []
        reset: list[float] = []
        for key, cost, limit in zip(keys, costs, limits):  # noqa: B905 - hot, same lengths
            state = buckets.get(key)
            capacity = limit.capacity
            if state is None or state[2] <= now:  # new, or full again
                tokens = capacity - cost
            else:  # refilling linearly since `at` (state: (tokens, at, full_at))
                tokens = state[0] + (now - state[1]) * limit.rate
                if tokens > capacity:
                    tokens = capacity
                tokens -= cost
            if tokens < 0:
                self._give_back(keys, costs, limits, len(remaining))
                return self._refused(keys, costs, limits, now)
            empty = (capacity - tokens) / limit.rate  # (a cost is > 0: not full now)
            buckets[key] = (tokens, now, now + empty)
            remaining.append(int(tokens))
            reset.append(empty)
        self._wrote(now)
        return _decision((True, 0.0, tuple(remaining), tuple(reset), lease, False))

    def _give_back(
        self, keys: Sequence[str], costs: Sequence[float], limits: Sequence[Limit], count: int
    ) -> None:
        """Undo the charge of the first `count` buckets of a refused reserve."""
        for key, cost, limit in zip(keys[:count], costs[:count], limits[:count]):  # noqa: B905
            tokens, at, full_at = self._buckets[key]
            self._buckets[key] = (tokens + cost, at, full_at - cost / limit.rate)

    def _refused(
        self, keys: Sequence[str], costs: Sequence[float], limits: Sequence[Limit], now: float
    ) -> Decision:
        """A refused reserve's answer: nothing charged, each bucket as it is, and the
        seconds until every bucket could pay."""
        have = []
        wait = 0.0
        for key, cost, limit in zip(keys, costs, limits):  # noqa: B905 - same lengths
            state = self._buckets.get(key)
            tokens = limit.capacity
            if state is not None and state[2] > now:
                tokens = min(tokens, state[0] + (now - state[1]) * limit.rate)
            wait = max(wait, (cost - tokens) / limit.rate)
            have.append(tokens)
        remaining = tuple(int(tokens) if tokens > 0 else 0 for tokens in have)
        reset = tuple(
            (limit.capacity - tokens) / limit.rate if tokens < limit.capacity else 0.0
            for limit, tokens in zip(limits, have)  # noqa: B905 - same lengths
        )
        return _decision((False, wait, remaining, reset, None, False))

    async def reserve(
        self, keys: Sequence[str], costs: Sequence[float], limits: Sequence[Limit]
    ) -> Decision:
        return self._reserve(keys, costs, limits, self._clock())

    def settle_now(self, key: str, limit: Limit, delta: float) -> None:
        now = self._clock()
        state = self._buckets.get(key)
        if state is not None and state[2] > now:
            # Not full again yet, so it has refilled linearly since `at`: charging the
            # stored tokens is exact (no refill to compute, no sweep count).
            tokens, at, full_at = state
            self._buckets[key] = (tokens - delta, at, full_at + delta / limit.rate)
            return
        if delta <= 0:  # a full bucket given tokens back stays full: nothing to write
            return
        # Full: `capacity` tokens now, less `delta`
        self._buckets[key] = (limit.capacity - delta, now, now + delta / limit.rate)
        self._wrote(now)

    async def settle(self, key: str, limit: Limit, delta: float) -> None:
        self.settle_now(key, limit, delta)

    # ------------------------------------------------------------------ concurrency leases

    def _live(self, key: str, now: float) -> dict[str, float]:
        leases = self._leases.get(key)
        if leases is None:
            return {}
        if leases and min(leases.values()) <= now:
            for lease in [lease for lease, expiry in leases.items() if expiry <= now]:
                del leases[lease]
        return leases

    def _claim(
        self, keys: Sequence[str], limits: Sequence[int], lease: str, expiry: float, now: float
    ) -> bool:
        """Give `lease` a slot under every key, or (a key's slots all taken) none: False.
        Expired leases are looked for only when the slots look taken; no sweep count (a
        key's leases are bounded by its cap, and the keys by the config)."""
        table = self._leases
        for key, cap in zip(keys, limits):  # noqa: B905 - hot, same lengths
            leases = table.get(key)
            if leases is not None and len(leases) >= cap and len(self._live(key, now)) >= cap:
                return False
        for key in keys:
            leases = table.get(key)
            if leases is None:
                table[key] = {lease: expiry}
            else:
                leases[lease] = expiry
        return True

    async def acquire(
        self, keys: Sequence[str], limits: Sequence[int], lease_seconds: float
    ) -> str | None:
        now = self._clock()
        lease = next(self._ids)
        return lease if self._claim(keys, limits, lease, now + lease_seconds, now) else None

    def admit_now(
        self,
        keys: Sequence[str],
        costs: Sequence[float],
        limits: Sequence[Limit],
        caps: Sequence[str],
        cap_limits: Sequence[int],
        lease_seconds: float,
    ) -> Decision:
        """`admit`, synchronously."""
        now = self._clock()
        if not caps:
            return self._reserve(keys, costs, limits, now) if keys else ADMITTED
        lease = next(self._ids)
        if not self._claim(caps, cap_limits, lease, now + lease_seconds, now):
            return FULL  # (nothing charged)
        if not keys:
            return _decision((True, 0.0, (), (), lease, False))
        decision = self._reserve(keys, costs, limits, now, lease)
        if not decision.allowed:  # the slot back: all or none
            self.release_now(caps, lease)
        return decision

    async def admit(
        self,
        keys: Sequence[str],
        costs: Sequence[float],
        limits: Sequence[Limit],
        caps: Sequence[str],
        cap_limits: Sequence[int],
        lease_seconds: float,
    ) -> Decision:
        return self.admit_now(keys, costs, limits, caps, cap_limits, lease_seconds)

    def renew_now(self, keys: Sequence[str], lease: str, lease_seconds: float) -> None:
        now = self._clock()
        for key in keys:
            leases = self._live(key, now)
            if lease in leases:
                leases[lease] = now + lease_seconds

    async def renew(self, keys: Sequence[str], lease: str, lease_seconds: float) -> None:
        self.renew_now(keys, lease, lease_seconds)

    def release_now(self, keys: Sequence[str], lease: str) -> None:
        table = self._leases
        for key in keys:
            leases = table.get(key)
            if leases is not None:  # (an emptied table stays for the next lease; `sweep`)
                leases.pop(lease, None)

    async def release(self, keys: Sequence[str], lease: str) -> None:
        self.release_now(keys, lease)

    # ------------------------------------------------------------------ values and counters

    async def get(self, key: str) -> bytes | None:
        found = self._values.get(key)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._values[key]
            return None
        return found[0]

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        now = self._clock()
        self._values[key] = (value, math.inf if ttl_seconds is None else now + ttl_seconds)
        self._wrote(now)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._counters.pop(key, None)

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        now = self._clock()
        count, expiry = self._counters.get(key, (0, math.inf))
        if expiry <= now:
            count, expiry = 0, math.inf
        if count == 0 and expiry == math.inf and ttl_seconds is not None:
            expiry = now + ttl_seconds
        self._counters[key] = (count + amount, expiry)
        self._wrote(now)
        return count + amount

    async def hincr(
        self, key: str, amounts: Mapping[str, int], ttl_seconds: float | None = None
    ) -> None:
        now = self._clock()
        fields, expiry = self._hashes.get(key, ({}, math.inf))
        if expiry <= now:
            fields = {}
        for name, amount in amounts.items():
            fields[name] = fields.get(name, 0) + amount
        self._hashes[key] = (fields, math.inf if ttl_seconds is None else now + ttl_seconds)
        self._wrote(now)

    async def hgetall(self, key: str) -> dict[str, int]:
        found = self._hashes.get(key)
        if found is None or found[1] <= self._clock():
            return {}
        return dict(found[0])

    async def spend(
        self, key: str, limit: int, amount: int, ttl_seconds: float | None = None
    ) -> tuple[bool, int]:
        now = self._clock()
        count, expiry = self._counters.get(key, (0, math.inf))
        if expiry <= now:
            count, expiry = 0, math.inf
        if count >= limit:
            return False, count
        if ttl_seconds is not None:
            expiry = now + ttl_seconds
        self._counters[key] = (count + amount, expiry)
        self._wrote(now)
        return True, count + amount

    async def aclose(self) -> None:
        """Nothing to close (the Store interface has it for the Redis store)."""

    # ------------------------------------------------------------------ housekeeping

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            self.sweep(now)

    def sweep(self, now: float) -> None:
        """Drop expired values, counters and leases and buckets that are full again."""
        for table in (self._values, self._counters, self._hashes):
            for key in [k for k, (_, expiry) in table.items() if expiry <= now]:
                del table[key]
        for key in [k for k, state in self._buckets.items() if state[2] <= now]:
            del self._buckets[key]
        for key in list(self._leases):
            if not self._live(key, now):
                del self._leases[key]
