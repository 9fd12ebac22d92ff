"""Calendar arithmetic for usage days and budget periods, in UTC, from epoch seconds
passed in (no clock read here).

A budget period is `day`, `week` (ISO weeks, from Monday 00:00), `month` or `total`;
each has an id (the store key of its spend counter), a start and a reset time (None for
`total`, which never resets)."""

from __future__ import annotations

import calendar
import time

DAY = 86_400.0


def day_of(ts: float) -> str:
    """`YYYY-MM-DD` (UTC) of epoch seconds `ts`."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def day_start(day: str) -> float:
    """Epoch seconds of `YYYY-MM-DD` 00:00 UTC (ValueError for another shape)."""
    return float(calendar.timegm(time.strptime(day, "%Y-%m-%d")))


def _midnight(ts: float) -> float:
    return ts - ts % DAY


def period_start(period: str, ts: float) -> float:
    """When the `period` holding `ts` began (0 for `total`)."""
    if period == "day":
        return _midnight(ts)
    if period == "week":
        midnight = _midnight(ts)
        return midnight - time.gmtime(midnight).tm_wday * DAY
    if period == "month":
        t = time.gmtime(ts)
        return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))
    return 0.0


def period_reset(period: str, ts: float) -> float | None:
    """When the `period` holding `ts` ends (None: `total` never does)."""
    if period == "day":
        return _midnight(ts) + DAY
    if period == "week":
        return period_start("week", ts) + 7 * DAY
    if period == "month":
        t = time.gmtime(ts)
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        return float(calendar.timegm((year, month, 1, 0, 0, 0)))
    return None


def period_id(period: str, ts: float) -> str:
    """A name for the `period` holding `ts`: its first day (`total`: "total")."""
    return "total" if period == "total" else day_of(period_start(period, ts))
