"""Prometheus metrics (design §9), served at `GET /metrics` in the text format.

Cheap on the hot path: louter runs on one trio thread, so the values are plain numbers in
slotted objects (no locks, no label validation per request), bound once per backend at
start-up and per endpoint/method/status on first use. prometheus-client renders them
(imported at the first scrape, `exposition`): one collector turns them into metric
families when scraped, in a `CollectorRegistry` of its own (never the process-global
one: tests run several louters in one process).
`backend_up` is read from the breakers when scraped, so it is never stale.

    http_request_duration_seconds{endpoint,method,status}   whole request, as the client saw it
    backend_request_duration_seconds{backend,status}        one attempt, head to last byte
    tokens_total{backend,type}                              type = input | output
    errors_total{type,endpoint}
    time_to_first_token_seconds{backend}                    first answer byte to the client
    louter_overhead_seconds                                 time inside louter per request
    routing_decisions_total{backend,outcome}                served | failed | skipped
    backend_up{backend}                                     0 while its breaker cools down
    http_requests_in_flight, backend_requests_in_flight{backend}
    log_write_errors_total                                  failed writes to the JSONL log
    store_latency_seconds{op}, store_errors_total{op}       only with a [store] configured
    auth_failures_total{reason}                             requests refused by client-key auth
    rate_limited_total{scope,name}                          requests refused by [limits]
    usage_*, budget_*                                       with [usage] (proxy/accounting/)
    discovery_failures_total{backend}                       failed reads of a backend's model list
    cache_hits_total, cache_misses_total, cache_bypasses_total, cache_bytes   with [cache]
    commands_total{command,outcome}                         in-chat commands (`!/...`)
    sessions_evicted_total, sessions_live                   sessions (`sessions/metrics.py`)
    loop_detections_total{kind,backend,action}              text / tool_call loops found
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from louter.proxy.breaker import Breaker

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from louter.proxy.accounting.metrics import UsageMetrics

Labels = tuple[str, ...]  # label values, in the order of the family's label names
OUTCOMES = ("served", "failed", "skipped")
AUTH_REASONS = ("missing", "unknown", "expired", "model", "throttled")
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
OVERHEAD_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


class Count:
    """A counter or gauge value."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self) -> None:
        self.value -= 1.0


class Histogram:
    """Bucket counts (not cumulative until rendered), sum and count."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
        return out


STORE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)  # fmt: skip


class StoreMetrics:
    """Calls to a remote store by op: latency of the answered ones, count of the others
    (failed, timed out, or sent to the fallback during a back-off)."""

    __slots__ = ("latency", "errors")

    def __init__(self) -> None:
        self.latency: dict[str, Histogram] = {}
        self.errors: dict[str, Count] = {}

    def observe(self, op: str, seconds: float) -> None:
        found = self.latency.get(op)
        if found is None:
            found = self.latency[op] = Histogram(STORE_BUCKETS)
        found.observe(seconds)

    def error(self, op: str) -> None:
        _bump(self.errors, op)

    def collect(self) -> Iterator[Metric]:
        yield _histograms(
            "store_latency_seconds", "Answered calls to the shared store, by op",
            ["op"], {(op,): h for op, h in self.latency.items()},
        )  # fmt: skip
        yield _counters(
            "store_errors", "Store calls that failed or timed out (the fallback answered)",
            ["op"], {(op,): c for op, c in self.errors.items()},
        )  # fmt: skip


class _Backend:
    """The values of one backend, bound at start-up."""

    __slots__ = ("name", "input", "output", "ttft", "decisions", "in_flight", "durations")

    def __init__(self, name: str) -> None:
        self.name = name
        self.input = Count()
        self.output = Count()
        self.ttft = Histogram(DURATION_BUCKETS)
        self.decisions = {outcome: Count() for outcome in OUTCOMES}
        self.in_flight = Count()
        self.durations: dict[str, Histogram] = {}  # by status label

    def duration(self, status: str) -> Histogram:
        found = self.durations.get(status)
        if found is None:
            found = self.durations[status] = Histogram(DURATION_BUCKETS)
        return found


class Metrics:
    def __init__(
        self,
        backends: Sequence[str],
        breakers: Mapping[str, Breaker],
        log_write_errors: Count | None = None,
    ) -> None:
        self.log_write_errors = log_write_errors or Count()  # the journal's, counted there
        self.backends = {name: _Backend(name) for name in backends}
        self.in_flight = Count()
        self.overhead = Histogram(OVERHEAD_BUCKETS)
        self._requests: dict[tuple[str, str, int], Histogram] = {}
        self._errors: dict[Labels, Count] = {}
        self.auth_failures = {reason: Count() for reason in AUTH_REASONS}
        self._limited: dict[Labels, Count] = {}
        self._discovery: dict[Labels, Count] = {}
        self._commands: dict[Labels, Count] = {}
        self._loops: dict[Labels, Count] = {}
        self._breakers = breakers
        self.store: StoreMetrics | None = None  # set when a [store] is configured
        self.cache: Any = None  # the response cache's counts (`CacheCounts`), with [cache]
        self.usage: UsageMetrics | None = None  # the accounting's series, when configured
        self.sessions: Any = None  # the sessions' series (`SessionMetrics`), unless disabled

    def request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        found = self._requests.get(key)
        if found is None:
            found = self._requests[key] = Histogram(DURATION_BUCKETS)
        found.observe(seconds)

    def error(self, kind: str, endpoint: str) -> None:
        _bump(self._errors, (kind, endpoint))

    def rate_limited(self, scope: str, name: str) -> None:
        """A request refused by a rate limit of `scope` (default, model, key, backend);
        `name` is the model glob, key or backend name ("" for the default): bounded by
        the config, never a client's input."""
        _bump(self._limited, (scope, name))

    def discovery_failure(self, backend: str) -> None:
        """A failed read of `backend`'s model list (a config name: bounded)."""
        _bump(self._discovery, (backend,))

    def command(self, name: str, outcome: str) -> None:
        """An in-chat command: `name` is a known command or "unknown" (bounded)."""
        _bump(self._commands, (name, outcome))

    def loop_detected(self, kind: str, backend: str, action: str) -> None:
        """A loop guard's detection: `kind` text | tool_call, `action` cut | warn | steer |
        block (a closed set each; `backend` is a configured name)."""
        _bump(self._loops, (kind, backend, action))

    def render(self) -> bytes:
        """The text exposition (its content type: `content_type()`)."""
        return exposition(self)

    # ------------------------------------------------------------------ exposition

    def collect(self) -> Iterator[Metric]:
        backends = self.backends.values()
        yield _histograms(
            "http_request_duration_seconds",
            "Requests to louter, from arrival to the last byte sent",
            ["endpoint", "method", "status"],
            {(e, m, str(s)): h for (e, m, s), h in self._requests.items()},
        )
        yield _histograms(
            "backend_request_duration_seconds",
            "Upstream attempts, from sending the request to the end of the answer",
            ["backend", "status"],
            {(b.name, s): h for b in backends for s, h in b.durations.items()},
        )
        tokens: dict[Labels, Count] = {(b.name, "input"): b.input for b in backends}
        tokens.update({(b.name, "output"): b.output for b in backends})
        yield _counters(
            "tokens", "Tokens by backend, from its usage (estimated when absent)",
            ["backend", "type"], tokens,
        )  # fmt: skip
        yield _counters("errors", "Failed requests by kind", ["type", "endpoint"], self._errors)
        yield _histograms(
            "time_to_first_token_seconds",
            "From the request's arrival to the first byte of the answer sent to the client",
            ["backend"],
            {(b.name,): b.ttft for b in backends},
        )
        yield _histograms(
            "louter_overhead_seconds",
            "Time spent inside louter per request (elapsed minus waiting on upstreams)",
            [],
            {(): self.overhead},
        )
        yield _counters(
            "routing_decisions", "Per candidate backend and attempt: served, failed or skipped",
            ["backend", "outcome"],
            {(b.name, o): count for b in backends for o, count in b.decisions.items()},
        )  # fmt: skip
        yield _counters(
            "log_write_errors", "Writes to the JSONL log that failed (the exchange went unlogged)",
            [], {(): self.log_write_errors},
        )  # fmt: skip
        yield _counters(
            "auth_failures", "Requests refused by client-key auth, by reason", ["reason"],
            {(reason,): count for reason, count in self.auth_failures.items()},
        )  # fmt: skip
        if self._limited:
            yield _counters(
                "rate_limited", "Requests refused by a rate limit, by scope and its name",
                ["scope", "name"],
                self._limited,
            )  # fmt: skip
        if self._discovery:
            yield _counters(
                "discovery_failures", "Failed reads of a backend's model list", ["backend"],
                self._discovery,
            )  # fmt: skip
        if self._commands:
            yield _counters(
                "commands", "In-chat commands by name and outcome (ok, error, skipped, "
                "malformed, unknown)", ["command", "outcome"], self._commands,
            )  # fmt: skip
        if self._loops:
            yield _counters(
                "loop_detections", "Loops found by the loop guards, by kind, backend, action",
                ["kind", "backend", "action"], self._loops,
            )  # fmt: skip
        yield from self._gauges()
        if self.store is not None:
            yield from self.store.collect()
        if self.cache is not None:
            yield from self.cache.collect()
        if self.usage is not None:
            yield from self.usage.collect()
        if self.sessions is not None:
            yield from self.sessions.collect()

    def _gauges(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415 - see `exposition`

        up = GaugeMetricFamily(
            "backend_up",
            "1 when the backend takes requests, 0 while it cools down",
            labels=["backend"],
        )
        for name, breaker in self._breakers.items():
            up.add_metric([name], 1.0 if breaker.usable() else 0.0)
        yield up
        yield GaugeMetricFamily(
            "http_requests_in_flight", "Requests being handled", value=self.in_flight.value
        )
        upstream = GaugeMetricFamily(
            "backend_requests_in_flight", "Upstream requests open", labels=["backend"]
        )
        for backend in self.backends.values():
            upstream.add_metric([backend.name], backend.in_flight.value)
        yield upstream


def _histograms(
    name: str, doc: str, labels: list[str], values: Mapping[Labels, Histogram]
) -> Metric:
    from prometheus_client.core import HistogramMetricFamily  # noqa: PLC0415 - `exposition`

    family = HistogramMetricFamily(name, doc, labels=labels)
    for label_values, histogram in values.items():
        family.add_metric(list(label_values), histogram.cumulative(), histogram.sum)
    return family


K = TypeVar("K")


def _bump(table: dict[K, Count], labels: K) -> None:
    """One more in `table`'s counter for `labels` (created at its first count)."""
    found = table.get(labels)
    if found is None:
        found = table[labels] = Count()
    found.value += 1


def _counters(name: str, doc: str, labels: list[str], values: Mapping[Labels, Count]) -> Metric:
    from prometheus_client.core import CounterMetricFamily  # noqa: PLC0415 - `exposition`

    family = CounterMetricFamily(name, doc, labels=labels)
    for label_values, count in values.items():
        family.add_metric(list(label_values), count.value)
    return family


class Collector(Protocol):
    def collect(self) -> Iterator[Metric]: ...


def exposition(collector: Collector) -> bytes:
    """`collector`'s metric families in the Prometheus text format. prometheus-client is
    imported here, at the first scrape: a louter nobody scrapes never loads it (a few
    MiB of modules)."""
    from prometheus_client import CollectorRegistry, generate_latest  # noqa: PLC0415

    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry)


def content_type() -> bytes:
    """The content type of `exposition`'s text."""
    from prometheus_client.exposition import CONTENT_TYPE_LATEST  # noqa: PLC0415

    return CONTENT_TYPE_LATEST.encode("ascii")
