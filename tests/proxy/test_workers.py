"""`louter --workers N` (issue 23): a supervisor and N worker processes sharing one port.

Each test runs the real `louter` as a subprocess (tests/hardening.py) on loopback. A
request id starts with its worker's random per-process prefix, so the tests see which
worker answered. Clients are bounded: a few tasks, each one request at a time.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.fakes import FakeUpstream, SSEReply, chat_chunk, sse_events
from tests.hardening import Louter, log_entries

MOCK = '[backends.{name}]\nprotocol = "mock"\n'
DIRECTIONS = ["client_request", "backend_request", "backend_response", "client_response"]


def _body(content: str = "hi", stream: bool = False) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], "stream": stream}


async def _stderr_has(louter: Louter, pattern: str, timeout: float = 20) -> re.Match[str]:
    with trio.fail_after(timeout):
        while (found := re.search(pattern, louter.stderr)) is None:
            if louter.proc.poll() is not None:
                raise AssertionError(f"louter exited: {louter.stderr}")
            await trio.sleep(0.02)
    return found


async def _pids(louter: Louter) -> list[int]:
    found = await _stderr_has(louter, r"pids ([\d, ]+);")
    return [int(pid) for pid in found.group(1).split(", ")]


def _chats(log: Path) -> dict[str, list[str]]:
    """request_id -> its entries' directions, for the chat requests (not /health)."""
    found: dict[str, list[str]] = {}
    for entry in log_entries(log):
        if entry["endpoint"] == "/v1/chat/completions":
            found.setdefault(entry["request_id"], []).append(entry["direction"])
    return found


def _worker_of(request_id: str) -> str:
    return request_id.split("-")[0]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics:\n{text}")


async def _fresh_connection_chat(base: str, content: str = "hi") -> httpx.Response:
    """One request on a connection of its own (so they spread over the workers)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        return await client.post("/v1/chat/completions", json=_body(content))


async def test_metrics_and_health_answer_for_every_worker(tmp_path: Path) -> None:
    with Louter(tmp_path, "--workers", "2", config=MOCK.format(name="mock")) as louter:
        await _pids(louter)
        served: set[str] = set()
        for round_ in range(60):
            response = await _fresh_connection_chat(louter.base, f"hello {round_}")
            assert response.status_code == 200, response.text
            served.add(_worker_of(response.headers["x-louter-request-id"]))
        assert len(served) == 2, "the kernel gave every connection to one worker"
        async with httpx.AsyncClient(base_url=louter.base) as client:
            text = (await client.get("/metrics")).text
            health = (await client.get("/health")).json()
        chats = 'http_request_duration_seconds_count{endpoint="/v1/chat/completions",'
        assert _metric(text, chats + 'method="POST",status="200"}') == 60
        assert _metric(text, "louter_workers") == 2
        assert _metric(text, 'backend_up{backend="mock"}') == 1
        assert health["status"] == "ok"
        assert health["workers"] == 2
        assert health["backends"]["mock"]["state"] == "healthy"


async def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    with Louter(tmp_path, "--workers", "2", config=MOCK.format(name="mock")) as louter:
        first, second = await _pids(louter)
        os.kill(first, signal.SIGKILL)
        found = await _stderr_has(louter, r"worker \d \(pid (\d+)\) was killed by SIGKILL; restart")
        assert int(found.group(1)) == first
        restarted = await _stderr_has(louter, r"worker \d restarted \(pid (\d+)\)")
        assert int(restarted.group(1)) not in (first, second)
        for _ in range(10):  # the survivor serves while the slot refills, and after
            assert (await _fresh_connection_chat(louter.base)).status_code == 200
        async with httpx.AsyncClient(base_url=louter.base) as client:
            assert _metric((await client.get("/metrics")).text, "louter_workers") == 2


def _held_stream(release: trio.Event) -> SSEReply:
    pieces = [sse_events(chat_chunk(p), done=False) for p in ("one ", "two ", "three")]
    pieces.append(sse_events(chat_chunk(finish="stop")))
    return SSEReply(pieces, pause=0.01, hold_after=1, release=release)


async def _stream(base: str, into: list[bytes], first: trio.Semaphore) -> None:
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=_body(stream=True)) as response,
    ):
        assert response.status_code == 200
        body = b""
        async for data in response.aiter_raw():
            if not body:
                first.release()
            body += data
        into.append(body)


async def test_sigterm_lets_20_open_streams_finish(tmp_path: Path, nursery: trio.Nursery) -> None:
    release = trio.Event()
    fake = FakeUpstream(default=lambda request: _held_stream(release))
    await nursery.start(fake.serve)
    config = f'[backends.up]\nprotocol = "openai"\nurl = "{fake.url}"\napi_key = "k"\n'
    log = tmp_path / "louter.jsonl"
    with Louter(tmp_path, "--workers", "2", "--log-file", str(log), config=config) as louter:
        await _pids(louter)
        bodies: list[bytes] = []
        started = trio.Semaphore(0)
        async with trio.open_nursery() as clients:
            for _ in range(20):
                clients.start_soon(_stream, louter.base, bodies, started)
            with trio.fail_after(20):
                for _ in range(20):
                    await started.acquire()
            louter.proc.send_signal(signal.SIGTERM)
            await _stderr_has(louter, "SIGTERM, stopping 2 workers")
            await trio.sleep(0.3)
            assert louter.proc.poll() is None  # still draining
            release.set()
        status = await trio.to_thread.run_sync(lambda: louter.proc.wait(timeout=20))
    assert status == 0
    assert len(bodies) == 20
    assert all(b"three" in body and body.endswith(b"data: [DONE]\n\n") for body in bodies)
    logged = _chats(log)
    assert len(logged) == 20
    assert all(directions == DIRECTIONS for directions in logged.values())


class Load:
    """A few clients, each sending one request at a time on a keep-alive connection,
    counting answers and failures, until stopped."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.ok = 0
        self.failures: list[str] = []
        self.stop = trio.Event()
        self.servers: set[str] = set()

    async def client(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    response = await client.post("/v1/chat/completions", json=_body())
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text}")
                    continue
                self.ok += 1
                self.servers.add(response.headers["x-louter-request-id"].split("-")[0])

    async def until(self, count: int) -> None:
        target = self.ok + count
        with trio.fail_after(20):
            while self.ok < target:
                await trio.sleep(0.01)


async def test_sighup_reloads_without_a_failed_request(tmp_path: Path) -> None:
    with Louter(tmp_path, "--workers", "2", config=MOCK.format(name="one")) as louter:
        config = tmp_path / "config.toml"
        old = set(await _pids(louter))
        load = Load(louter.base)
        async with trio.open_nursery() as clients:
            for _ in range(4):
                clients.start_soon(load.client)
            await load.until(50)
            config.write_text(MOCK.format(name="two") + "[server]\nworkers_typo = 3\n")
            louter.proc.send_signal(signal.SIGHUP)
            refused = await _stderr_has(louter, r"reload refused[^\n]*")
            assert "workers_typo" in refused.group(0)
            await load.until(50)  # the old generation serves on
            config.write_text(MOCK.format(name="two"))
            louter.proc.send_signal(signal.SIGHUP)
            reloaded = await _stderr_has(louter, r"generation 2 serves \(pids ([\d, ]+)\)")
            fresh = {int(pid) for pid in reloaded.group(1).split(", ")}
            assert not fresh & old
            with trio.fail_after(20):  # the old generation drains and exits
                while any(_alive(pid) for pid in old):
                    await load.until(1)
            await load.until(50)
            load.stop.set()
        assert load.failures == []
        async with httpx.AsyncClient(base_url=louter.base) as client:
            health = (await client.get("/health")).json()
        assert "two" in health["backends"]
        assert "one" not in health["backends"]
        assert len(load.servers) >= 2  # old workers, then new ones


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:  # gone (FileNotFoundError), or reaped between open and read (ESRCH)
        return False


async def test_log_lines_are_whole_with_100_kb_bodies_from_4_workers(tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    args = ("--workers", "4", "--log-file", str(log))
    with Louter(tmp_path, *args, config=MOCK.format(name="mock")) as louter:
        await _pids(louter)
        ids: list[str] = []
        big = "x" * 100_000

        async def send(index: int) -> None:
            response = await _fresh_connection_chat(louter.base, f"{index} {big}")
            assert response.status_code == 200
            ids.append(response.headers["x-louter-request-id"])

        # 40 at once, again while one worker took them all (the kernel hands a burst
        # of connections on a shared socket to whichever worker is awake: it may be one)
        for burst in range(5):
            async with trio.open_nursery() as clients:
                for index in range(40):
                    clients.start_soon(send, burst * 40 + index)
            if len({_worker_of(i) for i in ids}) >= 2:
                break
        assert louter.stop() == 0
    assert len({_worker_of(i) for i in ids}) >= 2
    entries = log_entries(log)  # every line parses
    logged = _chats(log)
    assert set(logged) == set(ids)
    assert all(directions == DIRECTIONS for directions in logged.values())
    sizes = [len(str(e.get("payload", ""))) for e in entries if e["direction"] == "client_request"]
    assert min(sizes) > 100_000
