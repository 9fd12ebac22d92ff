"""Runtime routes: per client model, an ordered failover list of `backend:model` targets
set from the chat (`!/route-append`, `!/route-prepend`, `!/route-clear`), kept in the
store (key `routes`) so every louter instance sharing it applies the same list.

While a model has a runtime route it takes precedence over the config's `model_mapping`:
the Router reads `table` (resolved `Route`s) before anything else. Instances re-read the
store at most once per `REFRESH_SECONDS` (a route edited on another instance applies
here within that time; `!/route-list` and edits always read it fresh). Bounded:
`MAX_MODELS` models, `MAX_TARGETS` targets each. Two instances editing the same moment
may lose one edit (last write wins): routes are edited by people, not by traffic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import orjson

from louter.proxy.routing import Route

if TYPE_CHECKING:
    from louter.config import Backend
    from louter.proxy.sessions.persist import SessionFile
    from louter.proxy.store import Store

KEY = "routes"
REFRESH_SECONDS = 1.0
MAX_MODELS = 256
MAX_TARGETS = 16
Listing = dict[str, list[str]]  # client model -> ["backend:model", ...]


class RuntimeRoutes:
    def __init__(
        self,
        store: Store,
        backends: Mapping[str, Backend],
        *,
        shared: bool,
        clock: Callable[[], float] = time.monotonic,
        file: SessionFile | None = None,
    ) -> None:
        self._store = store
        self._backends = backends
        self._shared = shared
        self._clock = clock
        self._file = file
        self._read_at = -math.inf
        self.listing: Listing = {}
        self.table: dict[str, tuple[Route, ...]] = {}  # what the Router reads

    def stale(self) -> bool:
        """The copy here may be out of date (shared store: after `REFRESH_SECONDS`)."""
        if self._shared:
            return self._clock() - self._read_at >= REFRESH_SECONDS
        return self._read_at == -math.inf

    async def refresh(self) -> None:
        """Re-read the store when the copy here may be stale."""
        if self.stale():
            await self.read()

    async def read(self) -> Listing:
        raw = await self._store.get(KEY)
        self._read_at = self._clock()
        self._use(_decode(raw))
        return self.listing

    async def edit(self, change: Callable[[Listing], None]) -> Listing:
        """Apply `change` to the current routes (read fresh) and store the result;
        `change` raises `ValueError` to refuse."""
        listing = await self.read()
        changed = {model: list(targets) for model, targets in listing.items()}
        change(changed)
        changed = {model: targets for model, targets in changed.items() if targets}
        if len(changed) > MAX_MODELS:
            raise ValueError(f"at most {MAX_MODELS} models may have runtime routes")
        await self._store.set(KEY, orjson.dumps(changed))
        self._use(changed)
        if self._file is not None:
            await self._file.write(routes=changed)
        return changed

    async def restore(self, saved: Listing) -> None:
        """The routes of the session file (in-process store only), at the first request."""
        if saved:
            await self._store.set(KEY, orjson.dumps(saved))
        await self.read()

    def _use(self, listing: Listing) -> None:
        self.listing = listing
        table = {}
        for model, targets in listing.items():
            routes = tuple(route for t in targets if (route := self.route(t)) is not None)
            if routes:
                table[model] = routes
        self.table = table

    def route(self, target: str) -> Route | None:
        """`backend:model` as a Route (None when the backend is not configured)."""
        name, sep, model = target.partition(":")
        backend = self._backends.get(name)
        if not sep or not model or backend is None:
            return None
        return Route(backend, backend.backend_model(model))


def _decode(raw: bytes | None) -> Listing:
    if raw is None:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(model): [t for t in targets if isinstance(t, str)][:MAX_TARGETS]
        for model, targets in data.items()
        if isinstance(targets, list)
    }
