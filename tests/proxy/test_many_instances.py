"""Many louters behind Debian's nginx, sharing one real redis-server (issue 23).

nginx runs with the README's "Running many louters" block verbatim (its ports replaced
by free ones), in a prefix of its own under tmp_path (no system config, no root). Two
louter instances run as subprocesses with the same `[store]`. A machine without nginx
or redis-server fails these tests (.ci/run installs both).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.cli.test_cli import REPO, free_port
from tests.fakes import FakeUpstream, JSONReply
from tests.hardening import Louter
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
FRAME = """daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{block}
}}
"""


def readme_block() -> str:
    """The nginx block of the README's "Running many louters"."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Running many louters", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert found is not None, "README: no nginx block under 'Running many louters'"
    return found.group(1)


class Nginx:
    def __init__(self, workdir: Path, ports: tuple[int, int]) -> None:
        executable = shutil.which("nginx") or "/usr/sbin/nginx"
        assert Path(executable).exists(), "nginx is missing: apt-get install nginx"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        block = readme_block()
        for old, new in (("8080", self.port), ("8081", ports[0]), ("8082", ports[1])):
            block = block.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
        workdir.mkdir()
        conf = workdir / "nginx.conf"
        conf.write_text(FRAME.format(dir=workdir, block=block))
        self.error_log = workdir / "error.log"
        self.process = subprocess.Popen(
            [executable, "-p", str(workdir), "-c", str(conf), "-e", str(self.error_log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"nginx did not start: {self.error_log.read_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


def _listening(port: int) -> bool:
    try:
        with httpx.Client() as client:
            client.get(f"http://127.0.0.1:{port}/", timeout=1)
    except httpx.TransportError:
        return False
    return True


@pytest.fixture
def pair(tmp_path: Path, redis_server: RedisServer) -> Iterator[Any]:  # noqa: F811
    """`start(extra_toml)` -> (nginx, [louter, louter]) sharing `redis_server`."""
    started: list[Any] = []

    def start(extra: str) -> tuple[Nginx, list[Louter]]:
        config = f'[store]\nurl = "{redis_server.url}"\nop_timeout_ms = 500\n' + extra
        louters = [Louter(tmp_path, config=config).__enter__() for _ in range(2)]
        started.extend(louters)
        nginx = Nginx(tmp_path / "nginx", (louters[0].port, louters[1].port))
        started.append(nginx)
        return nginx, louters

    yield start
    for thing in reversed(started):
        if isinstance(thing, Nginx):
            thing.stop()
        else:
            thing.__exit__(None, None, None)


def _instance(response: httpx.Response) -> str:
    return response.headers["x-louter-request-id"].split("-")[0]


MOCK = '[backends.mock]\nprotocol = "mock"\n'


async def test_a_global_rpm_holds_exactly_across_instances(pair: Any) -> None:
    nginx, _ = pair(MOCK + "[limits.default]\nrpm = 7\n")
    statuses: list[int] = []
    instances: set[str] = set()
    async with httpx.AsyncClient(base_url=nginx.base, timeout=30) as client:

        async def ask() -> None:
            response = await client.post("/v1/chat/completions", json=BODY)
            statuses.append(response.status_code)
            if "x-louter-request-id" in response.headers:
                instances.add(_instance(response))

        async with trio.open_nursery() as clients:
            for _ in range(30):
                clients.start_soon(ask)
    assert sorted(statuses) == [200] * 7 + [429] * 23
    assert len(instances) == 2  # nginx spread them over both louters


async def test_a_breaker_opened_through_one_instance_is_honoured_by_the_other(
    pair: Any, nursery: trio.Nursery
) -> None:
    fake = FakeUpstream(default=JSONReply({"error": {"message": "down"}}, status=500))
    await nursery.start(fake.serve)
    nginx, (first, second) = pair(
        f'[backends.up]\nprotocol = "openai"\nurl = "{fake.url}"\n'
        "[performance]\nfailure_threshold = 1\ncooldown_seconds = 60\n"
    )
    async with httpx.AsyncClient(timeout=30) as client:
        failed = await client.post(first.base + "/v1/chat/completions", json=BODY)
        assert failed.status_code >= 500
        assert len(fake.requests) == 1
        with trio.fail_after(5):  # the other instance reads it within 0.5 s
            while (await client.get(second.base + "/health")).json()["status"] == "ok":
                await trio.sleep(0.05)
        refused: set[str] = set()
        for _ in range(8):  # through nginx: both instances, none sends it upstream
            response = await client.post(nginx.base + "/v1/chat/completions", json=BODY)
            assert response.status_code == 503, response.text
            refused.add(_instance(response))
    assert len(refused) == 2
    assert len(fake.requests) == 1


async def test_one_instance_stopped_mid_run_costs_no_request(pair: Any) -> None:
    nginx, (first, second) = pair(MOCK)
    ok = 0
    failures: list[str] = []
    instances: list[str] = []
    stop = trio.Event()

    async def client_loop() -> None:
        nonlocal ok
        async with httpx.AsyncClient(base_url=nginx.base, timeout=30) as client:
            while not stop.is_set():
                try:
                    response = await client.post("/v1/chat/completions", json=BODY)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                    continue
                ok += 1
                instances.append(_instance(response))

    async def until(count: int) -> None:
        target = ok + count
        with trio.fail_after(30):
            while ok < target:
                await trio.sleep(0.01)

    async with trio.open_nursery() as clients:
        for _ in range(4):
            clients.start_soon(client_loop)
        await until(60)
        first.proc.send_signal(signal.SIGTERM)
        status = await trio.to_thread.run_sync(lambda: first.proc.wait(timeout=20))
        await until(60)
        stop.set()
    assert status == 0
    assert failures == []
    before, after = set(instances[:40]), set(instances[-40:])
    assert len(before) == 2
    assert len(after) == 1  # the survivor took every request
    assert second.proc.poll() is None
