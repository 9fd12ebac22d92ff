"""The overhead benchmark: each case with wrk, against the mock directly and through louter.

`run_cases(settings, progress)` starts the stack (`stack.open_stack`), then for each case
checks one answer from both targets, loads each target for `warmup` seconds (not
counted) and for `duration` seconds (measured), and returns a `CasesReport`. During a
measured run it reads louter's CPU time (whole process tree) and how each pinned CPU was
used: if wrk and the mock saturate the load CPU, the numbers measure them, not louter; if
other processes take either CPU, the numbers are noisy. Nothing here prints: progress
goes to the `progress` callback.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import louter
from louter.bench import bodies, wrk
from louter.bench.model import (
    CASES,
    BenchError,
    Case,
    CaseResult,
    CasesReport,
    CpuShare,
    Machine,
    Measured,
    Memory,
    Pinning,
    Settings,
    WrkSummary,
)
from louter.bench.processes import busy_pct, cpu_jiffies, cpu_seconds, family, memory_kib
from louter.bench.stack import (
    PATH,
    Progress,
    Stack,
    check,
    default_louter,
    louter_cpus,
    open_stack,
)

BODIES: dict[str, Callable[[], bytes]] = {
    "small": bodies.small_request,
    "stream": lambda: bodies.small_request(stream=True),
    "tools": lambda: bodies.small_request(tools=True),
    "big": bodies.big_request,
}


def choose_pinning(
    proxy_cpu: int | None, load_cpu: int | None, *, has_taskset: bool
) -> Pinning | None:
    """The CPUs to pin to: as given, else the first two this process may use; None (no
    pinning) without taskset or with a single CPU.

    Raises:
        BenchError (exit code 2): CPUs given without taskset, or the same CPU twice.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if proxy_cpu is None and load_cpu is None:
        if not has_taskset or len(allowed) < 2:
            return None
        return Pinning(proxy_cpu=allowed[1], load_cpu=allowed[0])
    if not has_taskset:
        raise BenchError(
            "--proxy-cpu/--load-cpu need taskset (apt-get install util-linux)", exit_code=2
        )
    proxy = allowed[1 % len(allowed)] if proxy_cpu is None else proxy_cpu
    load = allowed[0] if load_cpu is None else load_cpu
    if proxy == load:
        raise BenchError(f"louter and the load would share CPU {proxy}", exit_code=2)
    return Pinning(proxy_cpu=proxy, load_cpu=load)


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo, else the platform's word for it."""
    try:
        with open("/proc/cpuinfo") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def machine(settings: Settings, wrk_path: str | None) -> Machine:
    """Where the numbers come from (`wrk_path` None: wrk was not used)."""
    own = settings.louter == default_louter()
    return Machine(
        cpu_model=cpu_model(),
        cpus=os.cpu_count() or 1,
        pinning=settings.pinning,
        wrk=wrk.version(wrk_path) if wrk_path else None,
        python=platform.python_version(),
        louter=louter.__version__ if own else " ".join(settings.louter),
        workers=settings.workers,
        louter_cpus=louter_cpus(settings) if settings.workers else None,
    )


@contextmanager
def scratch(workdir: Path | None) -> Iterator[Path]:
    """`workdir` (created, kept) or a temporary directory removed at the end."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="louter-bench-") as temporary:
        yield Path(temporary)


def write_bodies(workdir: Path, kinds: set[str]) -> dict[str, Path]:
    paths = {}
    for kind in sorted(kinds):
        paths[kind] = workdir / f"request-{kind}.json"
        paths[kind].write_bytes(BODIES[kind]())
    return paths


class CpuMeter:
    """CPU use during one wrk run: louter's CPU time (its process tree), and for each
    pinned CPU how busy it was and how much of that the benchmark's own processes were
    (wrk, a child of this process, is counted through `os.times`)."""

    def __init__(self, pinning: Pinning | None, louter: list[int], upstream: list[int]) -> None:
        self.pinning, self.louter, self.upstream = pinning, louter, upstream
        self.started = time.monotonic()
        self.jiffies = [cpu_jiffies(c) for c in self._cpus()]
        self.louter_s = cpu_seconds(louter)
        self.load_s = self._load_seconds()

    def _cpus(self) -> tuple[int, ...]:
        return (self.pinning.load_cpu, self.pinning.proxy_cpu) if self.pinning else ()

    def _load_seconds(self) -> float:
        times = os.times()
        return cpu_seconds(self.upstream) + times.children_user + times.children_system

    def read(self, summary: WrkSummary) -> Measured:
        wall = time.monotonic() - self.started
        louter_s = cpu_seconds(self.louter) - self.louter_s if self.louter else None
        if self.pinning is None:
            return Measured(summary, cpu_s=louter_s)
        load_busy, proxy_busy = (
            busy_pct(before, cpu_jiffies(cpu))
            for before, cpu in zip(self.jiffies, self._cpus(), strict=True)
        )
        load_own = (self._load_seconds() - self.load_s) / wall * 100
        load = CpuShare(load_busy, load_own)
        proxy = None if louter_s is None else CpuShare(proxy_busy, louter_s / wall * 100)
        return Measured(summary, cpu_s=louter_s, load_cpu=load, proxy_cpu=proxy)


class Runner:
    """Measures cases on one started stack."""

    def __init__(self, settings: Settings, stack: Stack, workdir: Path, wrk_path: str) -> None:
        self.settings = settings
        self.stack = stack
        self.workdir = workdir
        self.wrk = wrk_path
        self.urls = {"direct": stack.upstream_url, "louter": stack.louter_url}

    def load(self, case: Case, target: str, body: Path, seconds: int) -> Measured:
        """One wrk run, with louter's CPU time and how both CPUs were used meanwhile."""
        pinning = self.settings.pinning
        louter = family(self.stack.louter.pid) if target == "louter" else []
        meter = CpuMeter(pinning, louter, [self.stack.upstream.pid])
        summary = wrk.run(
            self.wrk,
            self.urls[target] + PATH,
            body,
            self.workdir / "wrk-summary.json",
            connections=case.connections,
            seconds=seconds,
            cpu=pinning.load_cpu if pinning else None,
        )
        return meter.read(summary)

    def measure(self, case: Case, body: Path, progress: Progress) -> CaseResult:
        """Check, warm up and measure `case` against the mock, then through louter."""
        content = body.read_bytes()
        results: dict[str, Measured] = {}
        for target, url in self.urls.items():
            check(url, case.body, content, target)
            if self.settings.warmup:
                self.load(case, target, body, self.settings.warmup)
            progress(f"{case.name} {target}: {self.settings.duration} s, c={case.connections}")
            results[target] = self.load(case, target, body, self.settings.duration)
        return CaseResult(case, results["direct"], results["louter"])


def run_cases(settings: Settings, progress: Progress) -> CasesReport:
    """Run `settings.cases`; see the module docstring.

    Raises:
        BenchError: wrk is missing (exit code 2), a process did not start, a target gave
            a wrong answer, wrk failed.
    """
    wrk_path = wrk.locate(settings.wrk)
    unknown = [name for name in settings.cases if name not in CASES]
    if unknown or not settings.cases:
        named = repr(unknown[0]) if unknown else "(none)"
        raise BenchError(f"unknown case {named}; cases: {', '.join(CASES)}", exit_code=2)
    cases = [CASES[name] for name in settings.cases]
    with scratch(settings.workdir) as workdir, open_stack(settings, workdir, progress) as stack:
        paths = write_bodies(workdir, {case.body for case in cases})
        start_kib = memory_kib(family(stack.louter.pid))[0]
        runner = Runner(settings, stack, workdir, wrk_path)
        results = tuple(runner.measure(case, paths[case.body], progress) for case in cases)
        end_kib, peak_kib = memory_kib(family(stack.louter.pid))
    return CasesReport(
        machine=machine(settings, wrk_path),
        duration=settings.duration,
        warmup=settings.warmup,
        results=results,
        memory=Memory(start_kib=start_kib, end_kib=end_kib, peak_kib=peak_kib),
    )
