"""Rate-limit response headers across dialects (pure).

Each dialect's record names its rate-limit headers (`Dialect.ratelimit`, from its
`wire.py`) by a neutral key `<scope>-<field>`: scope `requests`, `tokens`,
`input-tokens` or `output-tokens`; field `limit`, `remaining` or `reset`. An upstream's
headers reach a client of another dialect under the client's names; a header the
client's dialect has no name for is dropped. A reset is a duration in OpenAI's headers
(`6m0s`, `20ms`) and an RFC 3339 time in Anthropic's: converted with the caller's clock.
A dialect without rate-limit headers of its own (`ratelimit = None`: Gemini) gets the
upstream's under their own names. `retry-after` and `retry-after-ms` pass unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from louter.convert.record import Dialect

__all__ = ["DURATION", "TIMESTAMP", "RateLimits", "client_headers"]

DURATION, TIMESTAMP = "duration", "timestamp"  # how a dialect writes a reset
RETRY_HEADERS = frozenset({b"retry-after", b"retry-after-ms"})
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A dialect's rate-limit headers: neutral key -> header name, and its reset form."""

    names: Mapping[str, bytes]
    reset: str  # DURATION or TIMESTAMP
    keys: Mapping[bytes, str] = field(init=False)  # header name -> neutral key

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", {name: key for key, name in self.names.items()})


def client_headers(
    headers: Iterable[tuple[bytes, bytes]], backend: Dialect, client: Dialect, now: float
) -> list[tuple[bytes, bytes]]:
    """The upstream's rate-limit and retry headers in `headers` (lower-case names) as a
    `client` dialect answer carries them; `now`: wall-clock seconds (for resets)."""
    source, target = backend.ratelimit, client.ratelimit
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name in RETRY_HEADERS:
            out.append((name, value))
            continue
        key = None if source is None else source.keys.get(name)
        if key is None:
            continue
        if target is None:
            out.append((name, value))
            continue
        renamed = target.names.get(key)
        if renamed is None:
            continue
        if key.endswith("-reset") and source is not None and source.reset != target.reset:
            value = _reset(value, source.reset, target.reset, now)
        out.append((renamed, value))
    return out


def _reset(value: bytes, source: str, target: str, now: float) -> bytes:
    """A reset rewritten from `source` to `target` form; unchanged when it does not parse."""
    seconds = _seconds(value.decode("latin-1").strip(), source, now)
    if seconds is None:
        return value
    if target == DURATION:
        return f"{round(seconds, 3):g}s".encode("ascii")
    return _rfc3339(math.ceil(now + seconds)).encode("ascii")


def _seconds(text: str, form: str, now: float) -> float | None:
    if form == DURATION:
        if not _DURATION.fullmatch(text):
            return None
        return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    moment = _epoch(text)
    return None if moment is None else max(0.0, moment - now)


# RFC 3339 times to and from epoch seconds, in plain arithmetic (convert/ reads no clock
# and imports no time module): the proleptic Gregorian calendar, days counted from
# 1970-01-01 (H. Hinnant's days_from_civil / civil_from_days).
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?"
)


def _days(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def _epoch(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (UTC when it has no offset)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    seconds = float(_days(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)
    seconds += float(match[7]) if match[7] else 0.0
    if match[9]:
        offset = int(match[10]) * 3600 + int(match[11]) * 60
        seconds -= offset if match[9] == "+" else -offset
    return seconds


def _rfc3339(seconds: int) -> str:
    """An epoch second as RFC 3339 in UTC (`2026-12-07T01:30:00Z`)."""
    days, rest = divmod(seconds, 86400)
    year, month, day = _civil(days)
    hour, rest = divmod(rest, 3600)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}Z"
