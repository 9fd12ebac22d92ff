"""Circuit breakers shared by every louter on one store (`[store]` set; issue 23).

A backend opened by one instance is skipped by all until its cool-down ends. The
breakers stay local (the hot path asks them, never the store); this task, in the
background, keeps them in step:

- when a failure opens a breaker here (`Breaker.on_open`), its deadline (wall-clock
  seconds, so other processes and machines can read it) and its scrubbed last error are
  written to `breaker:<backend>` with a time to live equal to the cool-down, unless the
  store holds a later deadline already;
- every `REFRESH` seconds (the local cache's age) the shared entries are read and merged
  into the local breakers (`Breaker.merge`: a merge only extends a cool-down).

Without `[store]` nothing of this exists (no task, no store call). The store's own
guard applies: a Redis outage makes these calls fall back to the process (each instance
then keeps its own breakers) and never blocks a request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import orjson
import trio

from louter.proxy.breaker import Breaker
from louter.proxy.scrub import Scrubber
from louter.proxy.store import Store

REFRESH = 0.5  # seconds between reads of the shared breakers
KEY = "breaker:"


class SharedBreakers:
    def __init__(
        self,
        breakers: Mapping[str, Breaker],
        store: Store,
        *,
        wall: Callable[[], float],
        scrub: Scrubber,
    ) -> None:
        self._breakers = breakers
        self._store = store
        self._wall = wall
        self._scrub = scrub
        self._opened: set[str] = set()  # opened here, not yet published (config names)
        self._wake: trio.Event | None = None
        for name, breaker in breakers.items():
            breaker.on_open = partial(self._opened_here, name)

    def _opened_here(self, name: str) -> None:
        self._opened.add(name)
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Publish openings as they happen; read the others' every `REFRESH` seconds."""
        while True:
            self._wake = trio.Event()
            if not self._opened:
                with trio.move_on_after(REFRESH):
                    await self._wake.wait()
            await self.publish()
            await self.refresh()

    async def publish(self) -> None:
        opened, self._opened = self._opened, set()
        for name in opened:
            breaker = self._breakers[name]
            remaining = breaker.remaining()
            if remaining <= 0:
                continue
            until = self._wall() + remaining
            shared = _decode(await self._store.get(KEY + name))
            if shared is not None and shared["until"] >= until:
                continue  # a later deadline is there already: never shorten it
            error = breaker.last_error and self._scrub(breaker.last_error, name)
            value = orjson.dumps({"until": until, "error": error})
            await self._store.set(KEY + name, value, ttl_seconds=remaining)

    async def refresh(self) -> None:
        for name, breaker in self._breakers.items():
            shared = _decode(await self._store.get(KEY + name))
            if shared is not None:
                remaining = shared["until"] - self._wall()
                error = shared.get("error")
                breaker.merge(
                    breaker.clock() + remaining, error if isinstance(error, str) else None
                )


def _decode(value: bytes | None) -> dict[str, Any] | None:
    """A shared entry, or None when absent or not one of ours."""
    if value is None:
        return None
    try:
        found = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("until"), int | float):
        return None
    return found
