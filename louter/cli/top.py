"""`louter top URL`: a live dashboard of a running louter (textual; asyncio, never the
proxy's trio loop). Every second it reads `/metrics` (per backend: requests/s, p50/p99
latency, TTFT, output tokens/s, errors, breaker state, streams in flight; rate-limited
requests; budget use per key) and `/v2/audit/logs` (the newest exchanges; needs an admin
key when auth is on: `--key` or LOUTER_KEY). Keys: s sorts the backends by the next
column, / filters the exchanges (key, model, backend or status), p pauses, q quits.
When the louter cannot be reached the status line says so and the tables keep their
last numbers.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, ClassVar

import httpx
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Input, Static

from louter.cli.top_data import Reading, backend_rows, budget_rows, exchange_rows, parse_metrics

BACKEND_COLUMNS = ("backend", "rps", "p50_ms", "p99_ms", "ttft_ms", "tokens_s", "requests",
                   "errors", "state", "streams")  # fmt: skip
EXCHANGE_COLUMNS = ("time", "key", "model", "backend", "status", "latency_ms", "input_tokens",
                    "output_tokens", "cost_usd")  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 1 or value == 0 else f"{value:.4g}"
    return str(value)


class Top(App[None]):
    TITLE = "louter top"
    CSS = """
    DataTable { height: auto; max-height: 40%; }
    #status { height: 1; }
    Input { dock: bottom; }
    """
    BINDINGS: ClassVar = [
        Binding("q", "quit", "quit"),
        Binding("s", "sort", "sort backends"),
        Binding("slash", "filter", "filter exchanges"),
        Binding("p", "pause", "pause"),
    ]

    def __init__(self, url: str, *, key: str | None = None, interval: float = 1.0) -> None:
        super().__init__()
        self.url = url.rstrip("/")
        self.key = key
        self.interval = interval
        self.sort_by = 0
        self.text = ""
        self.paused = False
        self.before: Reading | None = None
        self.status = "connecting..."
        self.rows: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Static(self.status, id="status")
        yield DataTable(id="backends", cursor_type="none")
        yield Static("", id="limits")
        yield DataTable(id="budgets", cursor_type="none")
        yield DataTable(id="exchanges", cursor_type="none")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#backends", DataTable).add_columns(*BACKEND_COLUMNS)
        self.query_one("#budgets", DataTable).add_columns("key", "budget_usd", "spent_usd", "used")
        self.query_one("#exchanges", DataTable).add_columns(*EXCHANGE_COLUMNS)
        self.client = httpx.AsyncClient(timeout=2.0)
        await self.refresh_data()
        self.set_interval(self.interval, self.refresh_data)

    async def on_unmount(self) -> None:
        await self.client.aclose()

    async def refresh_data(self) -> None:
        if self.paused:
            return
        headers = {"authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            metrics = await self.client.get(self.url + "/metrics")
            audit = await self.client.get(self.url + "/v2/audit/logs?limit=50", headers=headers)
        except httpx.HTTPError as exc:
            self._status(f"[b red]cannot reach {self.url}[/]: {exc or type(exc).__name__}")
            return
        with contextlib.suppress(NoMatches):  # the app quit while the readings were on their way
            self._show(metrics, audit)

    def _show(self, metrics: httpx.Response, audit: httpx.Response) -> None:
        if metrics.status_code != 200:
            self._status(f"[b red]{self.url}/metrics answered {metrics.status_code}[/]")
            return
        now = parse_metrics(metrics.text, time.monotonic())
        self.rows = backend_rows(now, self.before)
        self.before = now
        note = ""
        if audit.status_code == 200:
            self.records = audit.json().get("data", [])
        else:
            note = f" (exchanges: /v2/audit/logs answered {audit.status_code})"
        self._status(f"[b green]{self.url}[/] {now.in_flight:.0f} in flight{note}")
        self.query_one("#limits", Static).update(f"rate-limited requests: {now.rate_limited:.0f}")
        self._fill(now)

    def _status(self, text: str) -> None:
        self.status = text
        with contextlib.suppress(NoMatches):  # gone when the app quit mid-refresh
            self.query_one("#status", Static).update(text)

    def _fill(self, reading: Reading | None = None) -> None:
        table = self.query_one("#backends", DataTable)
        table.clear()
        column = BACKEND_COLUMNS[self.sort_by]
        rows = sorted(self.rows, key=lambda r: (r[column] is None, r[column]),
                      reverse=self.sort_by != 0)  # fmt: skip
        for row in rows:
            table.add_row(*(_cell(row[c]) for c in BACKEND_COLUMNS))
        if reading is not None:
            budgets = self.query_one("#budgets", DataTable)
            budgets.clear()
            for row in budget_rows(reading):
                used = "-" if row["used"] is None else f"{row['used']:.0%}"
                budgets.add_row(row["key"], _cell(row["budget_usd"]), _cell(row["spent_usd"]), used)
        exchanges = self.query_one("#exchanges", DataTable)
        exchanges.clear()
        for record in exchange_rows(self.records, self.text):
            exchanges.add_row(*(_cell(record.get(c)) for c in EXCHANGE_COLUMNS))

    def action_sort(self) -> None:
        self.sort_by = (self.sort_by + 1) % len(BACKEND_COLUMNS)
        self.notify(f"backends sorted by {BACKEND_COLUMNS[self.sort_by]}")
        self._fill()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.notify("paused" if self.paused else "live")

    def action_filter(self) -> None:
        self.mount(Input(placeholder="filter exchanges (key, model, backend, status)", id="filter"))
        self.query_one("#filter", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.text = event.value.strip()
        event.input.remove()
        self._fill()


def run_top(url: str, key: str | None) -> None:
    Top(url, key=key).run()
