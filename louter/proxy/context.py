"""What every handler needs, built once at start-up and passed in (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from louter.catalog import Catalog
from louter.config import Config
from louter.http.deadlines import Deadlines
from louter.proxy.auth import Gate
from louter.proxy.exchange import RequestIds
from louter.proxy.journal import Journal
from louter.proxy.metrics import Metrics
from louter.proxy.pipeline import NO_STAGES, Pipeline
from louter.proxy.routing import Router
from louter.proxy.scrub import Scrubber
from louter.proxy.store import MemoryStore, Store
from louter.proxy.upstreams import Upstream

if TYPE_CHECKING:
    from louter.group.worker import Link as Group
    from louter.proxy.accounting.stage import Accounting
    from louter.proxy.cache import ResponseCache
    from louter.proxy.limits import BackendLimits
    from louter.proxy.served import Served
    from louter.proxy.sessions import Sessions
    from louter.proxy.shared_breakers import SharedBreakers


@dataclass(frozen=True, slots=True)
class ProxyContext:
    config: Config
    router: Router
    upstreams: dict[str, Upstream]
    journal: Journal
    ids: RequestIds
    clock: Callable[[], float]  # wall-clock seconds, for `created` timestamps
    deadlines: Deadlines  # upstream first-byte and stream-idle timeouts
    metrics: Metrics | None = None  # None with `enable_metrics = false`
    scrub: Scrubber = field(default_factory=Scrubber)  # addresses and keys out of errors
    pipeline: Pipeline = NO_STAGES  # the request pipeline's stages (none: zero cost)
    gate: Gate | None = None  # client-key auth (None: auth off, zero cost)
    store: Store = field(default_factory=MemoryStore)  # shared state (`[store]`)
    backend_limits: BackendLimits | None = None  # `[limits.backends.*]` (None: no cost)
    accounting: Accounting | None = None  # `[usage]` / budgets (None: no stage, no cost)
    catalog: Catalog = field(default_factory=Catalog)  # [models], prices file: `price()`
    served: Served | None = None  # which models are served (listings, lookups, reject)
    cache: ResponseCache | None = None  # `[cache]` (also in the pipeline; /health/cache)
    group: Group | None = None  # a worker of `--workers N`: /metrics, /health for all
    shared_breakers: SharedBreakers | None = None  # breakers shared via `[store]`
    sessions: Sessions | None = None  # `[session]`: x-session-id, commands, runtime routes
