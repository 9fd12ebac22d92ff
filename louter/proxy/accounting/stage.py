"""The accounting stage (design §12 "budget reserve" and "settle & accounting"): in the
pipeline only when `[usage]` is configured or a key has a `budget_usd`.

Per generate request: `on_request` checks the key's budget (`budget.py`) and hangs a
`Meter` on the exchange; the relays call `Meter.measure` when the answer's usage is known
(whole answers: before they are sent, for `x-louter-cost-usd`; streams: at their end) —
the backend's own usage, or louter's estimate when it reports none. `after` turns the
exchange into a `UsageRecord`: added to the day counters and the budget spend in the
store, queued for the usage file (`Ledger`), and written to the JSONL log as a `usage`
entry (what `log-parser usage` sums).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from louter.access import ClientKey
from louter.logs.usage import group_of, record_counts, usd
from louter.proxy.accounting import queries
from louter.proxy.accounting.budget import current, refusal
from louter.proxy.accounting.counters import UsageCounters, spend_key
from louter.proxy.accounting.metrics import UsageMetrics
from louter.proxy.accounting.periods import DAY, day_of, period_start
from louter.proxy.accounting.record import Pricing, UsageRecord, budget_nano, cost_nano
from louter.proxy.pipeline import Call, Stage
from louter.proxy.store import MemoryStore, Store
from louter.proxy.usage import estimate_output

if TYPE_CHECKING:
    from louter.config import UsageConfig
    from louter.convert.model import Response
    from louter.proxy.exchange import Exchange

SESSION_HEADER = "x-session-id"
MAX_SESSION = 128
COST_HEADER = b"x-louter-cost-usd"


class Meter:
    """Prices one exchange's answer once its usage is known."""

    __slots__ = ("_accounting", "_call", "tokens", "estimated", "cost", "ttft", "hold")

    def __init__(self, accounting: Accounting, call: Call) -> None:
        self._accounting = accounting
        self._call = call
        self.tokens: tuple[int, int] | None = None
        self.estimated = False
        self.cost: int | None = None
        self.ttft: float | None = None
        self.hold: tuple[str, int, float | None] | None = None  # (spend key, nano, ttl)

    def measure(
        self, tokens: tuple[int, int] | None, text: str, ttft: float | None = None
    ) -> dict[str, Any]:
        """Record the answer's usage (`tokens`, else estimated from `text`); the fields
        its `client_response` log entry gets."""
        self.estimated = tokens is None
        if tokens is None:
            tokens = (self._call.lazy.estimate(), estimate_output(text))
        self.tokens = tokens
        self.ttft = ttft
        exchange = self._call.exchange
        self.cost = self._accounting.price(exchange.model or "", exchange.backend or "", tokens)
        return {"cost_usd": None if self.cost is None else usd(self.cost)}

    def header(self) -> list[tuple[bytes, bytes]]:
        """`x-louter-cost-usd` for a whole answer, when its cost is known."""
        if self.cost is None:
            return []
        return [(COST_HEADER, f"{usd(self.cost):.9f}".rstrip("0").rstrip(".").encode())]


class Accounting(Stage):
    def __init__(
        self,
        config: UsageConfig,
        keys: Mapping[str, ClientKey],
        store: Store,
        pricing: Pricing,
        owner: Callable[[str], str],
        *,
        clock: Callable[[], float] = time.time,
        metrics: UsageMetrics | None = None,
    ) -> None:
        self.config = config
        self.keys = {name: key for name, key in keys.items() if key.budget_usd is not None}
        self.store = store
        self.pricing = pricing
        self._owner = owner  # model -> the backend serving it (a hold's price)
        self.clock = clock
        from louter.proxy.accounting.ledger import Ledger  # noqa: PLC0415 - sqlite3 only if used

        self.ledger = Ledger(
            config.db,
            queue_size=config.queue_size,
            flush_seconds=config.flush_seconds,
            retention_days=config.retention_days,
            clock=clock,
        )
        self.counters = UsageCounters(store, config.retention_days)
        self.metrics = metrics or UsageMetrics(self.ledger)
        self._loaded = False
        self._loading = trio.Lock()

    def price(self, model: str, backend: str, tokens: tuple[int, int]) -> int | None:
        return cost_nano(tokens, self.pricing(model, backend))

    # ------------------------------------------------------------------ start-up

    async def ready(self) -> None:
        """In-process counters start from the usage file (once); Redis keeps its own."""
        if self._loaded:
            return
        async with self._loading:
            if not self._loaded and isinstance(self.store, MemoryStore):
                await self._load()
            self._loaded = True

    async def _load(self) -> None:
        now = self.clock()
        days = self.config.retention_days or 366
        since = now - now % DAY - days * DAY
        await self.counters.add_all(await self.ledger.query(queries.groups, since))
        for key in self.keys.values():
            period_id, ttl = current(key, now)
            start = period_start(key.budget_period, now)
            spent = await self.ledger.query(queries.spent, key.name, start)
            if spent:
                await self.store.incr(spend_key(key.name, key.budget_period, period_id), spent, ttl)

    # ------------------------------------------------------------------ the stage

    async def on_request(self, call: Call) -> Response | None:
        if call.kind != "generate":
            return None
        meter = Meter(self, call)
        call.exchange.meter = meter
        key = call.exchange.key
        budgeted = self.keys.get(key.name) if key is not None else None
        if budgeted is not None:
            await self.ready()
            await self._check(call, budgeted, meter)
        return None

    async def _check(self, call: Call, key: ClientKey, meter: Meter) -> None:
        now = self.clock()
        period_id, ttl = current(key, now)
        counter = spend_key(key.name, key.budget_period, period_id)
        hold = self._hold(call)
        assert key.budget_usd is not None
        allowed, total = await self.store.spend(counter, budget_nano(key.budget_usd), hold, ttl)
        self.metrics.spent(key.name, key.budget_usd, total - (hold if allowed else 0))
        if not allowed:
            self.metrics.refused(key.name)
            raise refusal(key, total, now)
        meter.hold = (counter, hold, ttl)

    def _hold(self, call: Call) -> int:
        """The request's cost if it used its whole `max_tokens` (0 when unpriced)."""
        output = call.request.max_tokens or 0
        cost = self.price(call.model, self._owner(call.model), (call.lazy.estimate(), output))
        return cost or 0

    async def after(self, call: Call, status: int) -> None:
        if call.kind != "generate":
            return
        await self.ready()
        meter: Meter | None = call.exchange.meter
        record = self._record(call, status, meter)
        if record.cost_nano is None:
            self.metrics.unpriced.inc()
        if meter is not None and meter.hold is not None:
            counter, hold, ttl = meter.hold
            delta = (record.cost_nano or 0) - hold
            if delta:
                total = await self.store.incr(counter, delta, ttl)
                key = self.keys[record.key or ""]
                assert key.budget_usd is not None
                self.metrics.spent(key.name, key.budget_usd, total)
        group = group_of(day_of(record.ts), record.key, self.counters.model_name(record.model),
                         record.backend)  # fmt: skip
        await self.counters.add(
            group, record_counts(record.status, _tokens(record), record.cost_nano)
        )
        self.ledger.put(record)
        _log(call.exchange, record)

    def _record(self, call: Call, status: int, meter: Meter | None) -> UsageRecord:
        exchange = call.exchange
        tokens: tuple[int, int] = (0, 0)
        estimated, ttft = False, None
        cost: int | None = 0
        if meter is not None and meter.tokens is not None:
            tokens, estimated, cost, ttft = meter.tokens, meter.estimated, meter.cost, meter.ttft
        elif status == 499 and exchange.attempts:  # the client left mid-answer: input spent
            tokens, estimated = (call.lazy.estimate(), 0), True
            cost = self.price(exchange.model or "", exchange.backend or "", tokens)
        key = exchange.key
        return UsageRecord(
            ts=self.clock(),
            request_id=exchange.request_id,
            key=None if key is None else key.name,
            session=_session(call),
            model=exchange.model or call.model,
            backend=exchange.backend,
            dialect=call.dialect,
            endpoint=exchange.label,
            status=status,
            latency_ms=exchange.elapsed_ms(),
            ttft_ms=None if ttft is None else round(ttft * 1000, 3),
            stream=call.stream,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            estimated=estimated,
            cost_nano=cost,
        )

    def close(self) -> None:
        self.ledger.close()


def _tokens(record: UsageRecord) -> tuple[int, int]:
    return record.input_tokens, record.output_tokens


def _session(call: Call) -> str | None:
    value = call.http.headers.get(SESSION_HEADER)
    if not value:
        return None
    return "".join(c for c in value[:MAX_SESSION] if c.isprintable())


_LOGGED = ("time", "key", "session", "stream", "ttft_ms", "input_tokens", "output_tokens",
           "estimated", "cost_usd")  # fmt: skip


def _log(exchange: Exchange, record: UsageRecord) -> None:
    """The `usage` entry of the JSONL log: the record (metadata only)."""
    if exchange.logging:
        view = record.view()
        exchange.log("usage", status=record.status, **{name: view[name] for name in _LOGGED})
