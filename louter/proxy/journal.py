"""The JSONL exchange log (`--log-file`), design §8.

One JSON object per line. An exchange's entries are appended together on a file opened
with O_APPEND (`Exchange` collects them until its answer is complete), so lines of
concurrent requests never interleave. While louter serves, the exchanges completed in one
turn of the event loop are written with one system call when the loop is about to wait
for I/O (`batch_turns`); a batch past `BATCH_BYTES` is written at once, and `close` and
`reopen` write what waits first. Secrets in headers and query strings are redacted before
anything is written.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import orjson
import trio

from louter.proxy.metrics import Count

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "x-louter-key",
        "cookie",
        "set-cookie",
    }
)
SECRET_PARAMS = frozenset({"key", "api_key", "apikey", "api-key", "access_token", "token"})
REDACTED = "[REDACTED]"

Entry = dict[str, Any]


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` with secret values replaced."""
    copy = dict(headers)
    for name in SECRET_HEADERS.intersection(copy):  # C loops: a third of a comprehension's cost
        copy[name] = REDACTED
    return copy


def redact_target(target: str) -> str:
    """Redact `?key=...`-style secrets in a request target. Parameter names are compared
    as a server reads them: percent-decoded (`%6Bey`), `+` as a space, any case; a
    parameter whose name cannot be read that way is redacted too."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = []
    for item in query.split("&"):
        name, eq, _ = item.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and _secret_param(name) else item)
    return path + "?" + "&".join(parts)


def _secret_param(name: str) -> bool:
    if "%" in name or "+" in name:
        try:
            name = unquote_plus(name, errors="strict")
        except UnicodeDecodeError:
            return True
    return name.strip().lower() in SECRET_PARAMS


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
    if 10 in raw_payload or 13 in raw_payload:  # int: a memchr (b"\n" in: 10x slower)
        raw_payload = raw_payload.replace(b"\n", b" ").replace(b"\r", b" ")
    return [line[:-1], b',"payload":', raw_payload, b"}\n"]


_FRAME = struct.Struct("!I")  # a sink frame's length
_IOV_MAX = 512  # pieces per writev (the system's limit is 1024)
_JOIN_BELOW = 16 * 1024  # smaller writes are joined first (cheaper than many iovecs)
BATCH_BYTES = 64 * 1024  # lines waiting for the end of the loop's turn: written at once beyond


class TornWrite(Exception):
    """A write failed (`__cause__`: the `OSError`) after `written` bytes of it reached the
    file."""

    def __init__(self, written: int) -> None:
        super().__init__(written)
        self.written = written


def _write_all(fd: int, pieces: list[bytes]) -> int:
    """Append `pieces` in order with one system call: small lines joined and written,
    large payloads handed to `writev` uncopied (measured: a ~100 KB exchange 2x faster,
    a ~2 KB one 15 % slower that way). Returns the bytes written; an `OSError` becomes
    `TornWrite` (how much of it is in the file)."""
    total = sum(map(len, pieces))
    if total < _JOIN_BELOW:
        data = b"".join(pieces)
        try:
            count = os.write(fd, data)
        except OSError as exc:
            raise TornWrite(0) from exc
        if count < total:  # a short write (disk full, a signal)
            _write_view(fd, memoryview(data)[count:], count)
        return total
    written = 0
    for start in range(0, len(pieces), _IOV_MAX):
        batch = pieces[start : start + _IOV_MAX]
        try:
            count = os.writev(fd, batch)
        except OSError as exc:
            raise TornWrite(written) from exc
        size = sum(map(len, batch))
        if count < size:  # a short write (disk full, a signal)
            _write_view(fd, memoryview(b"".join(batch))[count:], written + count)
        written += size
    return total


def _write_view(fd: int, view: memoryview, written: int) -> None:
    while view:
        try:
            count = os.write(fd, view)
        except OSError as exc:
            raise TornWrite(written) from exc
        written += count
        view = view[count:]


def _open(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o600)


def _quiet(message: str) -> None:
    """The default `report`: nowhere to say it (only the CLI prints)."""


class Journal:
    """Appends entries to a JSONL file and/or hands them to an echo callback (--log-level;
    with `echo_payloads` the echoed entry carries its `payload`: an object, text, or the
    raw JSON bytes).

    `encode` turns an entry into its line; `write_lines` appends lines (a request's entries
    together). Outside a trio run, or until `batch_turns`, each `write_lines` is one system
    call; after `batch_turns` lines wait in a bounded batch (`BATCH_BYTES`) written with one
    system call when trio's loop is about to wait for I/O: one write per loop turn, however
    many exchanges ended in it, and a client served by this loop reads the answer only
    after that (its socket is readable to it after the wait). `close` and `reopen` write
    the batch first (a clean stop or SIGHUP loses nothing).

    A failing write (disk full, file too large, read-only, I/O error) never reaches the
    request: it is counted in `write_errors`, `report`ed once per failure episode, and the
    next exchange tries again (`report`ed once more when that works). The part of a line
    a failing write left in the file is truncated away, so the file holds whole lines only
    (if even that fails, the torn line is ended with a line break before the next one:
    one bad line, which log-parser counts and skips). With `max_bytes`, a write that would
    make the file larger is preceded by a rotation (`path` -> `path.1` -> ... ->
    `path.{backups}`, the oldest dropped), so lines are never split across files.
    Assumes it is the file's only writer.

    With `sink` (a connected socket's descriptor: a worker of `louter --workers N`)
    every write is one frame, a 4-byte big-endian length and the lines, for the
    supervisor, the file's single writer; nothing is rotated or truncated here."""

    def __init__(
        self,
        path: Path | None,
        *,
        clock: Callable[[], float],
        echo: Callable[[Entry], None] | None = None,
        payloads: bool = True,
        report: Callable[[str], None] = _quiet,
        max_bytes: int = 0,
        backups: int = 0,
        echo_payloads: bool = False,
        sink: int | None = None,
    ) -> None:
        self._clock = clock
        self._echo = echo
        self._echo_payloads = echo_payloads  # --log-level debug: the echo sees bodies too
        self.payloads = payloads
        self._path = path
        self._report = report
        self.write_errors = Count()
        self._failing = False  # in a failure episode: the last write failed
        self._lost = 0  # exchanges not logged in this episode
        self._torn = False  # a torn line is left at the file's end
        self._max_bytes = max_bytes
        self._backups = backups
        self._size = 0  # bytes in the file (kept with `max_bytes` only)
        self._fd = -1
        self._last = (-1, "")  # (millisecond, its timestamp text)
        self._second = (-1, "")  # (second, its date and time text)
        self._sink = sink is not None
        self._batch: list[bytes] = []  # lines waiting for the end of the loop's turn
        self._batch_bytes = 0
        self._batch_units = 0  # write_lines calls in it (what a failed write counts)
        self._turns: _TurnEnd | None = None  # the trio instrument writing the batch
        if sink is not None:
            self._fd, self._max_bytes = sink, 0
        elif path is not None:
            self._fd = _open(path)
            if max_bytes:
                self._size = os.fstat(self._fd).st_size

    @property
    def active(self) -> bool:
        return self._fd >= 0 or self._echo is not None

    @property
    def keeps_payloads(self) -> bool:
        """Whether entries' payloads are written or echoed anywhere (else an answer need
        not be assembled for the log: its usage is enough)."""
        return (self._fd >= 0 and self.payloads) or (self._echo is not None and self._echo_payloads)

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
        return self.line(entry, payload, raw_payload)

    def line(self, entry: Entry, payload: Any, raw_payload: bytes | None) -> list[bytes] | None:
        """`encode` with positional arguments (the hot path: `Exchange.log`)."""
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
            return [orjson.dumps(entry), b"\n"]
        if payload is not None:
            entry["payload"] = payload
        line = orjson.dumps(entry)
        if raw_payload is None:
            return [line, b"\n"]
        if 10 in raw_payload or 13 in raw_payload:  # as `encode_entry`, inlined (hot)
            raw_payload = raw_payload.replace(b"\n", b" ").replace(b"\r", b" ")
        return [line[:-1], b',"payload":', raw_payload, b"}\n"]

    def write_lines(self, pieces: list[bytes]) -> None:
        """Append encoded lines (their pieces, in order): at once with one system call, or
        into the turn's batch (`batch_turns`)."""
        if self._fd < 0 or not pieces:
            return
        if self._turns is None:
            self._write(pieces, sum(map(len, pieces)), 1)
            return
        size = sum(map(len, pieces))
        if self._max_bytes and self._size + self._batch_bytes + size > self._max_bytes:
            self.flush()  # rotation decides per exchange: lines never split across files
        self._batch += pieces
        self._batch_bytes += size
        self._batch_units += 1
        if self._batch_bytes >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the batch (one system call)."""
        if self._batch_units:
            pieces, size, units = self._batch, self._batch_bytes, self._batch_units
            self._batch, self._batch_bytes, self._batch_units = [], 0, 0
            self._write(pieces, size, units)

    def batch_turns(self) -> None:
        """From now on (inside `trio.run`), batch lines per turn of the event loop."""
        if self._fd >= 0 and self._turns is None:
            self._turns = _TurnEnd(self)
            trio.lowlevel.add_instrument(self._turns)

    def _write(self, pieces: list[bytes], size: int, units: int) -> None:
        if self._max_bytes:
            self._rotate_for(size)
        if self._sink:
            pieces = [_FRAME.pack(size), *pieces]
        if self._failing:
            self._retry(pieces, units)
            return
        try:
            self._size += _write_all(self._fd, pieces)
        except TornWrite as torn:
            self._failed(torn, units)

    def _retry(self, pieces: list[bytes], units: int) -> None:
        if self._torn and not self._sink:
            pieces = [b"\n", *pieces]
        try:
            self._size += _write_all(self._fd, pieces)
        except TornWrite as torn:
            self._failed(torn, units)
            return
        self._failing = self._torn = False
        self._report(
            f"the log file {self._path} is written again "
            f"({self._lost} exchange(s) could not be logged)"
        )
        self._lost = 0

    def _failed(self, torn: TornWrite, units: int) -> None:
        self.write_errors.inc(units)  # as many as separate writes would have failed
        self._lost += units
        if torn.written and not self._sink:
            try:
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - torn.written)
            except OSError:
                self._torn = True
        if not self._failing:
            self._failing = True
            self._report(
                f"cannot write the log file {self._path}: {torn.__cause__}; serving on, "
                "exchanges are not logged until it can be written again"
            )

    def _rotate_for(self, size: int) -> None:
        """Rotate first if `size` more bytes would make the file exceed `max_bytes`."""
        if self._size == 0 or self._size + size <= self._max_bytes or self._path is None:
            return
        path = self._path
        names = [path, *(path.with_name(f"{path.name}.{n}") for n in range(1, self._backups + 1))]
        try:
            if self._backups == 0:
                path.unlink(missing_ok=True)
            for older, newer in reversed(list(zip(names, names[1:], strict=False))):
                if older.exists():
                    os.replace(older, newer)
        except OSError as exc:
            self._max_bytes = 0
            self._report(f"cannot rotate the log file {path}: {exc}; rotation is off")
            return
        self.reopen()

    def reopen(self) -> None:
        """Open the log file's path again (after it was renamed: SIGHUP, rotation). The
        old file stays in use when the path cannot be opened."""
        if self._path is None:
            return
        self.flush()  # what was logged before belongs to the old file
        try:
            fd = _open(self._path)
        except OSError as exc:
            self._report(f"cannot reopen the log file {self._path}: {exc}")
            return
        os.close(self._fd)
        self._fd, self._size, self._torn = fd, os.fstat(fd).st_size, False

    def write(self, entry: Entry, *, payload: Any = None, raw_payload: bytes | None = None) -> None:
        """Record one entry at once."""
        pieces = self.encode(entry, payload=payload, raw_payload=raw_payload)
        if pieces is not None:
            self.write_lines(pieces)

    def close(self) -> None:
        """Write the batch, stop batching, close the file."""
        self.flush()
        if self._turns is not None:
            try:
                trio.lowlevel.remove_instrument(self._turns)
            except (RuntimeError, KeyError):  # outside the run, or removed after an error
                pass
            self._turns = None
        if self._fd >= 0:
            try:
                if not self._sink:
                    os.fsync(self._fd)
            except OSError as exc:
                self._report(f"cannot flush the log file {self._path}: {exc}")
            os.close(self._fd)
            self._fd = -1


class _TurnEnd(trio.abc.Instrument):
    """Writes the journal's batch when trio's loop is about to wait for I/O (the end of
    each turn): nothing is scheduled for it, and no client of this loop can read an
    answer sent in the turn before its lines are written."""

    __slots__ = ("_journal",)

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def before_io_wait(self, timeout: float) -> None:
        journal = self._journal
        if journal._batch_units:
            try:
                journal.flush()
            except Exception as exc:  # never raise here: trio would drop the instrument
                journal._report(f"cannot write the log file {journal._path}: {exc}")
