"""What `louter top` shows, computed from two readings of a louter's `/metrics` (pure:
text in, numbers out). Rates are per second between the readings; latency and TTFT
percentiles come from the histogram buckets added between them (all since start on the
first reading)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Buckets = dict[float, float]  # upper bound -> cumulative count


@dataclass(slots=True)
class BackendReading:
    requests: float = 0.0
    errors: float = 0.0
    tokens_out: float = 0.0
    latency: Buckets = field(default_factory=dict)
    ttft: Buckets = field(default_factory=dict)
    up: bool = True
    in_flight: float = 0.0


@dataclass(slots=True)
class Reading:
    """One scrape of `/metrics`."""

    at: float
    backends: dict[str, BackendReading] = field(default_factory=dict)
    rate_limited: float = 0.0
    in_flight: float = 0.0
    budgets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> budget, spent

    def backend(self, name: str) -> BackendReading:
        return self.backends.setdefault(name, BackendReading())


def _add(buckets: Buckets, bound: float, count: float) -> None:
    buckets[bound] = buckets.get(bound, 0.0) + count


def _sample(reading: Reading, name: str, labels: dict[str, str], value: float) -> None:
    backend = labels.get("backend")
    if name == "backend_request_duration_seconds_count" and backend is not None:
        found = reading.backend(backend)
        found.requests += value
        if labels.get("status", "200")[:1] in ("4", "5", "e"):
            found.errors += value
    elif name == "backend_request_duration_seconds_bucket" and backend is not None:
        if labels.get("status", "")[:1] == "2":
            _add(reading.backend(backend).latency, float(labels["le"]), value)
    elif name == "time_to_first_token_seconds_bucket" and backend is not None:
        _add(reading.backend(backend).ttft, float(labels["le"]), value)
    elif name == "tokens_total" and backend is not None and labels.get("type") == "output":
        reading.backend(backend).tokens_out += value
    elif name == "backend_up" and backend is not None:
        reading.backend(backend).up = value > 0
    elif name == "backend_requests_in_flight" and backend is not None:
        reading.backend(backend).in_flight = value
    elif name == "rate_limited_total":
        reading.rate_limited += value
    elif name == "http_requests_in_flight":
        reading.in_flight = value
    elif name in ("budget_usd", "budget_spent_usd") and "key" in labels:
        budget, spent = reading.budgets.get(labels["key"], (0.0, 0.0))
        reading.budgets[labels["key"]] = (value, spent) if name == "budget_usd" else (budget, value)


def parse_metrics(text: str, at: float) -> Reading:
    reading = Reading(at)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            _sample(reading, sample.name, dict(sample.labels), float(sample.value))
    return reading


def quantile(buckets: Buckets, q: float) -> float | None:
    """The `q` quantile (seconds) of cumulative `buckets`: the bound where it falls."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    for bound in bounds:
        if buckets[bound] >= q * total:
            return bound
    return bounds[-1]


def _delta(now: Buckets, before: Buckets) -> Buckets:
    return {bound: count - before.get(bound, 0.0) for bound, count in now.items()}


def backend_rows(now: Reading, before: Reading | None) -> list[dict[str, Any]]:
    """One row per backend: req/s, p50/p99 latency, p50 TTFT, tokens/s, errors, state."""
    seconds = max(1e-9, now.at - before.at) if before is not None else None
    rows = []
    for name, found in sorted(now.backends.items()):
        old = before.backends.get(name) if before is not None else None
        recent = old is not None and found.requests > old.requests
        latency = _delta(found.latency, old.latency) if recent and old else found.latency
        ttft = _delta(found.ttft, old.ttft) if recent and old else found.ttft
        rows.append(
            {
                "backend": name,
                "rps": 0.0 if old is None or seconds is None else
                (found.requests - old.requests) / seconds,
                "p50_ms": _ms(quantile(latency, 0.5)),
                "p99_ms": _ms(quantile(latency, 0.99)),
                "ttft_ms": _ms(quantile(ttft, 0.5)),
                "tokens_s": 0.0 if old is None or seconds is None else
                (found.tokens_out - old.tokens_out) / seconds,
                "requests": int(found.requests),
                "errors": int(found.errors),
                "state": "up" if found.up else "cooling down",
                "streams": int(found.in_flight),
            }
        )  # fmt: skip
    return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None or seconds == float("inf") else seconds * 1000


def budget_rows(reading: Reading) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "budget_usd": budget,
            "spent_usd": spent,
            "used": spent / budget if budget else None,
        }  # fmt: skip
        for key, (budget, spent) in sorted(reading.budgets.items())
    ]


def exchange_rows(records: Iterable[dict[str, Any]], text: str = "") -> list[dict[str, Any]]:
    """The audit records (newest first) whose key, model or backend contains `text`."""
    wanted = text.lower()
    return [
        r for r in records
        if not wanted or any(wanted in str(r.get(f) or "").lower()
                             for f in ("key", "model", "backend", "status"))
    ]  # fmt: skip
