"""The accounting's Prometheus series (in `/metrics` beside the others):
`usage_unpriced_total`, `usage_records_dropped_total`, `usage_write_errors_total`,
`budget_usd{key}`, `budget_spent_usd{key}` (this process's last reading of the key's
period spend) and `budget_refused_total{key}`. Key names come from the config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from louter.logs.usage import NANO
from louter.proxy.metrics import Count

if TYPE_CHECKING:
    from louter.proxy.accounting.ledger import Ledger


class UsageMetrics:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.unpriced = Count()
        self._refused: dict[str, Count] = {}
        self._budgets: dict[str, tuple[float, float]] = {}  # key -> (budget, spent) in USD

    def refused(self, key: str) -> None:
        self._refused.setdefault(key, Count()).inc()

    def spent(self, key: str, budget: float, spent_nano: int) -> None:
        self._budgets[key] = (budget, spent_nano / NANO)

    def collect(self) -> Iterator[Metric]:
        yield _counter("usage_unpriced", "Exchanges with tokens on a model of unknown price",
                       self.unpriced.value)  # fmt: skip
        yield _counter(
            "usage_records_dropped",
            "Usage records not written to the usage file (queue full or write failed)",
            float(self._ledger.dropped),
        )
        yield _counter("usage_write_errors", "Failed writes to the usage file",
                       float(self._ledger.write_errors))  # fmt: skip
        budget = GaugeMetricFamily("budget_usd", "A key's budget per period", labels=["key"])
        spent = GaugeMetricFamily(
            "budget_spent_usd", "A key's spend in its current budget period", labels=["key"]
        )
        for key, (limit, used) in self._budgets.items():
            budget.add_metric([key], limit)
            spent.add_metric([key], used)
        yield budget
        yield spent
        refused = CounterMetricFamily(
            "budget_refused", "Requests refused over budget", labels=["key"]
        )
        for key, count in self._refused.items():
            refused.add_metric([key], count.value)
        yield refused


def _counter(name: str, doc: str, value: float) -> Metric:
    family = CounterMetricFamily(name, doc)
    family.add_metric([], value)
    return family
