"""Selecting log entries: the criteria of `log-parser filter` (shared by the other commands).

A `Query` is built once from the command line (`build_query`) as a tuple of checks, one
per criterion given, and then only answers `matches(entry)`. Criteria combine with AND; an
entry without a timestamp never matches `--since`/`--until`.
Times compare as canonical UTC strings (`2026-01-01T10:30:45.123Z`, the journal's own
format), so the common case costs a string comparison, not a datetime parse.

`client_model` is the model an entry's client asked for, in every dialect: a Gemini
client names it in the path (`/v1beta/models/{model}:generateContent`), not in the body,
and its `client_request` entry may have no `model` of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

Entry = dict[str, Any]
Check = Callable[[Entry], bool]

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_STATUS_CLASS = re.compile(r"^([1-5])xx$", re.IGNORECASE)
_CANONICAL_LEN = len("2026-01-01T10:30:45.123Z")
GEMINI_PREFIXES = ("/v1beta/models/", "/v1/models/", "/v2/models/")
GEMINI_ACTIONS = frozenset(
    {"generateContent", "streamGenerateContent", "countTokens", "embedContent",
     "batchEmbedContents"}
)  # fmt: skip


class QueryError(ValueError):
    """A criterion cannot be understood (the CLI's usage error, exit status 2)."""


def canonical_time(moment: datetime) -> str:
    """`moment` in the journal's timestamp format (UTC, milliseconds, `Z`)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str, now: float) -> str:
    """An ISO 8601 time (naive times are UTC, like the log) or a span before `now` such
    as `90s`, `10m`, `2h`, `1d`, `1w`; returned in canonical form.

    Raises:
        QueryError: neither form.
    """
    relative = _RELATIVE.match(text.strip())
    if relative:
        seconds = float(relative.group(1)) * UNITS[relative.group(2)]
        return canonical_time(datetime.fromtimestamp(now, UTC) - timedelta(seconds=seconds))
    try:
        return canonical_time(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise QueryError(
            f"bad time {text!r}: use ISO 8601 (2026-01-01T10:30) or a span like 10m, 2h, 1d"
        ) from None


def entry_time(entry: Entry) -> str | None:
    """The entry's timestamp in canonical form (None when absent or unparseable)."""
    stamp = entry.get("timestamp")
    if not isinstance(stamp, str):
        return None
    if len(stamp) == _CANONICAL_LEN and stamp.endswith("Z"):
        return stamp
    try:
        return canonical_time(datetime.fromisoformat(stamp))
    except ValueError:
        return None


def parse_status(text: str, now: float = 0.0) -> Check:
    """`404` (exact) or `4xx` (a class) as a check of an entry's status.

    Raises:
        QueryError: neither form.
    """
    klass = _STATUS_CLASS.match(text.strip())
    if klass:
        low = int(klass.group(1)) * 100
        return lambda entry: _status_in(entry.get("status"), low, low + 100)
    try:
        wanted = int(text)
    except ValueError:
        raise QueryError(f"bad status {text!r}: use a code (404) or a class (4xx)") from None
    return lambda entry: entry.get("status") == wanted


def _status_in(status: Any, low: int, high: int) -> bool:
    return isinstance(status, int) and low <= status < high


def is_error(entry: Entry) -> bool:
    """An `error` entry, or any entry with an HTTP status of 400 or more."""
    status = entry.get("status")
    return entry.get("direction") == "error" or (isinstance(status, int) and status >= 400)


def gemini_path_model(target: Any) -> str | None:
    """`/v1beta/models/gpt-oss:20b:generateContent?alt=sse` -> `gpt-oss:20b` (model names
    may hold colons: only a known action after the last one is split off); None when
    `target` is not a Gemini `models/...` path."""
    if not isinstance(target, str):
        return None
    path = target.partition("?")[0]
    rest = next((path[len(p) :] for p in GEMINI_PREFIXES if path.startswith(p)), "")
    model, sep, action = rest.rpartition(":")
    name = unquote(model if sep and action in GEMINI_ACTIONS else rest)
    return name or None


def client_model(entry: Entry) -> Any:
    """The model the client asked for: the entry's `model`, or for a Gemini entry that
    has none (its client request: the model is in the path), the path's model."""
    model = entry.get("model")
    if model not in (None, "") or entry.get("format") != "gemini":
        return model
    return gemini_path_model(entry.get("path")) or gemini_path_model(entry.get("endpoint"))


def _equals(field: str) -> Callable[[str, float], Check]:
    return lambda value, now: lambda entry: entry.get(field) == value


def _model(value: str, now: float) -> Check:
    """The client's model name (`client_model`), or the name the backend was asked for."""
    return lambda entry: value in (client_model(entry), entry.get("backend_model"))


def _endpoint(value: str, now: float) -> Check:
    return lambda entry: value in str(entry.get("endpoint") or "")


def _since(value: str, now: float) -> Check:
    start = parse_time(value, now)
    return lambda entry: (entry_time(entry) or "") >= start


def _until(value: str, now: float) -> Check:
    end = parse_time(value, now)
    return lambda entry: "" < (entry_time(entry) or "") <= end


# option name -> (its text, now) -> the check; dispatch instead of a chain of ifs.
CRITERIA: dict[str, Callable[[str, float], Check]] = {
    "direction": _equals("direction"),
    "format": _equals("format"),
    "backend": _equals("backend"),
    "model": _model,
    "endpoint": _endpoint,
    "status": parse_status,
    "request_id": _equals("request_id"),
    "session": _equals("session"),
    "since": _since,
    "until": _until,
}


@dataclass(frozen=True, slots=True)
class Query:
    """Entry criteria, as checks that must all hold (none: everything matches)."""

    checks: tuple[Check, ...] = ()

    def matches(self, entry: Entry) -> bool:
        return all(check(entry) for check in self.checks)

    @property
    def empty(self) -> bool:
        return not self.checks


EVERYTHING = Query()


def build_query(*, now: float, errors: bool = False, **criteria: str | None) -> Query:
    """A `Query` from command-line text: keys of `CRITERIA` (None: unset) and `errors`
    (only error entries and statuses >= 400); `now` (epoch seconds) anchors relative times.

    Raises:
        QueryError: an unknown criterion, or a time or status that cannot be parsed.
    """
    checks = []
    for name, value in criteria.items():
        if value is None:
            continue
        factory = CRITERIA.get(name)
        if factory is None:
            raise QueryError(f"unknown criterion {name!r}")
        checks.append(factory(value, now))
    if errors:
        checks.append(is_error)
    return Query(tuple(checks))
