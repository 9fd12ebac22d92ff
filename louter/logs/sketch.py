"""Percentiles in bounded memory: exact for small samples, then a log-bucket histogram.

Up to `exact_limit` values (10,000 by default) are kept as they are and percentiles are
exact (nearest rank: the value at rank `ceil(q * n)` of the sorted values). Past that they
are folded into a log-bucket histogram (the DDSketch idea) and memory stops growing with
the count. A positive value `x` falls in bucket `ceil(log_gamma(x))` with
`gamma = (1 + a) / (1 - a)`; the bucket's representative `2 * gamma**i / (gamma + 1)` is
within relative error `a` of every value in it. A quantile walks the buckets in order to
the nearest rank, so it is within `a` (1 % by default) of the exact nearest-rank
percentile, clamped to the exact minimum and maximum. Memory grows with the spread of the
values, not their number: latencies from 1 µs to 1 day need about 1,250 buckets at 1 %.
Zero and negative values share one bucket whose representative is 0.
"""

from __future__ import annotations

import math
from typing import Any


class Sketch:
    """Count, min, max, mean and approximate quantiles of a stream of numbers."""

    __slots__ = (
        "_gamma_log", "_gamma", "_buckets", "_zeros", "_exact", "_limit",
        "count", "total", "low", "high",
    )  # fmt: skip

    def __init__(self, relative_accuracy: float = 0.01, exact_limit: int = 10_000) -> None:
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._gamma_log = math.log(self._gamma)
        self._buckets: dict[int, int] = {}
        self._exact: list[float] | None = []
        self._limit = exact_limit
        self._zeros = 0
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        if self._exact is not None:
            self._exact.append(value)
            if len(self._exact) > self._limit:
                values, self._exact = self._exact, None
                for kept in values:
                    self._bucket(kept)
            return
        self._bucket(value)

    @property
    def exact(self) -> bool:
        """Percentiles are exact (few enough values were added)."""
        return self._exact is not None

    def _bucket(self, value: float) -> None:
        if value <= 0:
            self._zeros += 1
            return
        index = math.ceil(math.log(value) / self._gamma_log)
        self._buckets[index] = self._buckets.get(index, 0) + 1

    def quantile(self, q: float) -> float | None:
        """The nearest-rank `q`-quantile (0 < q <= 1) within the relative accuracy."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        if self._exact is not None:
            return sorted(self._exact)[rank - 1]
        seen = self._zeros
        if rank <= seen:
            return max(self.low, 0.0)
        for index in sorted(self._buckets):  # rank <= count: some bucket reaches it
            seen += self._buckets[index]
            if seen >= rank:
                break
        value = 2 * self._gamma**index / (self._gamma + 1)
        return min(max(value, self.low), self.high)

    def summary(self, digits: int = 3) -> dict[str, Any]:
        """`count`, `min`, `p50`, `p90`, `p99`, `max`, `mean` (None when empty), `method`."""
        if not self.count:
            keys = ("min", "p50", "p90", "p99", "max", "mean")
            return {"count": 0} | dict.fromkeys(keys) | {"method": "exact"}
        marks = {f"p{round(q * 100)}": self.quantile(q) for q in (0.5, 0.9, 0.99)}
        return {
            "count": self.count,
            "min": round(self.low, digits),
            **{k: round(v, digits) for k, v in marks.items() if v is not None},
            "max": round(self.high, digits),
            "mean": round(self.total / self.count, digits),
            "method": "exact" if self.exact else "sketch",
        }
