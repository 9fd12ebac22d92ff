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

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from louter.proxy.sessions.book import SessionBook


class SessionMetrics:
    def __init__(self, book: SessionBook, *, shared: bool) -> None:
        self._book = book
        self._shared = shared

    def collect(self) -> Iterator[Metric]:
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
