"""The reads of the usage file (run in the ledger's thread: `Ledger.query`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from louter.logs.usage import Group, group_of, record_counts
from louter.proxy.accounting.record import UsageRecord

if TYPE_CHECKING:
    import sqlite3  # the usage file's connection: loaded by the ledger, only when used

FIELDS = (
    "ts, request_id, key, session, model, backend, dialect, endpoint, status, latency_ms,"
    " ttft_ms, stream, input_tokens, output_tokens, estimated, cost_nano"
)


def audit(
    conn: sqlite3.Connection,
    limit: int,
    since: float | None = None,
    key: str | None = None,
    status: int | None = None,
) -> list[UsageRecord]:
    """The newest `limit` records matching, newest first."""
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    if key == "":  # the records without a key (auth off)
        where.append("key IS NULL")
    elif key is not None:
        where.append("key = ?")
        args.append(key)
    if status is not None:
        where.append("status = ?")
        args.append(status)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {FIELDS} FROM exchanges{clause} ORDER BY ts DESC, rowid DESC LIMIT ?",  # noqa: S608 - fixed columns, values bound
        (*args, limit),
    ).fetchall()
    return [UsageRecord.of_row(row) for row in rows]


def groups(conn: sqlite3.Connection, since: float) -> list[tuple[Group, list[int]]]:
    """Every record since `since`, summed per (day, key, model, backend)."""
    out: dict[Group, list[int]] = {}
    rows = conn.execute(
        "SELECT strftime('%Y-%m-%d', ts, 'unixepoch'), key, model, backend, status,"
        " input_tokens, output_tokens, cost_nano FROM exchanges WHERE ts >= ?",
        (since,),
    )
    for day, key, model, backend, status, tokens_in, tokens_out, cost in rows:
        counts = record_counts(status, (tokens_in, tokens_out), cost)
        found = out.setdefault(group_of(day, key, model, backend), [0] * len(counts))
        for i, value in enumerate(counts):
            found[i] += value
    return list(out.items())


def spent(conn: sqlite3.Connection, key: str, since: float) -> int:
    """A key's known cost since `since`, in nano-dollars."""
    row = conn.execute(
        "SELECT COALESCE(SUM(cost_nano), 0) FROM exchanges WHERE key = ? AND ts >= ?",
        (key, since),
    ).fetchone()
    return int(row[0])


def count(conn: sqlite3.Connection) -> Any:
    return conn.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0]
