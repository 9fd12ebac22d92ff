"""`diagnostic`: every probe through every front door of louter, for every backend/model.

Starts louter in-process on `--port` with `--config` (or uses one already running at
`--url`), runs the probes of `louter.probes` through the OpenAI, Gemini and Anthropic
front doors for each backend/model it serves (`louter.probes.matrix`), shows progress on
stderr and prints a summary (plus a rich matrix on a terminal), or one JSON report with
`--json`. Exit status: 0 everything passed, 1 something failed, 2 usage or config errors
(bad config, unknown backend, port in use, nothing louter-like at `--url`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any

import httpx
import orjson
import trio
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from louter.cli.louter import default_backend
from louter.config import load_config
from louter.errors import ConfigError
from louter.probes import PROBES, ProbeResult, run_probes
from louter.probes.catalog import applicable
from louter.probes.matrix import DOORS, Served, plan, served_by_config, served_by_health
from louter.probes.run import Target
from louter.probes.wire import WIRES
from louter.proxy.app import build_context, serve
from louter.proxy.context import ProxyContext

app = typer.Typer(
    add_completion=False,
    help="Run every feature probe through every louter front door, for every backend.",
)
HOST = "127.0.0.1"
PASS, FAIL = "✅", "❌"


class SetupError(Exception):
    """louter could not be started or reached (exit 2)."""


@dataclass(frozen=True, slots=True)
class Report:
    url: str
    in_process: bool
    served: tuple[Served, ...]
    results: tuple[ProbeResult, ...]

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "in_process": self.in_process,
            "backends": [
                {"backend": s.backend, "protocol": s.protocol, "models": list(s.models)}
                for s in self.served
            ],
            "passed": self.passed,
            "total": len(self.results),
            "ok": self.passed == len(self.results),
            "results": [r.as_dict() for r in self.results],
        }


# --------------------------------------------------------------------------- running


async def _probe(
    url: str,
    doors: Sequence[str],
    served: Sequence[Served],
    timeout: float,
    on_result: Callable[[ProbeResult], None],
) -> list[ProbeResult]:
    results: list[ProbeResult] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
        for target in plan(url, doors, served):
            results += await run_probes(PROBES, client, target, on_result=on_result)
    return results


async def _health(url: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(url + "/health")
        value = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SetupError(f"no louter answers at {url}: {exc}") from None
    if not isinstance(value, dict):
        raise SetupError(f"{url}/health is not louter's")
    return value


async def probe_in_process(
    ctx: ProxyContext,
    port: int,
    doors: Sequence[str],
    served: Sequence[Served],
    timeout: float,
    on_result: Callable[[ProbeResult], None],
) -> Report:
    """Start louter on `port` (0: any free port), probe it, stop it. Raises SetupError."""
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            bound = await nursery.start(serve, ctx, HOST, port)
        except* OSError as group:  # bare, or wrapped by the nurseries inside `serve`
            failure = _innermost(group)
        else:
            url = f"http://{HOST}:{bound}"
            results = await _probe(url, doors, served, timeout, on_result)
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise SetupError(f"cannot listen on {HOST}:{port}: {failure}")
    return Report(url, True, tuple(served), tuple(results))


def _innermost(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def diagnose(
    *,
    url: str | None,
    config: Path | None,
    backend: str | None,
    port: int,
    doors: Sequence[str],
    timeout: float,
    err: Console,
) -> Report:
    """Probe louter at `url`, or one started here. Raises SetupError, ConfigError."""
    if url is not None:
        if config is not None:
            raise SetupError("--config is for the louter started here; with --url, leave it out")
        url = url.rstrip("/")
        served = served_by_health(trio.run(_health, url), backend)
        show = progress(err, _total(plan(url, doors, served)), _several(served))
        results = trio.run(_probe, url, doors, served, timeout, show)
        return Report(url, False, tuple(served), tuple(results))
    cfg = load_config(config, os.environ)
    default = default_backend(cfg, backend)
    ctx = build_context(cfg, default_backend=default)
    served = served_by_config(cfg, default, backend)
    show = progress(err, _total(plan("", doors, served)), _several(served))
    return trio.run(probe_in_process, ctx, port, doors, served, timeout, show)


def _total(targets: Sequence[Target]) -> int:
    """How many probes run: each target's door is asked what its API can carry."""
    return sum(len(applicable(PROBES, WIRES[t.dialect].lacks)) for t in targets)


def _several(served: Sequence[Served]) -> bool:
    return sum(len(s.models) for s in served) > 1


# --------------------------------------------------------------------------- rendering


def progress(err: Console, total: int, several: bool) -> Callable[[ProbeResult], None]:
    done = 0

    def show(result: ProbeResult) -> None:
        nonlocal done
        done += 1
        mark = PASS if result.passed else FAIL
        err.print(
            f"diagnostic: [{done}/{total}] {mark} {label(result, several)} "
            f"({result.latency_ms:.0f} ms)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    return show


def label(result: ProbeResult, several: bool) -> str:
    """`Gemini Text Generation`, with `[backend/model]` when there is more than one."""
    text = f"{DOORS[result.dialect]} {result.title}"
    return f"{text} [{result.backend}/{result.model}]" if several else text


def summary(report: Report, several: bool) -> list[str]:
    lines = ["=== Diagnostic Test Summary ==="]
    for door, name in DOORS.items():
        mine = [r for r in report.results if r.dialect == door]
        if not mine:
            continue
        lines.append(f"{name} Frontend Tests:")
        for result in mine:
            failure = "" if result.passed else f" (Error: {result.detail})"
            lines.append(f"  {PASS if result.passed else FAIL} {label(result, several)}{failure}")
    lines.append(f"Overall: {report.passed}/{len(report.results)} tests passed")
    return lines


def matrix(report: Report) -> Table:
    """Rows: backend/model × probe; columns: the front doors probed."""
    doors = [d for d in DOORS if any(r.dialect == d for r in report.results)]
    table = Table(title=f"louter at {escape(report.url)}", title_justify="left")
    for column in ("backend", "model", "probe", *(DOORS[d] for d in doors)):
        table.add_column(column)
    cells = {(r.backend, r.model, r.probe, r.dialect): r for r in report.results}
    for served in report.served:
        for model in served.models:
            for probe in PROBES:
                row = [cells.get((served.backend, model, probe.name, d)) for d in doors]
                table.add_row(escape(served.backend), escape(model), probe.title, *map(_cell, row))
    return table


def _cell(result: ProbeResult | None) -> str:
    if result is None:
        return "-"
    if result.passed:
        return f"[green]{PASS}[/] {result.latency_ms:.0f} ms"
    return f"[bold red]{FAIL}[/] {escape(result.detail[:60])}"


def render(report: Report, out: Console, *, as_json: bool, tty: bool) -> None:
    if as_json:
        out.file.write(orjson.dumps(report.as_dict()).decode() + "\n")
        return
    if tty:
        out.print(matrix(report))
        out.print()
    for line in summary(report, _several(report.served)):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def isatty(stream: IO[str]) -> bool:
    check = getattr(stream, "isatty", None)
    return bool(check and check())


def complain(err: Console, message: str) -> None:
    err.print(Text(f"diagnostic: {message}", style="bold red"), soft_wrap=True)


@app.command()
def main_command(
    backend: Annotated[
        str | None, typer.Option("--backend", help="Probe only this backend (louter's default).")
    ] = None,
    port: Annotated[
        int, typer.Option("--port", help="Port of the louter started here (0: any free one).")
    ] = 9000,
    config: Annotated[
        Path | None, typer.Option("--config", help="config.toml for the louter started here.")
    ] = None,
    skip_openai_frontend: Annotated[
        bool, typer.Option("--skip-openai-frontend", help="Leave out the OpenAI front door.")
    ] = False,
    skip_gemini_frontend: Annotated[
        bool, typer.Option("--skip-gemini-frontend", help="Leave out the Gemini front door.")
    ] = False,
    skip_anthropic_frontend: Annotated[
        bool,
        typer.Option("--skip-anthropic-frontend", help="Leave out the Anthropic front door."),
    ] = False,
    skip_responses_frontend: Annotated[
        bool,
        typer.Option("--skip-responses-frontend", help="Leave out the Responses front door."),
    ] = False,
    skip_completions_frontend: Annotated[
        bool,
        typer.Option(
            "--skip-completions-frontend", help="Leave out the legacy Completions front door."
        ),
    ] = False,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Probe the louter already running here instead."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for one answer.")
    ] = 120.0,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON report.")] = False,
) -> None:
    """Probe every front door of louter for every backend; exit 0 only if all pass."""
    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    skipped = {
        "openai": skip_openai_frontend,
        "gemini": skip_gemini_frontend,
        "anthropic": skip_anthropic_frontend,
        "responses": skip_responses_frontend,
        "completions": skip_completions_frontend,
    }
    doors = [door for door in DOORS if not skipped.get(door)]
    try:
        if not doors:
            raise SetupError("every front door is skipped: nothing to probe")
        report = diagnose(
            url=url,
            config=config,
            backend=backend,
            port=port,
            doors=doors,
            timeout=timeout,
            err=err,
        )
    except (SetupError, ConfigError) as exc:
        complain(err, str(exc))
        raise typer.Exit(2) from None
    render(report, out, as_json=json_, tty=isatty(out.file))
    raise typer.Exit(0 if report.passed == len(report.results) else 1)


def main() -> None:
    app()
