"""`log-parser browse`: a textual TUI over the exchanges of a log.

Left, the list of exchanges (time, model, backend, status, latency, tools); above it a
search box; right, the detail of the selected exchange: client request → backend request
→ backend response → client response, each entry as pretty-printed JSON.

Search: whitespace-separated terms, all of which must match. `key:value` terms test one
field (`status:` a code or a class like `4xx`, `model:`, `backend:`, `format:`,
`endpoint:` and `id:` by substring, `tools:yes`/`tools:no`); any other term is searched,
case-insensitively, in the row's text and the exchange's request body.

textual runs on asyncio; this app never shares a loop with the proxy's trio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import orjson
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Input, Static

from louter.cli.log_views import latency_text, pair_view, short_time
from louter.logs.pairs import Pair


@dataclass(frozen=True, slots=True)
class Row:
    """One exchange as the list shows it, plus what search needs."""

    key: str
    time: str
    model: str
    backend: str
    status: str
    latency: str
    tools: str
    endpoint: str
    format: str
    request_id: str
    haystack: str  # lower-cased text searched by free terms

    def cells(self) -> tuple[str, ...]:
        """The list's columns: time, model, backend, status, latency, tools."""
        return (self.time, self.model, self.backend, self.status, self.latency, self.tools)


def make_row(key: str, exchange: Pair) -> Row:
    first = exchange.first()
    last = exchange.client_response or first
    backend = next((h.get("backend") for h in exchange.hops if h.get("backend")), None)
    called = exchange.called()
    declared = exchange.declared()
    tools = ", ".join(called) if called else (f"{len(declared)} declared" if declared else "")
    status = last.get("status") if exchange.complete else None
    request = exchange.client_request or {}
    row = Row(
        key=key,
        time=short_time(first.get("timestamp")),
        model=str(exchange.model() or "-"),
        backend=str(backend or last.get("backend") or "-"),
        status="-" if status is None else str(status),
        latency=latency_text(last.get("latency_ms")) if exchange.complete else "-",
        tools=tools,
        endpoint=str(first.get("endpoint") or ""),
        format=str(first.get("format") or ""),
        request_id=exchange.request_id,
        haystack="",
    )
    body = orjson.dumps(request.get("payload")).decode() if "payload" in request else ""
    haystack = " ".join([*row.cells(), row.endpoint, row.format, row.request_id, body])
    return replace(row, haystack=haystack.lower())


def _status_term(value: str) -> Callable[[Row], bool]:
    if len(value) == 3 and value[1:].lower() == "xx":
        return lambda row: row.status[:1] == value[0]
    return lambda row: row.status == value


FIELD_TERMS: dict[str, Callable[[str], Callable[[Row], bool]]] = {
    "status": _status_term,
    "model": lambda v: lambda row: v in row.model.lower(),
    "backend": lambda v: lambda row: v in row.backend.lower(),
    "format": lambda v: lambda row: v in row.format.lower(),
    "endpoint": lambda v: lambda row: v in row.endpoint.lower(),
    "id": lambda v: lambda row: v in row.request_id.lower(),
    "tools": lambda v: lambda row: bool(row.tools) == (v in ("yes", "y", "true", "1")),
}


def _text_term(term: str) -> Callable[[Row], bool]:
    return lambda row: term in row.haystack


def compile_search(text: str) -> Callable[[Row], bool]:
    """The predicate of a search box text (see the module docstring)."""
    tests: list[Callable[[Row], bool]] = []
    for term in text.lower().split():
        key, sep, value = term.partition(":")
        factory = FIELD_TERMS.get(key) if sep else None
        if factory is not None:
            tests.append(factory(value))
        else:
            tests.append(_text_term(term))
    return lambda row: all(test(row) for test in tests)


class LogBrowser(App[None]):
    """The browse TUI over already-read exchanges."""

    TITLE = "louter log-parser browse"
    CSS = """
    #search { dock: top; }
    #exchanges { width: 3fr; }
    #detail { width: 4fr; border-left: solid $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_search", "Search"),
        Binding("escape", "show_list", "List"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, exchanges: Sequence[Pair]) -> None:
        super().__init__()
        self.exchanges = {str(i): exchange for i, exchange in enumerate(exchanges)}
        self.rows = [make_row(key, ex) for key, ex in self.exchanges.items()]
        self.shown: list[Row] = []
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search: text, status:4xx, model:…, tools:yes", id="search")
        with Horizontal():
            yield DataTable(id="exchanges", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail"):
                yield Static("Select an exchange (Enter) to see its entries.", id="detail-body")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#exchanges", DataTable)
        table.add_columns("time", "model", "backend", "status", "latency", "tools")
        self.show_rows("")
        table.focus()

    def show_rows(self, search: str) -> None:
        matches = compile_search(search)
        self.shown = [row for row in self.rows if matches(row)]
        table = self.query_one("#exchanges", DataTable)
        table.clear()
        for row in self.shown:
            table.add_row(*row.cells(), key=row.key)
        self.sub_title = f"{len(self.shown)} of {len(self.rows)} exchanges"

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show_rows(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#exchanges", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        assert key is not None  # every row is added with a key
        self.selected = key
        self.query_one("#detail-body", Static).update(pair_view(self.exchanges[key]))
        self.query_one("#detail", VerticalScroll).scroll_home(animate=False)

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_show_list(self) -> None:
        self.query_one("#exchanges", DataTable).focus()


def run_browser(exchanges: Sequence[Pair], **options: Any) -> None:
    """Run the TUI until the user quits (blocking; textual owns its asyncio loop)."""
    LogBrowser(exchanges).run(**options)
