"""`[session] file_path`: the in-process sessions and runtime routes kept across restarts
of one louter on one machine.

The file is one JSON document `{"version": 1, "sessions": {...}, "routes": {...}}`,
rewritten whole after every change (commands are rare) and when louter stops: written
to a temporary file in the same directory, flushed to disk, then renamed over the old
one, so a crash leaves the old file or the new one, never half of one. Writes run in a
worker thread, one at a time. A file that cannot be read at start-up is renamed to
`<file>.bad` (and reported), and louter starts without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import trio

VERSION = 1


class SessionFile:
    def __init__(self, path: Path, warn: Callable[[str], None]) -> None:
        self.path = path
        self._warn = warn
        self._parts: dict[str, Any] = {"sessions": {}, "routes": {}}
        self._lock = trio.Lock()

    def read(self) -> dict[str, Any]:
        """What the file holds (empty parts when it does not exist); at start-up."""
        warn = self._warn
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return dict(self._parts)
        except OSError as exc:
            warn(f"session file {self.path}: cannot read it ({exc.strerror}); starting without")
            return dict(self._parts)
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError("not a louter session file")
            parts = {name: data.get(name) or {} for name in self._parts}
            if not all(isinstance(part, dict) for part in parts.values()):
                raise ValueError("sessions and routes must be objects")
        except ValueError as exc:  # orjson.JSONDecodeError is one
            bad = self.path.with_name(self.path.name + ".bad")
            os.replace(self.path, bad)
            warn(f"session file {self.path}: unreadable ({exc}); moved to {bad}")
            return dict(self._parts)
        self._parts = parts
        return dict(parts)

    async def write(self, **parts: Any) -> None:
        """Replace the given parts (`sessions`, `routes`) and rewrite the file."""
        self._parts.update(parts)
        async with self._lock:
            document = orjson.dumps({"version": VERSION, **self._parts})
            try:
                await trio.to_thread.run_sync(_replace, self.path, document)
            except OSError as exc:
                self._warn(f"session file {self.path}: cannot write it ({exc}); kept in memory")


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary file, fsync, rename)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
