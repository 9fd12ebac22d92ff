"""The soak test: a long mixed run through louter with its log on, watching memory.

`run_soak(settings, total, connections, progress)` starts the stack, sends `total`
requests through louter (a third each: small chat, 100-chunk stream, tool call; the load
generator pinned to the load CPU), samples louter's RSS after the first 10,000 answers
(the baseline), at every tenth of the run and at the end, then reads louter's JSONL log:
every request must be exactly one exchange, i.e. its request id has one `client_request`
and one `client_response` entry. Passing means no failed request, a complete log, and an
RSS at the end at most 10 % above the baseline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import orjson
import trio

from louter.bench import load
from louter.bench.model import BenchError, LogCount, Pinning, Settings, SoakReport
from louter.bench.processes import cpu_seconds, family, memory_kib
from louter.bench.run import BODIES, machine, scratch
from louter.bench.stack import Progress, Stack, check, open_stack

MIX = ("small", "stream", "tools")
BASELINE = 10_000
SETTLE_S = 0.5  # the log is complete once it has not grown for this long...
SETTLE_LIMIT_S = 30.0  # ...or after this long


def marks(total: int) -> tuple[int, int]:
    """(baseline, tenth): the request count memory growth is measured from, and the
    sampling step."""
    return min(BASELINE, max(total // 2, 1)), max(total // 10, 1)


@contextmanager
def pinned_here(pinning: Pinning | None) -> Iterator[None]:
    """Run this process (the load generator) on the load CPU for a while."""
    if pinning is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {pinning.load_cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def wait_settled(path: Path) -> int:
    """Wait until the log file stops growing; its size then."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    size, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size if path.exists() else 0
        if now_size != size:
            size, still_since = now_size, time.monotonic()
        elif time.monotonic() - still_since >= SETTLE_S:
            break
        time.sleep(0.05)
    return size


def count_log(path: Path, start: int = 0) -> LogCount:
    """Exchanges in louter's JSONL log by request id (see `LogCount`), from byte `start`
    on (the exchanges before it were the benchmark's own checks)."""
    seen: dict[str, list[int]] = {}  # request id -> [client_request, client_response]
    slot = {"client_request": 0, "client_response": 1}
    lines = size = errors = unreadable = 0
    with path.open("rb") as log:
        log.seek(start)
        for line in log:
            lines += 1
            size += len(line)
            try:
                entry = orjson.loads(line)
                direction, rid = entry["direction"], entry["request_id"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                unreadable += 1
                continue
            pair = seen.setdefault(rid, [0, 0])
            if direction in slot:
                pair[slot[direction]] += 1
            errors += direction == "error"
    pairs = list(seen.values())
    return LogCount(
        lines=lines,
        size_bytes=size,
        exchanges=len(pairs),
        complete=sum(p == [1, 1] for p in pairs),
        incomplete=sum(0 in p for p in pairs),
        duplicated=sum(max(p) > 1 for p in pairs),
        errors=errors,
        unreadable=unreadable,
    )


def prepare(stack: Stack, host: str) -> list[bytes]:
    """The raw requests of the mix, each checked once through louter first."""
    requests = []
    for kind in MIX:
        body = BODIES[kind]()
        check(stack.louter_url, kind, body, "louter")
        requests.append(load.raw_request(host, stack.louter_port, body))
    return requests


def run_soak(settings: Settings, total: int, connections: int, progress: Progress) -> SoakReport:
    """See the module docstring.

    Raises:
        BenchError: a process did not start, louter gave a wrong answer, too many
            requests failed.
    """
    if total < 2 or connections < 1:
        raise BenchError("--soak needs 2 requests or more, --connections 1 or more", exit_code=2)
    baseline, step = marks(total)
    points = {baseline, *range(step, total + 1, step), total}
    samples: list[tuple[int, int]] = []
    with scratch(settings.workdir) as workdir, open_stack(settings, workdir, progress) as stack:
        requests = prepare(stack, settings.host)
        log_start = wait_settled(stack.log_file)
        cpu_before = cpu_seconds(family(stack.louter.pid))

        def sample(answered: int) -> None:
            rss = memory_kib(family(stack.louter.pid))[0]
            samples.append((answered, rss))
            progress(f"{answered:,} requests: louter RSS {rss / 1024:.1f} MiB")

        progress(f"soak: {total:,} requests ({', '.join(MIX)}), c={connections}")
        drive = partial(load.drive, connections=connections, on_answered=sample, marks=points)
        with pinned_here(settings.pinning):
            tally = trio.run(drive, settings.host, stack.louter_port, requests, total)
        cpu = cpu_seconds(family(stack.louter.pid)) - cpu_before
        if tally.failures >= load.MAX_FAILURES:
            raise BenchError(
                f"soak abandoned after {tally.failures} failed requests; "
                f"first: {tally.first_failure}"
            )
        progress("reading louter's log")
        wait_settled(stack.log_file)
        peak = memory_kib(family(stack.louter.pid))[1]
        log = count_log(stack.log_file, log_start)
    return SoakReport(
        machine=machine(settings, None),
        requests=total,
        connections=connections,
        elapsed_s=tally.elapsed_s,
        failures=tally.failures,
        cpu_s=cpu,
        baseline_requests=baseline,
        samples=tuple(samples),
        peak_kib=peak,
        log=log,
        mix=MIX,
        first_failure=tally.first_failure,
    )
