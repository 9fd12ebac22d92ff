"""What a serving louter process loads: only what its configuration uses.

A real `louter` process (the console script's `main`, arguments as the bench gives them)
in front of a fake OpenAI upstream on 127.0.0.1, one plain-http backend, bodies logged,
answers a chat request and a stream, stops on SIGTERM and writes the names of its
modules to a file on the way out. Libraries the configuration does not use must not be
among them: they are resident memory (issue 24: peak RSS <= 40 MiB) for nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import trio

from tests.cli.test_cli import REPO, clean_env, free_port
from tests.fakes import FakeUpstream, JSONReply, chat_completion
from tests.hardening import wait_health_async

# module -> why a plain-http OpenAI-compatible setup must not load it
LAZY = {
    "typer": "the CLI framework: only for --help, --version, argument errors, keys, top",
    "pydantic": "typer's coercion of arguments",
    "httpx": "only for a TLS upstream",
    "textual": "only for `louter top`",
    "louter.cli.commands": "the typer commands",
    "louter.proxy.store.resp": "only with [store]",
    "sqlite3": "the usage file: only with [usage]",
    "rich": "the start-up table and colours: only when stderr is a terminal",
    "louter.cli.workers": "the worker group: only with --workers (or in a worker)",
    "louter.group.supervisor": "the worker group's supervisor: only with --workers",
    "louter.logs.reader": "reading logs: log-parser and louter top, not the server",
}

BOOT = (
    "import atexit, sys\n"
    "out = sys.argv[1]\n"
    "atexit.register(lambda: open(out, 'w').write('\\n'.join(sorted(sys.modules))))\n"
    "del sys.argv[1]\n"
    "from louter.cli.louter import main\n"
    "main()\n"
)

# Counts the cyclic collector's passes per generation from the moment louter freezes its
# start-up heap (just before it serves) to its exit.
COLLECTOR = (
    "import atexit, gc, json, sys\n"
    "out = sys.argv[1]\n"
    "del sys.argv[1]\n"
    "freeze, start = gc.freeze, []\n"
    "def counted():\n"
    "    freeze()\n"
    "    start[:] = [g['collections'] for g in gc.get_stats()]\n"
    "gc.freeze = counted\n"
    "def report():\n"
    "    now = [g['collections'] for g in gc.get_stats()]\n"
    "    open(out, 'w').write(json.dumps([b - a for a, b in zip(start, now)]))\n"
    "atexit.register(report)\n"
    "from louter.cli.louter import main\n"
    "main()\n"
)

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def serving(
    tmp_path: Path,
    upstream: FakeUpstream,
    boot: str,
    drive: Callable[[httpx.AsyncClient], Awaitable[None]],
) -> str:
    """Run louter (started by `boot`, which writes to the file named by its first
    argument on the way out) before `upstream`, let `drive` send requests, stop it with
    SIGTERM: what `boot` wrote."""
    config = tmp_path / "louter.toml"
    config.write_text(
        f'[backends.bench]\nurl = "{upstream.url}"\nprotocol = "openai"\napi_key = "sk-up"\n'
    )
    port, out, stderr = free_port(), tmp_path / "out.txt", tmp_path / "stderr.txt"
    argv = [sys.executable, "-c", boot, str(out), "--config", str(config), "--port", str(port)]
    argv += ["--log-file", str(tmp_path / "louter.jsonl"), "--host", "127.0.0.1"]
    with stderr.open("wb") as err:
        process = await trio.lowlevel.open_process(
            argv, stdout=subprocess.DEVNULL, stderr=err, env=clean_env(PYTHONPATH=str(REPO))
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await wait_health_async(http, process, stderr=stderr, timeout=20)
            await drive(http)
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await process.wait()
    assert process.returncode == 0, stderr.read_text()
    return out.read_text()


async def serving_modules(tmp_path: Path, upstream: FakeUpstream) -> set[str]:
    async def chat_and_stream(http: httpx.AsyncClient) -> None:
        for stream in (False, True):
            answer = await http.post("/v1/chat/completions", json={**CHAT, "stream": stream})
            assert answer.status_code == 200, answer.text

    return set((await serving(tmp_path, upstream, BOOT, chat_and_stream)).split())


async def test_a_plain_http_setup_loads_no_unused_library(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    upstream = FakeUpstream(JSONReply(chat_completion("hi from upstream")))
    await nursery.start(upstream.serve)
    modules = await serving_modules(tmp_path, upstream)
    assert "louter.proxy.app" in modules  # it did serve (the check below can fail)
    loaded = {name: why for name, why in LAZY.items() if name in modules}
    assert not loaded, f"loaded though unused: {loaded}"


@pytest.mark.parametrize("argv", [["--version"], ["--port", "x"]])
def test_typer_still_answers_what_the_fast_reader_leaves(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "louter", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(PYTHONPATH=str(REPO)),
        check=False,
    )
    if argv == ["--version"]:
        assert done.returncode == 0 and done.stdout.startswith("louter "), done.stderr
    else:
        assert done.returncode == 2 and "--port" in done.stderr, done.stderr


async def test_requests_in_flight_do_not_run_the_cyclic_collector(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """1,000 chat requests, 64 at a time: their live objects going up and down must not
    set off collector passes (each walks every request in flight). At CPython's default
    threshold this load ran 4 of them here (the test client is the bottleneck: under
    wrk, 535 in 10,000 requests); with louter's, 0 (one is allowed)."""
    upstream = FakeUpstream(JSONReply(chat_completion("hi from upstream")))
    await nursery.start(upstream.serve)
    statuses: list[int] = []

    async def load(http: httpx.AsyncClient) -> None:
        async def client(count: int) -> None:
            for _ in range(count):
                answer = await http.post("/v1/chat/completions", json=CHAT)
                statuses.append(answer.status_code)

        async with trio.open_nursery() as clients:
            for index in range(64):
                clients.start_soon(client, 1000 // 64 + (index < 1000 % 64))

    passes = json.loads(await serving(tmp_path, upstream, COLLECTOR, load))
    assert len(statuses) == 1000 and set(statuses) == {200}, set(statuses)
    assert passes[0] <= 1, f"collector passes while serving, by generation: {passes}"
