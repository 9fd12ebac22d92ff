"""Reading louter's JSONL log: plain files, gzip files, stdin, and following a growing file.

Everything streams line by line; nothing holds more than one line (plus, when following,
one partial line) in memory. A line that is not a JSON object is counted in `LineCounts`
and skipped, never raised: a log being written concurrently, or cut by a crash, must not
stop the analysis of the rest.

Following (`tail -f` style) survives both ways logs get rotated: the path is renamed and a
new file created (the old file is drained first, then the new one is read from its start),
and copy-truncate (the file is emptied in place and written again: reading restarts at 0).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

Entry = dict[str, Any]

GZIP_MAGIC = b"\x1f\x8b"
STDIN = "-"


class LogFileError(Exception):
    """The log cannot be opened or read (the CLI's exit status 2)."""


@dataclass(slots=True)
class LineCounts:
    """How many lines were read and how many were skipped as bad (first one remembered)."""

    lines: int = 0
    bad: int = 0
    first_bad_line: int = 0
    first_bad_reason: str = ""

    def reject(self, reason: str) -> None:
        self.bad += 1
        if self.bad == 1:
            self.first_bad_line = self.lines
            self.first_bad_reason = reason


def open_log(name: str, stdin: IO[bytes]) -> IO[bytes]:
    """A binary stream of the log `name` (`-` is `stdin`); gzip is recognised by its magic
    bytes, so rotated `.gz` files and compressed stdin both work.

    Raises:
        LogFileError: the file cannot be opened.
    """
    if name == STDIN:
        raw: IO[bytes] = stdin
    else:
        try:
            raw = open(name, "rb")
        except OSError as exc:
            raise LogFileError(f"cannot open {name}: {exc.strerror or exc}") from None
    if not _is_gzip(raw, name):
        return raw
    if name == STDIN:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    raw.close()  # a GzipFile does not close a file object it was given: let it own one
    return gzip.GzipFile(name, mode="rb")  # type: ignore[return-value]


def snapshot(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of `stream` as it was when opened: a plain file read while something
    appends to it (a louter writing the log that `replay` sends requests to) stops at the
    size it had, so reading ends. Compressed files and pipes are read to their end."""
    size = _plain_size(stream)
    if size is None:
        yield from stream
        return
    read = 0
    for line in stream:
        read += len(line)
        if read > size:
            return
        yield line


def _plain_size(stream: IO[bytes]) -> int | None:
    if isinstance(stream, gzip.GzipFile):
        return None
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def _is_gzip(raw: IO[bytes], name: str) -> bool:
    peek = getattr(raw, "peek", None)
    if peek is not None:
        return bytes(peek(2)[:2]) == GZIP_MAGIC
    return name.endswith(".gz")


def parse_lines(lines: Iterable[bytes], counts: LineCounts) -> Iterator[Entry]:
    """The entries of `lines`, skipping blank lines and skipping (and counting) bad ones.

    Raises:
        LogFileError: the stream fails mid-way (a truncated gzip file, an I/O error).
    """
    loads, decode_error = orjson.loads, orjson.JSONDecodeError  # hot loop: local names
    try:
        for raw in lines:
            counts.lines += 1
            try:
                entry = loads(raw)
            except decode_error as exc:
                entry = _with_huge_numbers(raw)
                if entry is None:
                    if raw.strip():
                        counts.reject(f"not JSON ({exc})")
                    continue
            if type(entry) is dict:
                yield entry
            else:
                counts.reject(f"not a JSON object ({type(entry).__name__})")
    except (OSError, EOFError) as exc:
        raise LogFileError(f"read failed after line {counts.lines}: {exc}") from None


def _with_huge_numbers(raw: bytes) -> Any:
    """A line orjson refuses only for a number beyond the float range (valid JSON: a
    client's body forwarded as written can hold one, `louter/convert/openai/head.py`),
    read by the json module (as infinity); None for a line that is not JSON."""
    try:
        return json.loads(raw, parse_constant=_not_json)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, and NaN/Infinity refused
        return None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Follower:
    """Reads complete lines appended to `path`, across rotation and truncation.

    `read()` returns the lines available now (maybe none); a trailing partial line is kept
    until its newline arrives. Poll it, sleeping between empty reads (`follow_lines`).
    Truncation is noticed by re-reading the last bytes read (one `pread` per poll): if they
    changed, the file was rewritten, even when it has since grown past the old position.
    """

    SIGNATURE = 64  # bytes remembered from the end of what was read

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[bytes] | None = None
        self._partial = b""
        self._signature = b""
        self._reopen()
        if self._file is None:
            raise LogFileError(f"cannot open {path}: No such file or directory")
        if _is_gzip(self._file, str(path)):
            self.close()
            raise LogFileError(f"cannot follow {path}: it is compressed")

    def _reopen(self) -> None:
        try:
            self._file = open(self._path, "rb")
        except FileNotFoundError:
            self._file = None
        except OSError as exc:
            raise LogFileError(f"cannot open {self._path}: {exc.strerror or exc}") from None
        self._partial = self._signature = b""

    def read(self) -> list[bytes]:
        if self._file is None:
            self._reopen()
            if self._file is None:
                return []
        if self._rewritten(self._file):
            self._file.seek(0)
            self._partial = self._signature = b""
        lines = self._drain(self._file)
        return lines or self._check_replaced(self._file)

    def _rewritten(self, file: IO[bytes]) -> bool:
        if not self._signature:
            return False
        end = file.tell()
        start = end - len(self._signature)
        return os.pread(file.fileno(), len(self._signature), start) != self._signature

    def _drain(self, file: IO[bytes]) -> list[bytes]:
        data = file.read()
        if not data:
            return []
        self._signature = (self._signature + data)[-self.SIGNATURE :]
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        return chunks

    def _check_replaced(self, file: IO[bytes]) -> list[bytes]:
        """After an empty read: if a new file is at the path, switch to it, returning what
        was still written to the old one."""
        try:
            current = os.stat(self._path)
        except FileNotFoundError:
            return []  # renamed away; the new file is not there yet
        opened = os.fstat(file.fileno())
        if (current.st_ino, current.st_dev) == (opened.st_ino, opened.st_dev):
            return []
        leftover = self._drain(file)
        if self._partial:
            leftover.append(self._partial)  # the old file ended without a newline
        self.close()
        self._reopen()
        return leftover

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def follow_lines(
    path: Path,
    *,
    poll_seconds: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
    keep_going: Callable[[], bool] = lambda: True,
) -> Iterator[bytes]:
    """Every line of `path`, then every line appended to it, until `keep_going()` is false
    (checked whenever there is nothing new to read) or the consumer stops iterating."""
    follower = Follower(path)
    try:
        while True:
            lines = follower.read()
            yield from lines
            if not lines:
                if not keep_going():
                    return
                sleep(poll_seconds)
    finally:
        follower.close()
