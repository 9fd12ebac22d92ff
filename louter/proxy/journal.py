"""The JSONL exchange log (`--log-file`), design §8.

One JSON object per line. An exchange's entries are written together with one system call
on a file opened with O_APPEND (`Exchange` collects them until its answer is complete), so
lines of concurrent requests never interleave and nothing waits in the process beyond its
request. Secrets in headers and query strings are redacted before anything is written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"}
)
SECRET_PARAMS = ("key", "api_key", "apikey")
REDACTED = "[REDACTED]"

Entry = dict[str, Any]


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` with secret values replaced."""
    return {k: (REDACTED if k in SECRET_HEADERS else v) for k, v in headers.items()}


def redact_target(target: str) -> str:
    """Redact `?key=...`-style secrets in a request target."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = []
    for item in query.split("&"):
        name, eq, _ = item.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and name.lower() in SECRET_PARAMS else item)
    return path + "?" + "&".join(parts)


def _second(whole: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))


def format_timestamp(seconds: float) -> str:
    """ISO 8601 UTC with milliseconds."""
    whole = int(seconds)
    return f"{_second(whole)}.{int((seconds - whole) * 1000):03d}Z"


def encode_entry(entry: Entry, raw_payload: bytes | None = None) -> list[bytes]:
    """One log line, as pieces to write one after the other (a large payload is not
    copied). `raw_payload` is JSON text already validated by the caller; it is spliced in
    without re-serialising (JSON forbids raw line breaks inside strings, so replacing
    them with spaces keeps the document equal)."""
    line = orjson.dumps(entry)
    if raw_payload is None:
        return [line, b"\n"]
    if b"\n" in raw_payload or b"\r" in raw_payload:
        raw_payload = raw_payload.replace(b"\n", b" ").replace(b"\r", b" ")
    return [line[:-1], b',"payload":', raw_payload, b"}\n"]


_IOV_MAX = 512  # pieces per writev (the system's limit is 1024)
_JOIN_BELOW = 16 * 1024  # smaller writes are joined first (cheaper than many iovecs)


def _write_all(fd: int, pieces: list[bytes]) -> None:
    """Append `pieces` in order with one system call: small lines joined and written,
    large payloads handed to `writev` uncopied (measured: a ~100 KB exchange 2x faster,
    a ~2 KB one 15 % slower that way)."""
    if sum(map(len, pieces)) < _JOIN_BELOW:
        _write_view(fd, memoryview(b"".join(pieces)))
        return
    for start in range(0, len(pieces), _IOV_MAX):
        batch = pieces[start : start + _IOV_MAX]
        written = os.writev(fd, batch)
        if written < sum(map(len, batch)):  # a short write (disk full, a signal)
            _write_view(fd, memoryview(b"".join(batch))[written:])


def _write_view(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


class Journal:
    """Appends entries to a JSONL file and/or hands them to an echo callback (--log-level;
    with `echo_payloads` the echoed entry carries its `payload`: an object, text, or the
    raw JSON bytes).

    `encode` turns an entry into its line; `write_lines` appends lines with one system
    call (a request's entries are written together: one call per exchange, not four)."""

    def __init__(
        self,
        path: Path | None,
        *,
        clock: Callable[[], float],
        echo: Callable[[Entry], None] | None = None,
        payloads: bool = True,
        echo_payloads: bool = False,
    ) -> None:
        self._clock = clock
        self._echo = echo
        self._echo_payloads = echo_payloads  # --log-level debug: the echo sees bodies too
        self.payloads = payloads
        self._fd = -1
        self._last = (-1, "")  # (millisecond, its timestamp text)
        self._second = (-1, "")  # (second, its date and time text)
        if path is not None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(path, flags, 0o600)

    @property
    def active(self) -> bool:
        return self._fd >= 0 or self._echo is not None

    def timestamp(self) -> str:
        """Now, formatted; cached per millisecond (entries come in bursts), the date and
        time part per second."""
        ms = int(self._clock() * 1000)
        last, text = self._last
        if ms != last:
            whole, frac = divmod(ms, 1000)
            second, prefix = self._second
            if whole != second:
                prefix = _second(whole)
                self._second = (whole, prefix)
            text = f"{prefix}.{frac:03d}Z"
            self._last = (ms, text)
        return text

    def encode(
        self, entry: Entry, *, payload: Any = None, raw_payload: bytes | None = None
    ) -> list[bytes] | None:
        """The line for one entry, in pieces (None when only echoed); `timestamp` is
        added here."""
        entry["timestamp"] = self.timestamp()
        if self._echo is not None:
            if self._echo_payloads:
                body = raw_payload if payload is None else payload
                self._echo(entry if body is None else {**entry, "payload": body})
            else:
                self._echo(entry)
        if self._fd < 0:
            return None
        if not self.payloads:
            payload = raw_payload = None
        elif payload is not None:
            entry["payload"] = payload
        return encode_entry(entry, raw_payload)

    def write_lines(self, pieces: list[bytes]) -> None:
        """Append encoded lines (their pieces, in order) with one system call."""
        if self._fd >= 0 and pieces:
            _write_all(self._fd, pieces)

    def write(self, entry: Entry, *, payload: Any = None, raw_payload: bytes | None = None) -> None:
        """Record one entry at once."""
        pieces = self.encode(entry, payload=payload, raw_payload=raw_payload)
        if pieces is not None:
            self.write_lines(pieces)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
