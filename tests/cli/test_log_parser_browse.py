"""`log-parser browse`: the textual TUI driven by its pilot, over a real louter log.

textual runs on asyncio and the suite runs pytest-trio (trio_mode), so each test is a
plain sync function that drives the pilot with `asyncio.run(...)`.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from louter.cli.log_browser import LogBrowser, compile_search, make_row, run_browser
from louter.cli.log_views import pair_view
from louter.logs.pairs import pair_entries
from tests.logs.test_log_parser_support import (
    CONCURRENT,
    ODD_ENTRIES,
    SEQUENTIAL,
    dialect_entries,
    make_real_log,
    read_jsonl,
)


@pytest.fixture
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log of a real louter run (tests/logs/test_log_parser_support.py)."""
    return make_real_log(tmp_path_factory)


def text_of(widget: Static) -> str:
    console = Console(file=io.StringIO(), width=150, color_system=None)
    console.print(widget.content)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_browse_open_filter_and_detail(real_log: Path) -> None:
    exchanges = list(pair_entries([*read_jsonl(real_log), *dialect_entries()]))
    total = SEQUENTIAL + CONCURRENT + 4

    async def scenario() -> None:
        app = LogBrowser(exchanges)
        async with app.run_test(size=(160, 48)) as pilot:
            table = app.query_one("#exchanges", DataTable)
            assert table.row_count == total
            assert app.sub_title == f"{total} of {total} exchanges"

            await pilot.press("slash")  # to the search box
            assert isinstance(app.focused, Input)
            await pilot.press(*"status:4xx")
            await pilot.pause()
            assert table.row_count == 3
            assert {row.status for row in app.shown} == {"400", "404"}

            await pilot.press("enter")  # back to the list
            assert app.focused is table
            await pilot.press("enter")  # open the first match: the bad JSON body
            await pilot.pause()
            detail = text_of(app.query_one("#detail-body", Static))
            assert app.selected == app.shown[0].key
            assert app.exchanges[app.selected].request_id in detail
            order = [detail.index(d) for d in ("client_request", "error", "client_response")]
            assert order == sorted(order)
            assert "request body is not valid JSON" in detail

            await pilot.press("down", "enter")  # the unknown path: no client_request logged
            await pilot.pause()
            detail = text_of(app.query_one("#detail-body", Static))
            assert app.selected == app.shown[1].key
            assert "unknown path /v1/nowhere" in detail and "client_request" not in detail

            await pilot.press("slash", "end", "ctrl+u", *"get_weather tools:yes")
            await pilot.pause()
            assert table.row_count >= 2
            assert all("get_weather" in row.haystack for row in app.shown)
            await pilot.press("escape", "enter")
            await pilot.pause()
            detail = text_of(app.query_one("#detail-body", Static))
            for direction in (
                "client_request",
                "backend_request",
                "backend_response",
                "client_response",
                '"tool_calls"',
            ):
                assert direction in detail, direction
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(scenario())


def test_search_terms() -> None:
    rows = [make_row(str(i), x) for i, x in enumerate(pair_entries(dialect_entries()))]

    def keys(text: str) -> list[str]:
        matches = compile_search(text)
        return [row.request_id for row in rows if matches(row)]

    assert keys("") == ["gem-1", "ant-1", "rsp-1", "rsp-2"]
    assert keys("format:responses model:gpt") == ["rsp-1", "rsp-2"]
    assert keys("endpoint:messages") == ["ant-1"]
    assert keys("README") == ["ant-1", "rsp-1", "rsp-2"]  # the request bodies are searched
    assert keys("status:2xx id:gem") == ["gem-1"]
    assert keys("status:200 backend:qwen tools:no") == []
    assert rows[0].tools == "get_time" and rows[0].status == "200"


def test_rows_of_every_front_door(real_log: Path) -> None:
    """The rows of the real log's Gemini and Anthropic exchanges: the client's model
    (Gemini's from the path), the backend, the function called."""
    exchanges = pair_entries(read_jsonl(real_log))
    rows = [make_row(str(i), x) for i, x in enumerate(exchanges)]
    doors = sorted((r.format, r.model, r.backend, r.tools) for r in rows if r.format != "openai")
    assert doors == [
        ("anthropic", "model-a", "alpha", "get_time"),
        ("anthropic", "model-a", "alpha", "get_time"),
        ("gemini", "model-a", "alpha", "get_weather"),
        ("gemini", "model-b", "beta", "get_weather"),
    ]
    matches = compile_search("format:gemini model:model-b tools:yes")
    assert [r.endpoint for r in rows if matches(r)] == [
        "/v1beta/models/model-b:streamGenerateContent"
    ]


def test_rows_of_odd_entries() -> None:
    exchanges = list(pair_entries(ODD_ENTRIES))
    rows = [make_row(str(i), x) for i, x in enumerate(exchanges)]
    assert len(rows) == len(exchanges) and compile_search("status:5xx tools:no")
    for exchange in exchanges:
        Console(file=io.StringIO(), width=100).print(pair_view(exchange))


def test_run_browser_blocks_until_quit() -> None:
    pressed: list[str] = []

    async def quit_at_once(pilot: Pilot[None]) -> None:
        pressed.append("q")
        await pilot.press("q")

    run_browser(list(pair_entries(dialect_entries())), headless=True, auto_pilot=quit_at_once)
    assert pressed == ["q"]
