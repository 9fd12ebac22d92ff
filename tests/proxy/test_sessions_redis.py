"""Two louter processes (`python -m louter`, real subprocesses) sharing one real Redis
(`tests/redis_server.py`) see one session and one list of runtime routes: a command
given to one applies to requests the other serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.fakes import FakeUpstream
from tests.paths import REPO
from tests.proxy.test_sessions import answering, config_for
from tests.redis_server import RedisServer, free_port, redis_server  # noqa: F401 - fixture


@asynccontextmanager
async def louter_process(config: Path, tmp_path: Path, name: str) -> AsyncIterator[str]:
    port = free_port()
    stderr = tmp_path / f"{name}.stderr"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("PROXY_BACKEND", None)
    env["PYTHONPATH"] = str(REPO)
    with stderr.open("wb") as err:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "louter", "--config", str(config), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            with trio.fail_after(20):
                while True:
                    assert process.poll() is None, stderr.read_text()
                    try:
                        await http.get("/health")
                        break
                    except httpx.TransportError:
                        await trio.sleep(0.05)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await process.wait()


def chat(text: str, model: str = "gpt-test") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def test_two_processes_share_sessions_and_routes(
    nursery: trio.Nursery,
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    first, second = FakeUpstream(answering("first")), FakeUpstream(answering("second"))
    await nursery.start(first.serve)
    await nursery.start(second.serve)
    config = tmp_path / "louter.toml"
    store = f'[store]\nurl = "{redis_server.url}"\nop_timeout_ms = 500\n'
    config.write_text(config_for(first, second, store))
    sid = {"x-session-id": "shared-1"}
    async with (
        louter_process(config, tmp_path, "a") as a,
        louter_process(config, tmp_path, "b") as b,
        httpx.AsyncClient() as http,
    ):

        async def say(base: str, text: str, model: str = "gpt-test") -> str:
            reply = await http.post(base + "/v1/chat/completions", json=chat(text, model),
                                    headers=sid)  # fmt: skip
            assert reply.status_code == 200, reply.text
            assert reply.headers["x-session-id"] == "shared-1"
            return str(reply.json()["choices"][0]["message"]["content"])

        assert await say(a, "!/backend(second)") == "backend set to second"
        metrics = (await http.get(a + "/metrics")).text
        assert "sessions_evicted_total 0.0" in metrics
        assert "sessions_live" not in metrics  # Redis holds them: no process can count them
        assert await say(b, "hi from b") == "from second ok"
        assert "backend=second" in await say(b, "!/hello")
        assert await say(b, "!/oneoff(first:once)") == "the next request goes to first:once"
        assert await say(a, "one") == "from first ok"  # the one-off, used up by a
        assert await say(b, "two") == "from second ok"
        assert [r.json["model"] for r in first.requests] == ["once"]

        assert await say(a, "!/route-append(routed, first:r1)") == "route for routed: first:r1"
        listed = await say(b, "!/route-list")
        assert listed.endswith("routed -> first:r1")
        assert (await http.get(b + "/health")).json()["routes"] == {"routed": ["first:r1"]}
        await say(a, "!/unset(backend)")
        assert await say(b, "hi", "routed") == "from first ok"
        assert first.requests[-1].json["model"] == "r1"
        assert await say(b, "!/route-clear(routed)") == "route for routed cleared"
        await trio.sleep(1.1)  # a's copy of the routes is re-read within a second
        assert await say(a, "hi", "routed") == "from first ok"
        assert first.requests[-1].json["model"] == "routed"  # no runtime route any more
