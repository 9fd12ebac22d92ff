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
from datetime import UTC, datetime
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
    moment = datetime.fromtimestamp(math.ceil(now + seconds), UTC)
    return moment.isoformat().replace("+00:00", "Z").encode("ascii")


def _seconds(text: str, form: str, now: float) -> float | None:
    if form == DURATION:
        if not _DURATION.fullmatch(text):
            return None
        return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)
