"""Readable renderings of log-parser's results: rich renderables, never printed here.

One line per entry, function-use record, exchange or replay report (so output streams,
even with `--follow`), tables for `stats`, and the detail of one exchange as a sequence
of titled, pretty-printed JSON panels (used by `browse` too).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from louter.logs.pairs import Pair
from louter.logs.query import client_model

Json = dict[str, Any]

DIRECTION_STYLE = {
    "client_request": "cyan",
    "backend_request": "blue",
    "backend_response": "green",
    "client_response": "bold green",
    "error": "bold red",
}


def status_style(status: Any) -> str:
    if not isinstance(status, int):
        return "dim"
    return "red" if status >= 500 else "yellow" if status >= 400 else "green"


def short_time(stamp: Any) -> str:
    """`2026-01-01T10:30:45.123Z` -> `10:30:45.123`."""
    return stamp[11:23] if isinstance(stamp, str) and len(stamp) >= 23 else str(stamp or "-")


def latency_text(value: Any) -> str:
    return f"{value:.1f}ms" if isinstance(value, int | float) else "-"


def _cells(*parts: tuple[str, str]) -> Text:
    text = Text()
    for index, (value, style) in enumerate(parts):
        if index:
            text.append(" ")
        text.append(value, style=style)
    return text


def entry_line(entry: Json) -> Text:
    """One log entry: time, request id, direction, format, backend, model, status, latency."""
    direction = str(entry.get("direction") or "-")
    status = entry.get("status")
    line = _cells(
        (short_time(entry.get("timestamp")), "dim"),
        (str(entry.get("request_id") or "-"), ""),
        (f"{direction:<16}", DIRECTION_STYLE.get(direction, "")),
        (f"{entry.get('format') or '-':<9}", ""),
        (str(entry.get("backend") or "-"), "magenta"),
        (str(client_model(entry) or "-"), ""),
        ("" if status is None else str(status), status_style(status)),
        (latency_text(entry.get("latency_ms")), "dim"),
    )
    if entry.get("error"):
        line.append(" " + str(entry["error"]), style="red")
    return line


def call_text(call: Json) -> str:
    function = call.get("function") or {}
    return f"{function.get('name')}({call.get('arguments_text', '')})"


def function_line(record: Json) -> Text:
    """One `functions` record: the entry, then tools declared, calls and results."""
    line = entry_line(record)
    if record.get("tools"):
        line.append(f"\n  declares: {', '.join(record['tools'])}", style="cyan")
    for call in record.get("tool_calls") or ():
        invalid = "" if call.get("valid_json") else "  (arguments are not valid JSON)"
        line.append(f"\n  call {call.get('id') or '-'}: {call_text(call)}{invalid}", "yellow")
    for result in record.get("tool_results") or ():
        content = orjson.dumps(result.get("content")).decode()
        content = content if len(content) <= 120 else content[:117] + "..."
        line.append(f"\n  result {result.get('id') or result.get('name') or '-'}: {content}")
    return line


def pair_line(summary: Json) -> Text:
    """One exchange (the dict of `louter.logs.pairs.to_dict`)."""
    status = summary.get("status")
    hops = len(summary.get("hops") or ())
    line = _cells(
        (short_time(summary.get("timestamp")), "dim"),
        (str(summary.get("request_id")), ""),
        (str(summary.get("endpoint") or "-"), "cyan"),
        (str(summary.get("model") or "-"), ""),
        ("→ " + str(summary.get("backend") or "-"), "magenta"),
        ("-" if status is None else str(status), status_style(status)),
        (latency_text(summary.get("latency_ms")), "dim"),
        (f"{hops} hop{'s' if hops != 1 else ''}", "dim"),
    )
    if summary.get("stream"):
        line.append(" stream", style="blue")
    if summary.get("tool_calls"):
        line.append(" calls: " + ", ".join(summary["tool_calls"]), style="yellow")
    if not summary.get("complete"):
        line.append(" (incomplete)", style="red")
    return line


def replay_line(report: Json) -> Text:
    status = report.get("status")
    line = _cells(
        (str(report.get("request_id")), ""),
        (f"{report.get('method') or '-'} {report.get('url') or ''}", "cyan"),
        ("-" if status is None else str(status), status_style(status)),
        (latency_text(report.get("latency_ms")), "dim"),
    )
    if report.get("error"):
        line.append(" " + str(report["error"]), style="red")
    if report.get("skipped"):
        line.append(" skipped: " + str(report["skipped"]), style="yellow")
    return line


def _counts(title: str, counts: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("name")
    table.add_column("count", justify="right")
    for name, count in counts.items():
        table.add_row(name, str(count))
    return table


def _distributions(stats: Json) -> Table:
    table = Table(title="timings (ms)", title_justify="left")
    columns = ("count", "min", "p50", "p90", "p99", "max", "mean")
    table.add_column("")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_column("method")
    for name in ("latency", "ttft"):
        row = stats[name]
        cells = ("-" if row.get(k) is None else str(row[k]) for k in columns)
        table.add_row(name, *cells, str(row.get("method") or ""))
    return table


def _tokens(stats: Json) -> Table:
    table = Table(title="tokens", title_justify="left")
    for column in ("by", "name", "in", "out"):
        table.add_column(column, justify="right" if column in ("in", "out") else "left")
    tokens = stats["tokens"]
    for by in ("backend", "model"):
        for name, sums in tokens[f"by_{by}"].items():
            table.add_row(by, name, str(sums["in"]), str(sums["out"]))
    table.add_row("total", "", str(tokens["total"]["in"]), str(tokens["total"]["out"]))
    return table


def stats_view(stats: Json) -> Group:
    """The `stats` summary as tables."""
    errors = stats["errors"]
    parts: list[RenderableType] = [
        Text(f"{stats['entries']} entries, {stats['responses']} client responses"),
        _counts("by direction", stats["by_direction"]),
    ]
    for key in ("format", "backend", "model", "status"):
        parts.append(_counts(f"responses by {key}", stats[f"by_{key}"]))
    parts += [
        _counts("streaming", stats["streaming"]),
        _distributions(stats),
        _tokens(stats),
        _counts(
            f"errors ({errors['total']} entries, {errors['failed_responses']} failed responses)",
            errors["by_type"],
        ),
        _counts(f"tool calls ({stats['tool_calls']['total']})", stats["tool_calls"]["by_name"]),
        *_loops(stats),
        Text(f"percentiles: {stats['percentiles']}", style="dim"),
    ]
    return Group(*parts)


def _loops(stats: Json) -> list[RenderableType]:
    """The loop guards' detections, when there were any."""
    loops = stats.get("loops") or {}
    if not loops.get("total"):
        return []
    counts = {f"kind {k}": v for k, v in loops["by_kind"].items()}
    counts.update({f"action {k}": v for k, v in loops["by_action"].items()})
    return [_counts(f"loops detected ({loops['total']})", counts)]


def json_block(value: Any) -> Syntax:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    return Syntax(text, "json", word_wrap=True, background_color="default")


def pair_panels(exchange: Pair) -> Iterator[Panel]:
    """request → backend request → backend response → (errors) → client response."""
    for entry in exchange.entries():
        direction = str(entry.get("direction") or "-")
        title = Text.assemble(
            (direction, DIRECTION_STYLE.get(direction, "")),
            f"  {entry.get('format') or '-'}  {entry.get('backend') or ''}",
            f"  {entry.get('status') or ''}  {latency_text(entry.get('latency_ms'))}",
        )
        body = {k: v for k, v in entry.items() if k != "payload"}
        parts: list[RenderableType] = [json_block(body)]
        if "payload" in entry:
            parts += [Text("payload", style="bold"), json_block(entry["payload"])]
        yield Panel(Group(*parts), title=title, title_align="left")
    if not exchange.complete:
        yield Panel(Text("no client_response in the log", style="red"), title="incomplete")


def pair_view(exchange: Pair) -> Group:
    return Group(*pair_panels(exchange))
