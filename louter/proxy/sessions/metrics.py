"""The sessions' metrics, rendered at `/metrics` (read from the `SessionBook` when
scraped: nothing is counted on the request path beyond the book's own bookkeeping).

    sessions_evicted_total   live sessions this process dropped to stay within
                             `[session] max_sessions` (least recently used first)
    sessions_live            sessions held that have not expired: in-process store only
                             (with `[store] url` sessions live in Redis, where every
                             instance holds and renews them: no process can count them)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from louter.proxy.sessions.book import SessionBook

if TYPE_CHECKING:
    from prometheus_client.core import Metric


class SessionMetrics:
    def __init__(self, book: SessionBook, *, shared: bool) -> None:
        self._book = book
        self._shared = shared

    def collect(self) -> Iterator[Metric]:
        # prometheus-client: imported at the first scrape (`louter/proxy/metrics.py`)
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415

        yield CounterMetricFamily(
            "sessions_evicted",
            "Live sessions dropped to stay within [session] max_sessions",
            value=self._book.evicted,
        )
        if not self._shared:
            yield GaugeMetricFamily(
                "sessions_live",
                "Sessions held in process that have not expired",
                value=self._book.live(),
            )
