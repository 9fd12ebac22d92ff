"""Usage totals and breakdowns: the one reducer behind `GET /v2/usage/stats` (fed from
the usage counters) and `log-parser usage` (fed from a JSONL log's `usage` entries), so
both answer the same numbers for the same traffic.

A group is (day, key, model, backend); its counts are requests, errors (status >= 400),
input and output tokens, cost in nano-dollars (integers: no rounding drift) and
unpriced requests (tokens spent on a model without a known price: their cost is unknown,
never counted as $0). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DIMENSIONS = ("key", "model", "backend", "day")
COUNTS = ("requests", "errors", "input_tokens", "output_tokens", "cost_nano", "unpriced")
NONE = "(none)"  # the group name of a missing key or backend (auth off, a refused request)
NANO = 1_000_000_000

Group = tuple[str, str, str, str]  # (day, key, model, backend)


def usd(nano: int) -> float:
    return round(nano / NANO, 9)


def record_counts(status: int, tokens: tuple[int, int], cost_nano: int | None) -> list[int]:
    """The counts one exchange adds to its group."""
    return [
        1,
        int(status >= 400),
        tokens[0],
        tokens[1],
        cost_nano or 0,
        int(cost_nano is None),
    ]


def group_of(day: str, key: Any, model: Any, backend: Any) -> Group:
    return (day, str(key or NONE), str(model or NONE), str(backend or NONE))


class UsageTotals:
    """Counts summed overall and per value of each dimension in `by`."""

    def __init__(self, by: Sequence[str] = DIMENSIONS) -> None:
        unknown = [d for d in by if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown dimension {unknown[0]!r} (known: {', '.join(DIMENSIONS)})")
        self.by = tuple(by)
        self.total = [0] * len(COUNTS)
        self._tables: dict[str, dict[str, list[int]]] = {d: {} for d in self.by}

    def add(self, group: Group, counts: Sequence[int]) -> None:
        values = dict(zip(("day", "key", "model", "backend"), group, strict=True))
        _add(self.total, counts)
        for dimension in self.by:
            row = self._tables[dimension].setdefault(values[dimension], [0] * len(COUNTS))
            _add(row, counts)

    def add_groups(self, groups: Iterable[tuple[Group, Sequence[int]]]) -> None:
        for group, counts in groups:
            self.add(group, counts)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"totals": view(self.total)}
        for dimension in self.by:
            table = self._tables[dimension]
            rows = [{dimension: name, **view(counts)} for name, counts in table.items()]
            rows.sort(
                key=lambda r: (
                    (r[dimension]) if dimension == "day" else (-r["requests"], r[dimension])
                )
            )
            out[f"by_{dimension}"] = rows
        return out


def _add(into: list[int], counts: Sequence[int]) -> None:
    for i, value in enumerate(counts):
        into[i] += value


def view(counts: Sequence[int]) -> dict[str, Any]:
    """Counts as the API shows them: cost in dollars, or null when nothing was priced."""
    requests, errors, tokens_in, tokens_out, nano, unpriced = counts
    priced = nano > 0 or unpriced == 0
    return {
        "requests": requests,
        "errors": errors,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
        "cost_usd": usd(nano) if priced else None,
        "unpriced_requests": unpriced,
    }


def entry_group(entry: Mapping[str, Any]) -> tuple[Group, list[int]] | None:
    """A log's `usage` entry as (group, counts); None for any other entry."""
    if entry.get("direction") != "usage":
        return None
    stamp = entry.get("time") or entry.get("timestamp")  # the record's own time first
    if not isinstance(stamp, str) or len(stamp) < 10:
        return None
    tokens = (_int(entry.get("input_tokens")), _int(entry.get("output_tokens")))
    cost = entry.get("cost_usd")
    nano = None if not isinstance(cost, int | float) else round(cost * NANO)
    status = _int(entry.get("status"))
    group = group_of(stamp[:10], entry.get("key"), entry.get("model"), entry.get("backend"))
    return group, record_counts(status, tokens, nano)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
