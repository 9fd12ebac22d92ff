"""The benchmark's vocabulary: cases, settings, and the results it hands the CLI.

Plain frozen dataclasses; `as_dict()` gives the JSON shape `bin/bench` prints. Times in
the JSON are milliseconds (`*_ms`) or microseconds (`*_us`), sizes KiB (`*_kib`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

Json = dict[str, Any]


class BenchError(Exception):
    """The benchmark cannot run or a run went wrong; `exit_code` 2 for a usage or
    environment problem (a missing tool, a bad option), 1 otherwise."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Case:
    """One load shape: which body, how many connections."""

    name: str
    title: str
    body: str  # a key of `louter.bench.run.BODIES`: small, stream, tools, big
    connections: int


CASES = {
    case.name: case
    for case in (
        Case("S1", "small chat, latency", "small", 1),
        Case("S2", "small chat, throughput", "small", 64),
        Case("S3", "100-chunk stream", "stream", 16),
        Case("S4", "50 KB request with 12 tools, tool call answer", "big", 16),
    )
}


@dataclass(frozen=True, slots=True)
class Pinning:
    """The CPU louter runs on, and the one the mock upstream and the load generator share."""

    proxy_cpu: int
    load_cpu: int


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs; parsed once by the CLI."""

    louter: tuple[str, ...]  # command that starts louter; --config/--port/... are appended
    pinning: Pinning | None = None
    duration: int = 5  # measured seconds per run (wrk takes whole seconds)
    warmup: int = 1  # seconds of load before each measured run, not counted
    cases: tuple[str, ...] = tuple(CASES)
    wrk: str = "wrk"
    host: str = "127.0.0.1"
    upstream_port: int = 0  # 0: a free port
    louter_port: int = 0
    workdir: Path | None = None  # kept when given; else a temporary directory
    config_extra: str = ""  # TOML appended to louter's generated config (keys, limits, ...)
    workers: int = 0  # louter --workers N (0: one process, no supervisor)


@dataclass(frozen=True, slots=True)
class WrkSummary:
    """What wrk's done() reported for one run (see post.lua)."""

    requests: int
    duration_s: float
    bytes: int
    errors: int  # connect + read + write + timeout + status (status >= 400)
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @classmethod
    def from_json(cls, data: Json) -> WrkSummary:
        latency = data["latency_us"]
        return cls(
            requests=int(data["requests"]),
            duration_s=data["duration_us"] / 1e6,
            bytes=int(data["bytes"]),
            errors=sum(int(v) for v in data["errors"].values()),
            p50_ms=latency["p50"] / 1000,
            p90_ms=latency["p90"] / 1000,
            p99_ms=latency["p99"] / 1000,
            mean_ms=latency["mean"] / 1000,
        )


@dataclass(frozen=True, slots=True)
class CpuShare:
    """How one pinned CPU was used during a run, in percent of the run's wall time."""

    busy_pct: float  # running anything (user, system, steal)
    own_pct: float  # running the benchmark's processes meant to be there

    @property
    def others_pct(self) -> float:
        """What other processes took: noise in the numbers."""
        return max(self.busy_pct - self.own_pct, 0.0)

    def as_dict(self) -> Json:
        return {
            "busy_pct": round(self.busy_pct, 1),
            "own_pct": round(self.own_pct, 1),
            "others_pct": round(self.others_pct, 1),
        }


@dataclass(frozen=True, slots=True)
class Measured:
    """One wrk run against one target, with what /proc said meanwhile."""

    wrk: WrkSummary
    cpu_s: float | None = None  # louter's CPU time during the run (louter runs only)
    load_cpu: CpuShare | None = None  # own: wrk and the mock upstream (pinned runs only)
    proxy_cpu: CpuShare | None = None  # own: louter (pinned louter runs only)

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.cpu_s is None or not self.wrk.requests:
            return None
        return self.cpu_s / self.wrk.requests * 1e6

    def as_dict(self) -> Json:
        wrk = self.wrk
        data: Json = {
            "requests": wrk.requests,
            "rps": round(wrk.rps, 1),
            "mb_per_s": round(wrk.bytes / wrk.duration_s / 1e6, 2) if wrk.duration_s else 0.0,
            "p50_ms": wrk.p50_ms,
            "p90_ms": wrk.p90_ms,
            "p99_ms": wrk.p99_ms,
            "mean_ms": round(wrk.mean_ms, 3),
            "errors": wrk.errors,
        }
        if self.cpu_s is not None:
            per_request = self.cpu_us_per_request
            data["cpu_s"] = round(self.cpu_s, 2)
            data["cpu_us_per_request"] = None if per_request is None else round(per_request, 1)
        if self.load_cpu is not None:
            data["load_cpu"] = self.load_cpu.as_dict()
        if self.proxy_cpu is not None:
            data["proxy_cpu"] = self.proxy_cpu.as_dict()
        return data


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    direct: Measured
    louter: Measured

    def overhead(self) -> Json:
        """What louter adds: latency differences and its share of direct throughput."""
        direct, louter = self.direct.wrk, self.louter.wrk
        return {
            "p50_ms": round(louter.p50_ms - direct.p50_ms, 3),
            "p90_ms": round(louter.p90_ms - direct.p90_ms, 3),
            "p99_ms": round(louter.p99_ms - direct.p99_ms, 3),
            "rps_ratio": round(louter.rps / direct.rps, 4) if direct.rps else None,
        }

    def as_dict(self) -> Json:
        return {
            "case": self.case.name,
            "title": self.case.title,
            "connections": self.case.connections,
            "direct": self.direct.as_dict(),
            "louter": self.louter.as_dict(),
            "overhead": self.overhead(),
        }


@dataclass(frozen=True, slots=True)
class Machine:
    """Where the numbers come from."""

    cpu_model: str
    cpus: int
    pinning: Pinning | None
    wrk: str | None  # None: not used (soak)
    python: str
    louter: str  # version, or the --louter command
    workers: int = 0  # louter --workers N (0: one process)
    louter_cpus: int | str | None = None  # with workers: the CPUs louter is pinned to

    def as_dict(self) -> Json:
        pinning = self.pinning
        return {
            "cpu_model": self.cpu_model,
            "cpus": self.cpus,
            "proxy_cpu": pinning.proxy_cpu if pinning else None,
            "load_cpu": pinning.load_cpu if pinning else None,
            "workers": self.workers,
            "louter_cpus": self.louter_cpus,
            "wrk": self.wrk,
            "python": self.python,
            "louter": self.louter,
        }


@dataclass(frozen=True, slots=True)
class Memory:
    """louter's memory (process tree): after start-up, at the end, and its peak."""

    start_kib: int
    end_kib: int
    peak_kib: int

    def as_dict(self) -> Json:
        return {
            "rss_start_kib": self.start_kib,
            "rss_end_kib": self.end_kib,
            "peak_rss_kib": self.peak_kib,
        }


@dataclass(frozen=True, slots=True)
class CasesReport:
    machine: Machine
    duration: int
    warmup: int
    results: tuple[CaseResult, ...]
    memory: Memory

    @property
    def errors(self) -> int:
        return sum(r.direct.wrk.errors + r.louter.wrk.errors for r in self.results)

    def as_dict(self) -> Json:
        return {
            "machine": self.machine.as_dict(),
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "cases": [r.as_dict() for r in self.results],
            "louter_memory": self.memory.as_dict(),
            "errors": self.errors,
        }


@dataclass(frozen=True, slots=True)
class LogCount:
    """What louter's JSONL log holds after a soak: exchanges by request id."""

    lines: int
    size_bytes: int  # of the lines counted
    exchanges: int  # distinct request ids
    complete: int  # ids with exactly one client_request and one client_response
    incomplete: int  # ids missing either
    duplicated: int  # ids with more than one of either
    errors: int  # `error` entries
    unreadable: int  # lines that are not JSON objects

    def as_dict(self) -> Json:
        return {
            "lines": self.lines,
            "size_bytes": self.size_bytes,
            "exchanges": self.exchanges,
            "complete": self.complete,
            "incomplete": self.incomplete,
            "duplicated": self.duplicated,
            "error_entries": self.errors,
            "unreadable_lines": self.unreadable,
        }


@dataclass(frozen=True, slots=True)
class SoakReport:
    """A long mixed run through louter: memory over time and the log's bookkeeping."""

    machine: Machine
    requests: int
    connections: int
    elapsed_s: float
    failures: int  # requests without a 2xx answer
    cpu_s: float
    baseline_requests: int  # the sample memory growth is measured from (10,000)
    samples: tuple[tuple[int, int], ...]  # (requests answered, louter RSS KiB)
    peak_kib: int
    log: LogCount
    limit_pct: float = 10.0
    mix: tuple[str, ...] = ("small", "stream", "tools")
    first_failure: str = ""

    @property
    def baseline_kib(self) -> int:
        return dict(self.samples)[self.baseline_requests]

    @property
    def end_kib(self) -> int:
        return self.samples[-1][1]

    @property
    def growth_pct(self) -> float:
        return (self.end_kib - self.baseline_kib) / self.baseline_kib * 100

    @property
    def memory_ok(self) -> bool:
        return self.growth_pct <= self.limit_pct

    @property
    def log_ok(self) -> bool:
        log = self.log
        return log.complete == log.exchanges == self.requests and not log.unreadable

    @property
    def ok(self) -> bool:
        return self.memory_ok and self.log_ok and not self.failures

    def as_dict(self) -> Json:
        return {
            "machine": self.machine.as_dict(),
            "requests": self.requests,
            "mix": list(self.mix),
            "connections": self.connections,
            "elapsed_s": round(self.elapsed_s, 1),
            "rps": round(self.requests / self.elapsed_s, 1) if self.elapsed_s else None,
            "failures": self.failures,
            "first_failure": self.first_failure or None,
            "cpu_us_per_request": round(self.cpu_s / self.requests * 1e6, 1),
            "rss_kib": [{"requests": n, "rss_kib": kib} for n, kib in self.samples],
            "rss_baseline_requests": self.baseline_requests,
            "rss_baseline_kib": self.baseline_kib,
            "rss_end_kib": self.end_kib,
            "rss_growth_pct": round(self.growth_pct, 2),
            "rss_limit_pct": self.limit_pct,
            "rss_ok": self.memory_ok,
            "peak_rss_kib": self.peak_kib,
            "log": self.log.as_dict(),
            "log_ok": self.log_ok,
            "ok": self.ok,
        }
