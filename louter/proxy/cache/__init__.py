"""The exact response cache (`[cache]`): see `stage.py` for what it does per request,
`key.py` for what a key holds, `entries.py` for where entries live, `codec.py` for an
entry's bytes. `build_cache` makes the stage when `[cache]` is configured (and only then
imports it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from louter.config import Config
    from louter.proxy.cache.entries import Entries
    from louter.proxy.cache.stage import ResponseCache
    from louter.proxy.routing import Router
    from louter.proxy.store import Store

__all__ = ["build_cache"]


def build_cache(
    config: Config, store: Store, router: Router, clock: Callable[[], float] = time.time
) -> ResponseCache | None:
    """The cache stage `[cache]` asks for (None without `[cache]`): entries in the shared
    store with `storage = "store"`, or `"auto"` and a `[store]`; else in this process."""
    settings = config.cache
    if settings is None:
        return None
    from louter.proxy.cache.entries import MemoryEntries, StoreEntries  # noqa: PLC0415
    from louter.proxy.cache.stage import ResponseCache  # noqa: PLC0415 - only when configured
    from louter.proxy.store.guarded import GuardedStore  # noqa: PLC0415

    entries: Entries
    if settings.storage != "memory" and isinstance(store, GuardedStore):
        entries = StoreEntries(store, settings.ttl_seconds, clock)
    else:
        entries = MemoryEntries(settings.max_bytes)
    return ResponseCache(settings, entries, router, auth_on=config.auth.on, clock=clock)
