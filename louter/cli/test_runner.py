"""`test-runner`: probe one backend directly (no proxy in between) and report.

    test-runner [OPTIONS] PROTOCOL URL [KEY] [PROBE]...

Output is a rich table on a terminal (or with `--pretty`), one JSON object per probe
when stdout is not a terminal (or with `--json`). Exit status: 0 every selected probe
passed, 1 one failed, 2 usage errors (an unknown protocol or probe, no URL, a log file
that cannot be opened).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated

import httpx
import orjson
import trio
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from louter.config import KEY_ENV_BY_PROTOCOL, normalise_url, url_problem
from louter.convert.dialect import DIALECTS
from louter.probes import (
    ALIASES,
    BY_NAME,
    Probe,
    ProbeResult,
    Target,
    canonical,
    run_probes,
    select,
)
from louter.probes.run import Sink
from louter.probes.wire import WIRES
from louter.proxy.journal import Journal

PROTOCOLS = tuple(DIALECTS)
DEFAULT_MODELS = {name: wire.default_model for name, wire in WIRES.items()}
EXPECTATIONS = {"auto": None, "mock": True, "model": False}
ALIAS_HELP = "; ".join(
    f"{', '.join(a for a, n in ALIASES.items() if n == name)} = {name}"
    for name in dict.fromkeys(ALIASES.values())
)

app = typer.Typer(
    add_completion=False,
    help="Probe one backend directly: text, streaming, tools, images, tokens, errors.",
)


class UsageError(Exception):
    """A bad command line (exit 2)."""


@dataclass(frozen=True, slots=True)
class Plan:
    target: Target
    probes: tuple[Probe, ...]


def complain(err: Console, message: str) -> None:
    err.print(Text(f"test-runner: {message}", style="bold red"), soft_wrap=True)


def isatty(stream: IO[str]) -> bool:
    check = getattr(stream, "isatty", None)
    return bool(check and check())


def make_plan(
    protocol: str,
    args: list[str],
    *,
    url: str | None,
    key: str | None,
    model: str | None,
    probes: list[str],
    expect: str,
    env: Mapping[str, str],
) -> Plan:
    """The target and probes the arguments name. Positionals after PROTOCOL are URL
    (unless --url), KEY (unless --key, or when it is a probe's name), then probe names.

    Raises:
        UsageError: an unknown protocol, probe or expectation; no URL.
    """
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if expect not in EXPECTATIONS:
        raise UsageError(f"unknown --expect {expect!r}; use one of {', '.join(EXPECTATIONS)}")
    rest = list(args)
    if url is None:
        if not rest:
            raise UsageError("missing URL: give it after PROTOCOL or with --url")
        url = rest.pop(0)
    problem = url_problem(url)
    if problem is not None:
        raise UsageError(f"the backend URL {problem}")
    if key is None and rest and canonical(rest[0]) is None:
        key = rest.pop(0)
    try:
        chosen = select([*rest, *probes])
    except KeyError as exc:
        raise UsageError(f"unknown probe {exc.args[0]!r}; probes: {', '.join(BY_NAME)}") from None
    key = key or env.get(KEY_ENV_BY_PROTOCOL[protocol]) or None
    target = Target(
        protocol,
        normalise_url(url),
        model or DEFAULT_MODELS[protocol],
        key=key,
        mock=EXPECTATIONS[expect],
    )
    return Plan(target, chosen)


async def probe_all(
    plan: Plan,
    sink: Sink | None,
    timeout: float,
    on_result: Callable[[ProbeResult], None] | None = None,
) -> list[ProbeResult]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0)) as client:
        return await run_probes(
            plan.probes,
            client,
            plan.target,
            sink=sink,
            on_result=on_result,
            run_id=f"test-runner-{os.urandom(3).hex()}",
        )


def table(plan: Plan, results: list[ProbeResult]) -> Table:
    target = plan.target
    passed = sum(r.passed for r in results)
    view = Table(
        title=f"test-runner: {target.dialect} {escape(target.url)} ({escape(target.model)})",
        title_justify="left",
        caption=f"{passed}/{len(results)} probes passed",
        caption_justify="left",
    )
    for column in ("probe", "result", "latency", "detail"):
        view.add_column(column, overflow="fold")
    for result in results:
        mark = "[green]✅ pass[/]" if result.passed else "[bold red]❌ fail[/]"
        view.add_row(
            f"{result.title} [dim]({result.probe})[/]",
            mark,
            f"{result.latency_ms:.0f} ms",
            escape(result.detail),
        )
    return view


def json_line(result: ProbeResult) -> str:
    return orjson.dumps(result.as_dict()).decode() + "\n"


def open_journal(path: Path | None) -> Journal | None:
    """Raises OSError when the file cannot be opened for appending."""
    return None if path is None else Journal(path, clock=time.time)


@app.command()
def main_command(
    protocol: Annotated[
        str, typer.Argument(metavar="PROTOCOL", help="openai, gemini, anthropic or responses.")
    ],
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[URL] [KEY] [PROBE]...",
            help=f"The backend's base URL, its key, probes to run ({', '.join(BY_NAME)}; "
            f"default: all). Aliases: {ALIAS_HELP}.",
            show_default=False,
        ),
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="The backend's base URL.")] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="API key (default: OPENAI_API_KEY, GEMINI_API_KEY or ANTHROPIC_API_KEY).",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (default: one per protocol).")
    ] = None,
    probe: Annotated[
        list[str] | None,
        typer.Option("--probe", "-p", help="A probe (or alias) to run (repeatable)."),
    ] = None,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", help="Append every exchange here in louter's JSONL format."),
    ] = None,
    expect: Annotated[
        str,
        typer.Option(
            "--expect",
            help="auto: exact answers when the backend answers like louter's mock; "
            "mock: always; model: structural checks only.",
        ),
    ] = "auto",
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for one answer.")
    ] = 120.0,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object per probe.")] = False,
    pretty: Annotated[bool, typer.Option("--pretty", help="A table even when piped.")] = False,
) -> None:
    """Probe one backend directly; exit 0 only when every selected probe passes."""
    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    try:
        plan = make_plan(
            protocol,
            args or [],
            url=url,
            key=key,
            model=model,
            probes=probe or [],
            expect=expect,
            env=dict(os.environ),
        )
        journal = open_journal(log_file)
    except UsageError as exc:
        complain(err, str(exc))
        raise typer.Exit(2) from None
    except OSError as exc:
        complain(err, f"cannot open log file {log_file}: {exc}")
        raise typer.Exit(2) from None
    use_json = json_ or (not pretty and not isatty(out.file))
    raise typer.Exit(report(plan, journal, timeout, out, use_json=use_json))


def report(
    plan: Plan, journal: Journal | None, timeout: float, out: Console, *, use_json: bool
) -> int:
    """Run the plan, print the results; the exit status."""

    def emit(result: ProbeResult) -> None:
        out.file.write(json_line(result))
        out.file.flush()

    try:
        results = trio.run(probe_all, plan, journal, timeout, emit if use_json else None)
    finally:
        if journal is not None:
            journal.close()
    if not use_json:
        out.print(table(plan, results))
    return 0 if all(r.passed for r in results) else 1


def main() -> None:
    app()
