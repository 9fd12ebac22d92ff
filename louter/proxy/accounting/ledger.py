"""The durable usage records: an embedded SQLite file written by ONE thread, off the
event loop.

Requests hand their record to `put` (a list append under a lock: no I/O, no wait). The
writer thread wakes every `flush_seconds` (or at once when `BATCH` records wait) and
inserts what has queued in one transaction. The queue holds at most `queue_size`
records: when it is full — the disk cannot keep up — a record is not queued but counted
(`usage_records_dropped_total`); the shared counters behind `/v2/usage/stats` and the
budgets have it anyway (they are updated by the request, not by this thread), only its
audit row is missing.

Reads (`query`) run in the same thread, after every record queued before them, so an
answer always includes the caller's own traffic. The file is opened in WAL mode with a
busy timeout: several louter processes on one machine may share it. Rows older than
`retention_days` are deleted once an hour. Without a file (`db = ""`) the records live
in an in-memory database (audit and recent answers, nothing survives a restart).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import outcome
import trio

from louter.errors import LouterError
from louter.proxy.accounting.record import UsageRecord

T = TypeVar("T")
BATCH = 500  # records that wake the writer before its interval
MAX_QUERIES = 64  # reads waiting for the writer thread (more: 503)
PRUNE_EVERY = 3600.0

COLUMNS = (
    "ts REAL NOT NULL, request_id TEXT, key TEXT, session TEXT, model TEXT, backend TEXT,"
    " dialect TEXT, endpoint TEXT, status INTEGER, latency_ms REAL, ttft_ms REAL,"
    " stream INTEGER, input_tokens INTEGER, output_tokens INTEGER, estimated INTEGER,"
    " cost_nano INTEGER"
)
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS exchanges ({COLUMNS})",
    "CREATE INDEX IF NOT EXISTS exchanges_ts ON exchanges (ts)",
    "CREATE INDEX IF NOT EXISTS exchanges_key_ts ON exchanges (key, ts)",
)
INSERT = "INSERT INTO exchanges VALUES (" + ", ".join("?" * 16) + ")"

Query = Callable[..., Any]


class Ledger:
    def __init__(
        self,
        path: str | None,
        *,
        queue_size: int,
        flush_seconds: float,
        retention_days: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._size = queue_size
        self._interval = flush_seconds
        self._retention = retention_days * 86_400.0
        self._clock = clock
        self._cond = threading.Condition()
        self._records: list[tuple[Any, ...]] = []
        self._jobs: list[tuple[Query, tuple[Any, ...], Callable[[outcome.Outcome[Any]], None]]] = []
        self._closing = False
        self._thread: threading.Thread | None = None
        self.dropped = 0  # records not kept: queue full, or a failed write
        self.write_errors = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ the request side

    def put(self, record: UsageRecord) -> bool:
        """Queue `record` for the file; False (counted in `dropped`) when the queue is full."""
        with self._cond:
            if len(self._records) >= self._size or self._closing:
                self.dropped += 1
                return False
            self._records.append(record.row())
            if len(self._records) == BATCH:
                self._cond.notify()
        self._started()
        return True

    async def query(self, work: Query, *args: Any) -> Any:
        """`work(connection, *args)` in the writer thread, after the records queued so far."""
        self._started()
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        box: list[outcome.Outcome[Any]] = []

        def finished(result: outcome.Outcome[Any]) -> None:
            box.append(result)
            token.run_sync_soon(done.set)

        with self._cond:
            if len(self._jobs) >= MAX_QUERIES or self._closing:
                raise LouterError("usage records are busy; retry shortly", status_hint=503)
            self._jobs.append((work, args, finished))
            self._cond.notify()
        await done.wait()
        return box[0].unwrap()

    def close(self) -> None:
        """Write what is queued and stop the thread (waits for it)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    # ------------------------------------------------------------------ the writer thread

    def _started(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="louter-usage", daemon=True)
            self._thread.start()

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            conn = sqlite3.connect(":memory:")
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.commit()
        return conn

    def _run(self) -> None:
        try:
            conn = self._open()
        except (sqlite3.Error, OSError) as exc:
            self._dead(f"cannot open {self.path}: {exc}")
            return
        pruned = 0.0
        while True:
            with self._cond:
                if not (self._jobs or self._closing or len(self._records) >= BATCH):
                    self._cond.wait(self._interval)
                records, self._records = self._records, []
                jobs, self._jobs = self._jobs, []
                closing = self._closing
            if records:
                self._write(conn, records)
            for work, args, finished in jobs:
                finished(outcome.capture(work, conn, *args))
            if self._retention and time.monotonic() - pruned > PRUNE_EVERY:
                pruned = time.monotonic()
                self._prune(conn)
            if closing:
                break
        conn.close()

    def _write(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        try:
            with conn:
                conn.executemany(INSERT, rows)
        except sqlite3.Error as exc:
            self.write_errors += 1
            self.dropped += len(rows)
            self.last_error = str(exc)

    def _prune(self, conn: sqlite3.Connection) -> None:
        try:
            with conn:
                conn.execute(
                    "DELETE FROM exchanges WHERE ts < ?", (self._clock() - self._retention,)
                )
        except sqlite3.Error as exc:
            self.last_error = str(exc)

    def _dead(self, message: str) -> None:
        """The file cannot be opened: every record is dropped, every read fails."""
        self.last_error = message
        with self._cond:
            self._closing = True
            self.dropped += len(self._records)
            self._records = []
            jobs, self._jobs = self._jobs, []
        error = LouterError(f"usage records unavailable: {message}", status_hint=503)
        for _, _, finished in jobs:
            finished(outcome.Error(error))
