"""`bench`: measure what louter adds on this machine, or soak it and watch its memory.

    bench [--duration S] [--cases S1,S2,S3,S4] [--proxy-cpu N --load-cpu N] [--louter CMD]
    bench --soak 200000

The first form runs each case with wrk against a fast mock upstream directly and through
louter (pinned to one CPU when taskset exists) and prints louter's overhead; the second
sends that many mixed requests through louter with its log on and reports louter's RSS
after the first 10,000 and at the end, and whether the log has one exchange per request.

Output is a rich table on a terminal (or with `--pretty`), one JSON document when stdout
is not a terminal (or with `--json`); progress goes to stderr. Exit status: 0 done
(soak: passed), 1 a run failed, had errors, or the soak check failed, 2 usage errors
(wrk missing, an unknown case, bad CPUs).
"""

from __future__ import annotations

import shlex
import shutil
import signal
from pathlib import Path
from types import FrameType
from typing import IO, Annotated

import orjson
import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from louter.bench.model import CASES, BenchError, CaseResult, CasesReport, Settings, SoakReport
from louter.bench.run import choose_pinning, run_cases
from louter.bench.soak import run_soak
from louter.bench.stack import default_louter

app = typer.Typer(
    add_completion=False,
    help="Measure louter's overhead against a direct call (wrk, a mock upstream), "
    "or soak it (--soak N) and watch its memory.",
)

LOAD_BUSY_WARNING = 90.0  # % of the load CPU above which louter's numbers are suspect
OTHERS_WARNING = 10.0  # % of louter's CPU taken by other processes worth a warning


def complain(err: Console, message: str) -> None:
    err.print(Text(f"bench: {message}", style="bold red"), soft_wrap=True)


def isatty(stream: IO[str]) -> bool:
    check = getattr(stream, "isatty", None)
    return bool(check and check())


def ms(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def signed_ms(value: float) -> str:
    return ("+" if value >= 0 else "-") + ms(abs(value))


def kib(value: int) -> str:
    return f"{value / 1024:.1f} MiB"


def machine_line(report: CasesReport | SoakReport) -> str:
    m = report.machine
    cpus = m.louter_cpus if m.louter_cpus is not None else m.pinning and m.pinning.proxy_cpu
    where = (
        f"louter on CPU {cpus}, mock upstream and load on CPU {m.pinning.load_cpu}"
        if m.pinning
        else "not pinned"
    )
    if m.workers:
        where += f"; louter --workers {m.workers}"
    parts = [f"{m.cpu_model}, {m.cpus} CPUs", where, m.wrk, f"Python {m.python}"]
    return "; ".join(part for part in parts if part)


def case_notes(result: CaseResult) -> list[str]:
    """Warnings about a case's louter run: a saturated load CPU, other processes on the
    pinned CPUs."""
    name, load, proxy = result.case.name, result.louter.load_cpu, result.louter.proxy_cpu
    notes = []
    if load is not None and load.own_pct > LOAD_BUSY_WARNING:
        notes.append(
            f"{name}: wrk and the mock upstream used {load.own_pct:.0f}% of the load CPU "
            "during the louter run; they may have been the limit, not louter"
        )
    others = [
        f"{share.others_pct:.0f}% of the {which} CPU"
        for which, share in (("load", load), ("proxy", proxy))
        if share is not None and share.others_pct > OTHERS_WARNING
    ]
    if others:
        notes.append(
            f"{name}: other processes took {' and '.join(others)} during the louter run; "
            "the numbers are noisy"
        )
    return notes


COLUMNS = (
    "case",
    "c",
    "req/s\ndirect",
    "req/s\nlouter",
    "p50 ms\ndirect",
    "p50 ms\nlouter",
    "added\np50 ms",
    "added\np99 ms",
    "CPU µs\nper req",
    "errors",
)


def case_row(result: CaseResult) -> list[str]:
    direct, louter = result.direct, result.louter
    extra = result.overhead()
    errors = direct.wrk.errors + louter.wrk.errors
    per_request = louter.cpu_us_per_request
    return [
        result.case.name,
        str(result.case.connections),
        f"{direct.wrk.rps:,.0f}",
        f"{louter.wrk.rps:,.0f}",
        ms(direct.wrk.p50_ms),
        ms(louter.wrk.p50_ms),
        signed_ms(extra["p50_ms"]),
        signed_ms(extra["p99_ms"]),
        "-" if per_request is None else f"{per_request:,.0f}",
        f"[bold red]{errors}[/]" if errors else "0",
    ]


def cases_view(report: CasesReport) -> RenderableType:
    """louter against the direct floor, one row per case, and notes below."""
    view = Table(
        title=f"louter {escape(report.machine.louter)} against a direct call: "
        f"{report.duration} s per run after {report.warmup} s warm-up",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for column in COLUMNS:
        view.add_column(column, justify="left" if column == "case" else "right")
    notes = []
    for result in report.results:
        view.add_row(*case_row(result))
        notes += case_notes(result)
    memory = report.memory
    lines = [
        "; ".join(f"{r.case.name}: {r.case.title}" for r in report.results)
        + "; CPU: louter's CPU time per request",
        f"louter RSS {kib(memory.start_kib)} after start-up, {kib(memory.end_kib)} at "
        f"the end, peak {kib(memory.peak_kib)}",
        *notes,
        machine_line(report),
    ]
    return Group(view, *(Text(line) for line in lines))


def soak_view(report: SoakReport) -> RenderableType:
    """louter's RSS along the soak, then the verdicts."""
    title = Text(
        f"louter {report.machine.louter} soak: {report.requests:,} requests "
        f"({', '.join(report.mix)}), {report.connections} connections, log on",
        style="italic",
    )
    view = Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    view.add_column("requests done", justify="right")
    view.add_column("louter RSS", justify="right")
    view.add_column("vs baseline", justify="right")
    for answered, rss in report.samples:
        change = (rss - report.baseline_kib) / report.baseline_kib * 100
        mark = " [dim](baseline)[/]" if answered == report.baseline_requests else ""
        view.add_row(f"{answered:,}{mark}", kib(rss), f"{change:+.1f}%")
    log = report.log
    verdict = "[green]✅ pass[/]" if report.ok else "[bold red]❌ fail[/]"
    memory = "within" if report.memory_ok else "[bold red]NOT within[/]"
    rate = report.requests / report.elapsed_s if report.elapsed_s else 0.0
    lines = "\n".join(
        [
            f"{verdict}: RSS at the end {kib(report.end_kib)} is {report.growth_pct:+.1f}% "
            f"against {kib(report.baseline_kib)} after {report.baseline_requests:,} requests, "
            f"{memory} {report.limit_pct:.0f}%; peak {kib(report.peak_kib)}",
            f"log: {log.exchanges:,} exchanges, {log.complete:,} complete, "
            f"{log.incomplete:,} incomplete, {log.duplicated:,} duplicated, "
            f"{log.errors:,} error entries, {log.lines:,} lines ({log.size_bytes / 2**20:,.1f} MiB)"
            + ("" if report.log_ok else " [bold red](expected one complete exchange each)[/]"),
            f"{report.elapsed_s:.1f} s, {rate:,.0f} req/s, {report.failures:,} failed requests"
            + (f" (first: {escape(report.first_failure)})" if report.first_failure else "")
            + f", louter CPU {report.cpu_s / report.requests * 1e6:,.0f} µs per request",
            escape(machine_line(report)),
        ]
    )
    return Group(title, view, Text.from_markup(lines))


def json_text(report: CasesReport | SoakReport) -> str:
    return orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"


def render(report: CasesReport | SoakReport, out: Console, *, use_json: bool) -> int:
    """Print the report; the exit status."""
    if use_json:
        out.file.write(json_text(report))
        out.file.flush()
    else:
        view = soak_view(report) if isinstance(report, SoakReport) else cases_view(report)
        out.print(view)
    if isinstance(report, SoakReport):
        return 0 if report.ok else 1
    return 1 if report.errors else 0


def make_settings(
    *,
    cases: str,
    duration: int,
    warmup: int,
    proxy_cpu: int | None,
    load_cpu: int | None,
    pin: bool,
    louter: str | None,
    wrk: str,
    workdir: Path | None,
    config_extra: Path | None = None,
    workers: int = 0,
) -> Settings:
    """Raises BenchError (exit code 2) for bad values."""
    names = tuple(name.strip().upper() for name in cases.split(",") if name.strip())
    if duration < 1 or warmup < 0:
        raise BenchError("--duration must be at least 1 and --warmup at least 0", exit_code=2)
    pinning = (
        choose_pinning(proxy_cpu, load_cpu, has_taskset=shutil.which("taskset") is not None)
        if pin
        else None
    )
    return Settings(
        louter=tuple(shlex.split(louter)) if louter else default_louter(),
        pinning=pinning,
        duration=duration,
        warmup=warmup,
        cases=names,
        wrk=wrk,
        workdir=workdir,
        config_extra=_read_extra(config_extra),
        workers=workers,
    )


def _read_extra(path: Path | None) -> str:
    """The `--config-extra` file's TOML ("" without one); BenchError when unreadable."""
    if path is None:
        return ""
    try:
        return path.read_text()
    except OSError as exc:
        raise BenchError(f"cannot read --config-extra {path}: {exc}", exit_code=2) from None


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM behaves like Ctrl-C: every started process is stopped on the way out."""
    signal.raise_signal(signal.SIGINT)


@app.command()
def main_command(
    duration: Annotated[
        int, typer.Option("--duration", "-d", help="Measured seconds per run (whole seconds).")
    ] = 5,
    warmup: Annotated[
        int, typer.Option("--warmup", help="Seconds of load before each run, not counted.")
    ] = 1,
    cases: Annotated[
        str, typer.Option("--cases", help=f"Cases to run, comma-separated: {', '.join(CASES)}.")
    ] = ",".join(CASES),
    soak: Annotated[
        int | None,
        typer.Option("--soak", help="Soak instead: this many mixed requests through louter."),
    ] = None,
    connections: Annotated[int, typer.Option("--connections", help="Connections for --soak.")] = 16,
    proxy_cpu: Annotated[
        int | None, typer.Option("--proxy-cpu", help="CPU for louter (default: the second CPU).")
    ] = None,
    load_cpu: Annotated[
        int | None,
        typer.Option("--load-cpu", help="CPU for the mock and the load (default: the first)."),
    ] = None,
    pin: Annotated[
        bool, typer.Option("--pin/--no-pin", help="Pin processes to CPUs with taskset.")
    ] = True,
    louter: Annotated[
        str | None,
        typer.Option(
            "--louter",
            help="Command starting louter (--config, --host, --port, --log-file are "
            "appended; default: this Python running this louter package).",
        ),
    ] = None,
    wrk: Annotated[str, typer.Option("--wrk", help="The wrk executable.")] = "wrk",
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Keep config, logs and louter's JSONL log here."),
    ] = None,
    config_extra: Annotated[
        Path | None,
        typer.Option(
            "--config-extra",
            help="TOML appended to louter's generated config (e.g. \\[keys.NAME] and \\[limits]; "
            "wrk sends 'Authorization: Bearer sk-bench-client').",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=0,
            help="Run louter --workers N (pinned to N CPUs) [0: one process].",
        ),
    ] = 0,
    json_: Annotated[bool, typer.Option("--json", help="JSON even on a terminal.")] = False,
    pretty: Annotated[bool, typer.Option("--pretty", help="A table even when piped.")] = False,
) -> None:
    """Benchmark louter against a direct call, or soak it."""
    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    use_json = json_ or (not pretty and not isatty(out.file))

    def progress(message: str) -> None:
        err.print(Text(f"bench: {message}", style="dim"), soft_wrap=True)

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        settings = make_settings(
            cases=cases,
            duration=duration,
            warmup=warmup,
            proxy_cpu=proxy_cpu,
            load_cpu=load_cpu,
            pin=pin,
            louter=louter,
            wrk=wrk,
            workdir=workdir,
            config_extra=config_extra,
            workers=workers,
        )
        report: CasesReport | SoakReport = (
            run_cases(settings, progress)
            if soak is None
            else run_soak(settings, soak, connections, progress)
        )
    except BenchError as exc:
        complain(err, exc.message)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        complain(err, "interrupted; the processes it started are stopped")
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(render(report, out, use_json=use_json))


def main() -> None:
    app()
