"""Live model discovery: each backend's own model list, read through its upstream
transport, cached for `[catalog] discovery_ttl_seconds`.

Lazy: nothing is read until a listing, a model lookup or `unknown_models = "reject"`
asks (`Discovery.lists`). The first ask waits for the lists (at most
`discovery_timeout_seconds`, concurrent asks share one read per backend); after the TTL
the old list keeps answering while the background task (`Discovery.run`, started with
the server) reads a fresh one. A failed read is logged (`warn`), counted
(`discovery_failures_total{backend}`) and kept beside the last good list: never fatal.

The mock backend has no list: it answers every name (`Listing.everything`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import trio

from louter.catalog import ModelInfo
from louter.config import CatalogConfig
from louter.errors import LouterError
from louter.proxy.discovered import LISTERS, Lister
from louter.proxy.upstreams import Upstream

if TYPE_CHECKING:
    from louter.proxy.metrics import Metrics

MAX_LIST_BYTES = 16 * 1024 * 1024  # one page of a backend's list
MAX_PAGES = 20
MAX_MODELS = 20_000  # per backend
RETRY_SECONDS = 30.0  # a failed read is tried again this soon (or after the TTL if shorter)


@dataclass(frozen=True, slots=True)
class Listing:
    """What one backend was last found to serve. `models` is None until a read worked;
    `error` is the last read's failure (None after a success)."""

    models: tuple[ModelInfo, ...] | None = None
    fetched_at: float | None = None  # monotonic seconds of the last good read
    error: str | None = None
    everything: bool = False  # the mock: every name is served
    ids: frozenset[str] = frozenset()  # the ids of `models`, for `serves`

    def serves(self, model: str) -> bool | None:
        """True / False when the list says; None when no list was ever read."""
        if self.everything:
            return True
        if self.models is None:
            return None
        return model in self.ids


EVERYTHING = Listing(everything=True)


class Discovery:
    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        settings: CatalogConfig,
        *,
        clock: Callable[[], float],
        warn: Callable[[str], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._upstreams = {
            name: u for name, u in upstreams.items() if u.backend.protocol in LISTERS
        }
        self._mock = {n for n, u in upstreams.items() if u.backend.protocol == "mock"}
        self._settings = settings
        self._clock = clock
        self._warn = warn
        self._metrics = metrics
        self._lists: dict[str, Listing] = {}
        self._reading: dict[str, trio.Event] = {}
        self._stale: set[str] = set()
        self._wake = trio.Event()

    def known(self, name: str) -> Listing | None:
        """The cached list of backend `name` (no read); EVERYTHING for the mock."""
        return EVERYTHING if name in self._mock else self._lists.get(name)

    async def lists(self, names: Iterable[str]) -> dict[str, Listing]:
        """The lists of `names` (backends without a list API left out): read now those
        never read, the stale ones refreshed in the background."""
        names = [n for n in names if n in self._upstreams or n in self._mock]
        missing = [n for n in names if n in self._upstreams and n not in self._lists]
        if missing:
            async with trio.open_nursery() as nursery:
                for name in missing:
                    nursery.start_soon(self._read_once, name)
        self._mark_stale(names)
        return {n: listing for n in names if (listing := self.known(n)) is not None}

    def _mark_stale(self, names: Iterable[str]) -> None:
        now, ttl = self._clock(), self._settings.discovery_ttl_seconds
        for name in names:
            listing = self._lists.get(name)
            wait = ttl if listing is None or listing.error is None else min(ttl, RETRY_SECONDS)
            if listing is not None and now - (listing.fetched_at or 0.0) >= wait:
                self._stale.add(name)
        if self._stale:
            self._wake.set()

    async def _read_once(self, name: str) -> None:
        """One read of `name`'s list; concurrent callers wait for the same read."""
        reading = self._reading.get(name)
        if reading is not None:
            await reading.wait()
            return
        self._reading[name] = done = trio.Event()
        try:
            await self._read(name)
        finally:
            del self._reading[name]
            done.set()

    async def _read(self, name: str) -> None:
        upstream = self._upstreams[name]
        old = self._lists.get(name, Listing())
        timeout = self._settings.discovery_timeout_seconds
        problem = "no answer within {timeout:g}s"
        with trio.move_on_after(timeout):
            try:
                models = await read_list(upstream, LISTERS[upstream.backend.protocol], timeout)
            except (LouterError, ValueError, OSError, trio.BrokenResourceError) as exc:
                problem = str(exc.message if isinstance(exc, LouterError) else exc)
            else:
                self._lists[name] = Listing(models, self._clock(), ids=_ids(models))
                return
        problem = problem.format(timeout=timeout)
        self._lists[name] = Listing(old.models, self._clock(), problem, ids=old.ids)
        if self._warn is not None:
            self._warn(f"model discovery: {name}: {problem}")
        if self._metrics is not None:
            self._metrics.discovery_failure(name)

    async def run(self) -> None:
        """The background refresher: reads the stale lists whenever some are."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            stale, self._stale = self._stale, set()
            async with trio.open_nursery() as nursery:
                for name in stale:
                    nursery.start_soon(self._read_once, name)


def _ids(models: tuple[ModelInfo, ...]) -> frozenset[str]:
    return frozenset(m.id for m in models)


async def read_list(upstream: Upstream, lister: Lister, timeout: float) -> tuple[ModelInfo, ...]:
    """Every page of a backend's list (bounded: pages, bytes, models)."""
    found: list[ModelInfo] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await _get(upstream, lister.path(cursor), timeout)
        models, cursor = lister.parse(page, upstream.backend.name)
        found.extend(models)
        if cursor is None or len(found) >= MAX_MODELS:
            break
    return tuple(found[:MAX_MODELS])


async def _get(upstream: Upstream, path: str, timeout: float) -> object:
    response = await upstream.transport.request(
        path, upstream.headers, b"", first_byte_timeout=timeout, method="GET"
    )
    body = bytearray()
    try:
        async for chunk in response.chunks():
            body += chunk
            if len(body) > MAX_LIST_BYTES:
                raise ValueError(f"the model list is larger than {MAX_LIST_BYTES} bytes")
    finally:
        await response.aclose()
    if response.status != 200:
        raise ValueError(f"GET {path.split('?')[0]} answered {response.status}")
    return orjson.loads(body)
