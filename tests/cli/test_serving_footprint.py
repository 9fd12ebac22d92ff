"""What a serving louter process loads: only what its configuration uses.

A real `louter` process (the console script's `main`, arguments as the bench gives them)
in front of a fake OpenAI upstream on 127.0.0.1, one plain-http backend, bodies logged,
answers a chat request and a stream, stops on SIGTERM and writes the names of its
modules to a file on the way out. Libraries the configuration does not use must not be
among them: they are resident memory (issue 24: peak RSS <= 40 MiB) for nothing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
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
}

BOOT = (
    "import atexit, sys\n"
    "out = sys.argv[1]\n"
    "atexit.register(lambda: open(out, 'w').write('\\n'.join(sorted(sys.modules))))\n"
    "del sys.argv[1]\n"
    "from louter.cli.louter import main\n"
    "main()\n"
)


async def serving_modules(tmp_path: Path, upstream: FakeUpstream) -> set[str]:
    config = tmp_path / "louter.toml"
    config.write_text(
        f'[backends.bench]\nurl = "{upstream.url}"\nprotocol = "openai"\napi_key = "sk-up"\n'
    )
    port, out, stderr = free_port(), tmp_path / "modules.txt", tmp_path / "stderr.txt"
    argv = [sys.executable, "-c", BOOT, str(out), "--config", str(config), "--port", str(port)]
    argv += ["--log-file", str(tmp_path / "louter.jsonl"), "--host", "127.0.0.1"]
    with stderr.open("wb") as err:
        process = await trio.lowlevel.open_process(
            argv, stdout=subprocess.DEVNULL, stderr=err, env=clean_env(PYTHONPATH=str(REPO))
        )
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await wait_health_async(http, process, stderr=stderr, timeout=20)
            for stream in (False, True):
                answer = await http.post("/v1/chat/completions", json={**body, "stream": stream})
                assert answer.status_code == 200, answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await process.wait()
    assert process.returncode == 0, stderr.read_text()
    return set(out.read_text().split())


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
