"""One view of many workers: their metrics and health snapshots summed (pure).

A metrics snapshot is what a worker's registry collects, as plain JSON: a list of
`[family name, type, help, [[sample name, labels, value], ...]]`. Counters and
histograms (buckets, `_sum`, `_count`) of the same labels add up; so do the in-flight
gauges; `backend_up` takes the lowest (a backend is up for the group only if it is up
for every worker). A worker that stopped gracefully leaves its final snapshot, kept as
`retired` (gauges dropped), so counters never go backwards across reloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from louter.proxy.metrics import exposition

Snapshot = list[Any]  # [[name, type, help, [[sample, labels, value], ...]], ...]
LOWEST = frozenset({"backend_up"})  # gauges whose group value is the workers' minimum
_SEVERITY = {"healthy": 0, "probing": 1, "cooling_down": 2}


def snapshot(families: Iterable[Metric]) -> Snapshot:
    """A registry's families as JSON-ready lists."""
    return [
        [f.name, f.type, f.documentation, [[s.name, s.labels, s.value] for s in f.samples]]
        for f in families
    ]


def merge(snapshots: Iterable[Snapshot]) -> Snapshot:
    """The families of all `snapshots`, values of the same sample combined."""
    families: dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]
    families = {}
    for one in snapshots:
        for name, kind, doc, samples in one:
            values = families.setdefault(name, (kind, doc, {}))[2]
            lowest = name in LOWEST
            for sample, labels, value in samples:
                key = (sample, tuple(sorted(labels.items())))
                old = values.get(key)
                if old is None:
                    values[key] = value
                else:
                    values[key] = min(old, value) if lowest else old + value
    return [
        [name, kind, doc, [[s, dict(labels), v] for (s, labels), v in values.items()]]
        for name, (kind, doc, values) in families.items()
    ]


def retire(snapshot: Snapshot) -> Snapshot:
    """What of a stopped worker's snapshot still counts: its counters and histograms."""
    return [family for family in snapshot if family[1] != "gauge"]


class _Collector:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def render(snapshot: Snapshot, workers: int) -> bytes:
    """Prometheus text for a merged snapshot, with `louter_workers` (workers that
    answered)."""
    families = []
    for name, kind, doc, samples in snapshot:
        family = Metric(name, doc, kind)
        for sample, labels, value in samples:
            family.add_sample(sample, labels, value)
        families.append(family)
    families.append(GaugeMetricFamily("louter_workers", "Worker processes that answered", workers))
    return exposition(_Collector(families))


def merge_health(bodies: Sequence[dict[str, Any]], workers: int) -> tuple[int, dict[str, Any]]:
    """The group's `/health`: ok while some worker can serve; each backend as its worst
    state among the workers; the number of workers that answered."""
    usable = any(body.get("status") == "ok" for body in bodies)
    backends: dict[str, dict[str, Any]] = {}
    for body in bodies:
        for name, state in body.get("backends", {}).items():
            seen = backends.get(name)
            if seen is None or _worse(state, seen):
                backends[name] = state
    group = {
        "status": "ok" if usable else "unavailable",
        "default": bodies[0].get("default") if bodies else None,
        "backends": backends,
        "workers": workers,
    }
    return (200 if usable else 503), group


def _worse(state: dict[str, Any], than: dict[str, Any]) -> bool:
    rank = _SEVERITY.get(state.get("state", ""), 0), state.get("consecutive_failures", 0)
    return rank > (_SEVERITY.get(than.get("state", ""), 0), than.get("consecutive_failures", 0))
