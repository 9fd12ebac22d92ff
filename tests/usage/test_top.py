"""`louter top` against a running louter (served by trio in a thread; the dashboard is
textual on asyncio, driven by its pilot): it shows the backend's numbers, the budgets and
the newest exchanges, sorts and filters, and says clearly when the louter is gone. The
README's screenshot (tutorials/louter-top.svg) is this screen, exported when
LOUTER_REGEN_SCREENSHOT=1."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio
from textual.widgets import DataTable, Static

from louter.catalog import Price
from louter.cli.top import Top
from louter.config import parse_config
from louter.proxy.app import build_context, serve
from tests.redis_server import free_port

ADMIN = "lk-top-admin-0004"
SCREENSHOT = Path(__file__).resolve().parents[2] / "tutorials" / "louter-top.svg"


@pytest.fixture
def louter(tmp_path: Path) -> Iterator[str]:
    """A louter with the mock backend, usage on, an admin key with a budget."""
    digest = hashlib.sha256(ADMIN.encode()).hexdigest()
    toml = (
        '[backends.local]\nprotocol = "mock"\n'
        f'[usage]\ndb = "{tmp_path / "u.db"}"\nflush_seconds = 0.05\n'
        f'[keys.ops]\nkey_sha256 = "{digest}"\nadmin = true\nbudget_usd = 1.0\n'
    )
    config = parse_config(toml, path="test.toml", env={})
    ctx = build_context(config, default_backend="local", pricing=lambda m, b: Price(1.0, 2.0))
    port = free_port()
    stop = trio.Event()
    token: list[trio.lowlevel.TrioToken] = []

    async def main() -> None:
        token.append(trio.lowlevel.current_trio_token())
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, ctx, "127.0.0.1", port)
            await stop.wait()
            nursery.cancel_scope.cancel()

    thread = threading.Thread(target=trio.run, args=(main,))
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/health", timeout=1)
            break
        except httpx.HTTPError:
            threading.Event().wait(0.02)
    try:
        yield base
    finally:
        token[0].run_sync_soon(stop.set)
        thread.join()


def _traffic(base: str) -> None:
    headers = {"authorization": f"Bearer {ADMIN}"}
    body = {"model": "qwen-test", "messages": [{"role": "user", "content": "hello there"}]}
    for _ in range(3):
        assert httpx.post(base + "/v1/chat/completions", json=body, headers=headers).is_success


def _cells(app: Top, table: str) -> list[list[str]]:
    found = app.query_one(f"#{table}", DataTable)
    return [[str(c) for c in found.get_row_at(i)] for i in range(found.row_count)]


def test_top_shows_the_numbers_of_a_running_louter(louter: str) -> None:
    _traffic(louter)

    async def drive() -> None:
        app = Top(louter, key=ADMIN, interval=0.2)
        async with app.run_test(size=(140, 40)) as pilot:
            _traffic(louter)
            for _ in range(100):  # the next refreshes (every 0.2 s) show it; a busy CI is slow
                await pilot.pause(0.1)
                rows = {row[0]: row for row in _cells(app, "backends")}
                if rows.get("local", [""] * 7)[6] == "6" and len(_cells(app, "exchanges")) == 6:
                    break
            backend = rows["local"]  # the presets are listed too, idle
            assert backend[6] == "6" and backend[7] == "0"
            assert backend[8] == "up"
            (budget,) = _cells(app, "budgets")
            assert budget[0] == "ops" and budget[1] == "1.0"
            exchanges = _cells(app, "exchanges")
            assert len(exchanges) == 6
            assert all(row[1] == "ops" and row[2] == "qwen-test" for row in exchanges)
            assert "in flight" in str(app.query_one("#status", Static).render())
            await pilot.press("s")  # sort by the next column
            assert app.sort_by == 1
            await pilot.press("slash")
            await pilot.press(*"nomatch", "enter")
            assert _cells(app, "exchanges") == []
            await pilot.press("slash", *"ops", "enter")
            assert len(_cells(app, "exchanges")) == 6
            svg = app.export_screenshot()
            assert "qwen-test" in svg and "local" in svg
            if os.environ.get("LOUTER_REGEN_SCREENSHOT"):  # the README's picture
                SCREENSHOT.write_text(svg, encoding="utf-8")

    asyncio.run(drive())


def test_top_says_when_louter_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    async def drive() -> None:
        app = Top(url, interval=0.2)
        async with app.run_test() as pilot:
            for _ in range(100):  # the first refresh, however loaded the machine (<= 10 s)
                if "cannot reach" in app.status:
                    break
                await pilot.pause(0.1)
            assert f"cannot reach {url}" in app.status

    asyncio.run(drive())
