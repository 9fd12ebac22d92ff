"""The processes a benchmark starts, and what /proc says about them.

Every child starts in its own session (a terminal's Ctrl-C reaches only the benchmark,
which then stops its children itself), pinned to one CPU with `taskset -c` when a CPU is
given, with its output in a file. `Child.stop` ends it by its own PID: SIGTERM, a grace
period, then SIGKILL. Nothing here looks processes up by name.

CPU time and memory are read for a process and its descendants (a `--louter` command may
be a wrapper that forks): utime+stime from `/proc/PID/stat`, VmRSS/VmHWM from
`/proc/PID/status`.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from louter.bench.model import BenchError

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pinned(argv: Sequence[str], cpu: int | str | None) -> list[str]:
    """`argv` run on `cpu` (through taskset; a list such as "1,0" for several), or as it
    is when `cpu` is None."""
    if cpu is None:
        return list(argv)
    taskset = shutil.which("taskset")
    if taskset is None:
        raise BenchError("taskset is not installed (apt-get install util-linux)", exit_code=2)
    return [taskset, "-c", str(cpu), *argv]


@dataclass(slots=True)
class Child:
    """A started process: its name for messages, the Popen, and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    output: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        """The last lines the process wrote (stdout and stderr), for error messages."""
        try:
            text = self.output.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL; reaps the process."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start(
    name: str,
    argv: Sequence[str],
    output: Path,
    *,
    env: Mapping[str, str] | None = None,
    keep_stdout: bool = False,
) -> Child:
    """Start `argv` in a new session; stderr (and stdout, unless `keep_stdout` keeps it as
    a pipe to read) goes to `output`."""
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if keep_stdout else sink,
            stderr=sink,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
    return Child(name, proc, output)


def read_line(child: Child, timeout: float) -> str:
    """The next line `child` writes on its stdout pipe.

    Raises:
        BenchError: the process ended or wrote nothing within `timeout` seconds.
    """
    pipe = child.proc.stdout
    assert pipe is not None, "start it with keep_stdout=True"
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        if selector.select(timeout):
            line = pipe.readline().decode(errors="replace").strip()
            if line:
                return line
    raise BenchError(f"{child.name} did not start:\n{child.tail()}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's choice for port 0)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- /proc


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (field 3 onwards)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        text = stat.read().decode()
    return text[text.rindex(")") + 2 :].split()


def family(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(_stat_fields(int(entry))[1])
            except (OSError, ValueError, IndexError):
                continue  # it ended while we looked
            parents.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(parents.get(current, ()))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of these processes so far (those that ended count 0)."""
    ticks = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / CLOCK_TICKS


def memory_kib(pids: Iterable[int]) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB, summed over these processes."""
    rss = hwm = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                lines = status.readlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return rss, hwm


def cpu_jiffies(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of CPU `cpu` so far, from /proc/stat. Busy is time running
    processes (user, nice, system) or taken by the hypervisor (steal); interrupt handling
    is left out, as loopback traffic puts much of it on the CPUs the traffic's ends use."""
    wanted = f"cpu{cpu}"
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if name == wanted:
                user, nice, system, _idle, _iowait, _irq, _softirq, steal = (
                    int(v) for v in values[:8]
                )
                busy = user + nice + system + steal
                return busy, sum(int(v) for v in values[:8])
    raise BenchError(f"/proc/stat has no {wanted}")


def busy_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How busy a CPU was between two `cpu_jiffies` readings, in percent."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total * 100 if total > 0 else 0.0
