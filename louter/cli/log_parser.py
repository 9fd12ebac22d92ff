"""`log-parser`: analyse louter's JSONL log. Parses arguments, calls `louter.logs`, renders.

Output is one JSON object per line when stdout is not a terminal (or with `--json`), rich
text on a terminal (or with `--pretty`). Exit status: 0 something matched, 1 nothing
matched, 2 usage or file errors. Bad lines are skipped and counted on stderr.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

import httpx
import orjson
import typer
from rich.console import Console, RenderableType
from rich.text import Text

from louter.cli import log_views as views
from louter.cli.log_replay import build_request, curl_command, send
from louter.cli.usage_view import usage_view
from louter.logs.pairs import Pair, pair_entries, select_pairs, to_dict
from louter.logs.query import EVERYTHING, Query, QueryError, build_query
from louter.logs.reader import (
    STDIN,
    LineCounts,
    LogFileError,
    follow_lines,
    open_log,
    snapshot,
)
from louter.logs.reader import parse_lines as parse
from louter.logs.stats import Stats
from louter.logs.tools import function_record
from louter.logs.usage import DIMENSIONS, UsageTotals, entry_group

app = typer.Typer(
    add_completion=False,
    invoke_without_command=True,
    help="Analyse louter's JSONL log. Without a command: every entry (`all`).",
)

Json = dict[str, Any]
Criteria = dict[str, Any]  # the filter options' raw values, by name

DEFAULT_REPLAY_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class Run:
    """What every command needs: the log's name, the output mode and the consoles."""

    file: str | None
    json: bool
    out: Console
    err: Console


# --------------------------------------------------------------------------- plumbing


def complain(err: Console, message: str) -> None:
    err.print(Text(f"log-parser: {message}", style="bold red"), soft_wrap=True)


def report_bad_lines(err: Console, counts: LineCounts) -> None:
    if counts.bad:
        complain(
            err,
            f"skipped {counts.bad} bad line{'s' if counts.bad != 1 else ''} of {counts.lines} "
            f"(first: line {counts.first_bad_line}: {counts.first_bad_reason})",
        )


@contextmanager
def guarded(run: Run, counts: LineCounts) -> Iterator[None]:
    """Turn file/query errors into exit status 2 and a closed pipe into a quiet exit;
    report bad lines whatever happens."""
    try:
        yield
    except (LogFileError, QueryError) as exc:
        complain(run.err, str(exc))
        raise typer.Exit(2) from None
    except BrokenPipeError:
        # The reader left (`| head`): point stdout at /dev/null so the flush at exit
        # does not fail again (the Python docs' recipe), and stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    finally:
        report_bad_lines(run.err, counts)


def finish(matched: int) -> NoReturn:
    raise typer.Exit(0 if matched else 1)


def entries(run: Run, counts: LineCounts, *, follow: bool = False) -> Iterator[Json]:
    """The log's entries; with `follow`, then every entry appended until Ctrl-C."""
    assert run.file is not None
    if follow and run.file != STDIN:
        yield from parse(follow_lines(Path(run.file)), counts)
        return
    stream = open_log(run.file, sys.stdin.buffer)
    try:
        yield from parse(snapshot(stream), counts)
    finally:
        if run.file != STDIN:
            stream.close()


def emit_all(
    run: Run, records: Iterable[Json], view: Callable[[Json], RenderableType], *, flush: bool
) -> int:
    """Write each record (JSON line or rich view); the number written."""
    written = 0
    file = run.out.file
    try:
        for record in records:
            if run.json:
                file.write(orjson.dumps(record).decode() + "\n")
            else:
                run.out.print(view(record), soft_wrap=True, highlight=False)
            written += 1
            if flush:
                file.flush()
    except KeyboardInterrupt:
        pass  # --follow ends with Ctrl-C; the exit status still says whether anything matched
    file.flush()
    return written


def isatty(stream: IO[str]) -> bool:
    """Whether `stream` is a terminal (rich's `is_terminal` also honours FORCE_COLOR; the
    JSON-or-text choice must follow the real stdout)."""
    check = getattr(stream, "isatty", None)
    return bool(check and check())


def current(ctx: typer.Context) -> Run:
    run: Run = ctx.find_root().obj
    if run.file is None:
        raise typer.BadParameter(
            "missing: give a log file, or - for stdin", ctx, param_hint="'--file'"
        )
    return run


# --------------------------------------------------------------------------- filter options

FILTER_OPTIONS = (
    ("direction", str | None, None, "client_request, backend_request, backend_response, "
     "client_response or error."),
    ("format", str | None, None, "The hop's dialect (openai, gemini, anthropic, ...)."),
    ("backend", str | None, None, "Backend name."),
    ("model", str | None, None, "Client model name, or the name sent to the backend."),
    ("endpoint", str | None, None, "Substring of the endpoint path."),
    ("status", str | None, None, "HTTP status: a code (404) or a class (4xx)."),
    ("request_id", str | None, None, "One exchange's request id."),
    ("session", str | None, None, "One session's entries (its x-session-id)."),
    ("since", str | None, None, "From this time: ISO 8601 (UTC if no zone) or a span: 10m, 2h."),
    ("until", str | None, None, "Up to this time: ISO 8601 or a span before now."),
    ("errors", bool, False, "Only error entries and statuses of 400 or more."),
)  # fmt: skip
FILTER_PARAMETERS = [
    inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[
            kind,
            typer.Option("--" + name.replace("_", "-"), help=help_text, rich_help_panel="Filter"),
        ],
    )
    for name, kind, default, help_text in FILTER_OPTIONS
]


def with_filter(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the filter options; it receives them as `where` (a `Criteria`)."""
    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "where"]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        kwargs["where"] = {name: kwargs.pop(name) for name, *_ in FILTER_OPTIONS}
        command(*args, **kwargs)

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*kept, *FILTER_PARAMETERS]
    )
    return wrapper


def make_query(where: Criteria) -> Query:
    """Raises QueryError (exit 2) for a bad time or status."""
    return build_query(now=time.time(), **where)


FollowOption = Annotated[
    bool, typer.Option("--follow", "-F", help="Keep reading as the log grows (Ctrl-C stops).")
]


# --------------------------------------------------------------------------- commands


@app.callback()
def main_options(
    ctx: typer.Context,
    file: Annotated[
        str | None, typer.Option("--file", "-f", help="The JSONL log (.gz too; - for stdin).")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="JSON lines, even on a terminal.")] = False,
    pretty: Annotated[bool, typer.Option("--pretty", help="Readable output, even piped.")] = False,
) -> None:
    if json_ and pretty:
        raise typer.BadParameter("cannot be combined with --pretty", ctx, param_hint="'--json'")
    out = Console(highlight=False)
    use_json = json_ or (not pretty and not isatty(out.file))
    ctx.obj = Run(file, use_json, out, Console(stderr=True, highlight=False))
    if ctx.invoked_subcommand is None:
        show_entries(current(ctx), EVERYTHING, follow=False)


def show_entries(run: Run, query: Query, *, follow: bool) -> NoReturn:
    counts = LineCounts()
    with guarded(run, counts):
        source = entries(run, counts, follow=follow)
        selected = source if query.empty else filter(query.matches, source)
        matched = emit_all(run, selected, views.entry_line, flush=follow)
    finish(matched)


@app.command("all")
def all_command(ctx: typer.Context, follow: FollowOption = False) -> None:
    """Every entry."""
    show_entries(current(ctx), EVERYTHING, follow=follow)


@app.command("filter")
@with_filter
def filter_command(ctx: typer.Context, where: Criteria, follow: FollowOption = False) -> None:
    """Entries matching every option given."""
    run = current(ctx)
    with guarded(run, LineCounts()):
        query = make_query(where)
    show_entries(run, query, follow=follow)


@app.command("functions")
@with_filter
def functions_command(ctx: typer.Context, where: Criteria, follow: FollowOption = False) -> None:
    """Entries that declare tools or carry tool calls or results, calls normalised."""
    run, counts = current(ctx), LineCounts()
    with guarded(run, counts):
        query = make_query(where)
        records = (
            record
            for entry in entries(run, counts, follow=follow)
            if query.matches(entry) and (record := function_record(entry)) is not None
        )
        matched = emit_all(run, records, views.function_line, flush=follow)
    finish(matched)


def exchanges(
    run: Run, counts: LineCounts, where: Criteria, functions_only: bool
) -> Iterator[Pair]:
    query = make_query(where)
    paired = pair_entries(entries(run, counts))
    if query.empty and not functions_only:
        return paired
    return select_pairs(paired, query.matches, functions_only=functions_only)


@app.command("pairs")
@with_filter
def pairs_command(
    ctx: typer.Context,
    where: Criteria,
    functions_only: Annotated[
        bool, typer.Option("--functions-only", help="Only exchanges that involve tools.")
    ] = False,
) -> None:
    """Each exchange: client request, backend hops, client response (by request_id).
    With filter options: exchanges with at least one entry matching them all."""
    run, counts = current(ctx), LineCounts()
    with guarded(run, counts):
        records = (to_dict(ex) for ex in exchanges(run, counts, where, functions_only))
        matched = emit_all(run, records, views.pair_line, flush=False)
    finish(matched)


@app.command("stats")
@with_filter
def stats_command(ctx: typer.Context, where: Criteria) -> None:
    """Counts, latency and TTFT percentiles, tokens, errors, tool calls (one object)."""
    run, counts = current(ctx), LineCounts()
    stats = Stats()
    with guarded(run, counts):
        query = make_query(where)
        selected = entries(run, counts)
        for entry in selected if query.empty else filter(query.matches, selected):
            stats.feed(entry)
        summary = {**stats.result(), "lines": counts.lines, "bad_lines": counts.bad}
        emit_all(run, [summary], views.stats_view, flush=False)
    finish(stats.entries)


@app.command("usage")
def usage_command(
    ctx: typer.Context,
    by: Annotated[
        str, typer.Option("--by", help="Breakdowns, comma-separated: key,model,backend,day.")
    ] = ",".join(DIMENSIONS),
    since: Annotated[
        str | None, typer.Option(help="From this time: ISO 8601 (UTC if no zone) or a span: 2h.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time (as --since).")] = None,
) -> None:
    """Usage and cost per key, model, backend and day from the `usage` entries louter
    writes with [usage] on: the numbers /v2/usage/stats gives for the same traffic."""
    run, counts = current(ctx), LineCounts()
    dimensions = [d.strip() for d in by.split(",") if d.strip()]
    try:
        totals = UsageTotals(dimensions)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), ctx, param_hint="'--by'") from None
    with guarded(run, counts):
        where = {name: default for name, _, default, _ in FILTER_OPTIONS}
        query = make_query({**where, "since": since, "until": until, "direction": "usage"})
        for entry in filter(query.matches, entries(run, counts)):
            found = entry_group(entry)
            if found is not None:
                totals.add(*found)
        emit_all(run, [totals.result()], usage_view, flush=False)
    finish(totals.total[0])


def _headers(values: list[str], ctx: typer.Context) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise typer.BadParameter(
                f"{value!r} is not 'Name: value'", ctx, param_hint="'--header'"
            )
        pairs.append((name.strip(), rest.strip()))
    return pairs


def replay_reports(
    selected: Iterable[Pair],
    headers: list[tuple[str, str]],
    to: str,
    *,
    curl: bool,
    timeout: float,
) -> Iterator[Json]:
    """Send each exchange's client request to `to`, or make curl commands for it."""
    with httpx.Client(timeout=timeout) as client:
        for exchange in selected:
            if exchange.client_request is None:
                reason = "no client_request entry in the log"
                yield {"request_id": exchange.request_id, "status": None, "skipped": reason}
                continue
            request = build_request(exchange.client_request, headers)
            if curl:
                report = {"request_id": request.request_id, "curl": curl_command(request, to)}
                yield report | ({"problem": request.problem} if request.problem else {})
            else:
                yield send(request, client, to)


def _replay_view(report: Json) -> RenderableType:
    if "curl" in report:
        return Text(report["curl"])
    return views.replay_line(report)


@app.command("replay")
@with_filter
def replay_command(
    ctx: typer.Context,
    where: Criteria,
    to: Annotated[
        str | None, typer.Option("--to", help="louter's base URL, e.g. http://127.0.0.1:8080.")
    ] = None,
    curl: Annotated[
        bool, typer.Option("--curl", help="Print curl commands (for --to, default :8080).")
    ] = False,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="'Name: value' to add (secrets were redacted)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 120.0,
) -> None:
    """Re-send the client requests of the selected exchanges; report each status.
    Exit 2 when a request could not be sent."""
    run, counts = current(ctx), LineCounts()
    if not curl and to is None:
        raise typer.BadParameter("give --to URL (or --curl)", ctx, param_hint="'--to'")
    headers = _headers(header or [], ctx)
    unsent: list[str] = []

    def noting_failures(reports: Iterable[Json]) -> Iterator[Json]:
        for report in reports:
            if report.get("error"):
                unsent.append(report["request_id"])
            yield report

    with guarded(run, counts):
        selected = exchanges(run, counts, where, False)
        target = to or DEFAULT_REPLAY_URL
        reports = replay_reports(selected, headers, target, curl=curl, timeout=timeout)
        matched = emit_all(run, noting_failures(reports), _replay_view, flush=True)
    if unsent:
        raise typer.Exit(2)
    finish(matched)


@app.command("browse")
@with_filter
def browse_command(ctx: typer.Context, where: Criteria) -> None:
    """A TUI: the exchanges with search, and each one's entries in detail."""
    run, counts = current(ctx), LineCounts()
    with guarded(run, counts):
        selected = list(exchanges(run, counts, where, False))
    if not selected:
        finish(0)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        complain(run.err, "browse needs a terminal")
        raise typer.Exit(2)
    from louter.cli.log_browser import run_browser  # textual loads only when browsing

    run_browser(selected)


def main() -> None:
    app()
