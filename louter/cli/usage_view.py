"""Rendering of usage totals (`log-parser usage`, the same shape as `/v2/usage/stats`)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table

from louter.logs.usage import DIMENSIONS

COLUMNS = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd", "unpriced_requests")


def _cost(value: Any) -> str:
    return "unknown" if value is None else f"${value:.6f}"


def _row(counts: dict[str, Any]) -> list[str]:
    return [_cost(counts[name]) if name == "cost_usd" else str(counts[name]) for name in COLUMNS]


def usage_view(usage: dict[str, Any]) -> RenderableType:
    """The totals, then one table per breakdown."""
    totals = Table(title="usage", title_justify="left")
    for name in COLUMNS:
        totals.add_column(name, justify="right")
    totals.add_row(*_row(usage["totals"]))
    parts: list[RenderableType] = [totals]
    for dimension in DIMENSIONS:
        rows = usage.get(f"by_{dimension}")
        if rows is None:
            continue
        table = Table(title=f"by {dimension}", title_justify="left")
        table.add_column(dimension)
        for name in COLUMNS:
            table.add_column(name, justify="right")
        for row in rows:
            table.add_row(str(row[dimension]), *_row(row))
        parts.append(table)
    return Group(*parts)
