"""A louter subprocess for the hardening tests: start, talk to it, read its log.

with Louter(tmp_path, "--log-file", str(log)) as louter:
    request_id = louter.chat("hi")
    louter.metric("log_write_errors_total")
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
import trio

from tests.cli.test_cli import clean_env, free_port, louter_bin, wait_for_health


class Louter:
    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        preexec_fn: Callable[[], None] | None = None,
        config: str | None = None,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stderr_path = tmp_path / f"stderr-{self.port}.txt"
        extra: list[str] = []
        if config is not None:
            config_path = tmp_path / "config.toml"
            config_path.write_text(config)
            extra = ["--config", str(config_path)]
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                louter_bin("--port", str(self.port), *extra, *args),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=tmp_path,
                env=clean_env(COLUMNS="200"),
                preexec_fn=preexec_fn,  # noqa: PLW1509 - only resource limits and signals
            )
        self.client = httpx.Client(base_url=self.base, timeout=10)

    def __enter__(self) -> Louter:
        wait_for_health(self.proc, self.base, self.stderr_path)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def chat(self, content: str = "hello", **extra: Any) -> str:
        """One whole chat completion (mock backend); its request id."""
        response = self.client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": content}], **extra},
        )
        assert response.status_code == 200, response.text
        return response.headers["x-louter-request-id"]

    def metric(self, name: str) -> float:
        text = self.client.get("/metrics").text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in /metrics:\n{text}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)


def log_entries(*paths: Path) -> list[dict[str, Any]]:
    """Every line of the files, each parsed as JSON (a line that does not parse fails)."""
    entries = []
    for path in paths:
        raw = path.read_bytes()
        assert not raw or raw.endswith(b"\n"), f"{path} ends inside a line"
        entries.extend(json.loads(line) for line in raw.splitlines())
    return entries


def logged_ids(*paths: Path) -> dict[str, list[str]]:
    """request_id -> its entries' directions, in order."""
    found: dict[str, list[str]] = {}
    for entry in log_entries(*paths):
        found.setdefault(entry["request_id"], []).append(entry["direction"])
    return found


def wait_logged(path: Path, request_ids: list[str], timeout: float = 5) -> dict[str, list[str]]:
    """`logged_ids(path)` once every one of `request_ids` has its lines there: a running
    louter writes an exchange's lines at the end of the event-loop turn that answered it,
    a moment after the client got the answer (another process may read before that)."""
    deadline = time.monotonic() + timeout
    while True:
        found = logged_ids(path)
        if all(i in found for i in request_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.005)


def require_root_mount(command: list[str]) -> None:
    """Run a mount command; it must work in CI (env CI set), elsewhere it may be skipped."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return
    message = f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message + " (not CI; needs root)")


def wait_until(check: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def wait_health_async(
    client: httpx.AsyncClient,
    proc: trio.Process,
    *,
    base: str = "",
    stderr: Path | None = None,
    timeout: float = 15,
) -> None:
    """Wait for a louter started with trio to answer `/health` (`base`: its URL when the
    client has none); fail at once if it exits (with its `stderr` when given)."""
    with trio.fail_after(timeout):
        while True:
            assert proc.poll() is None, stderr.read_text() if stderr else "louter exited early"
            try:
                await client.get(base + "/health")
                return
            except httpx.TransportError:
                await trio.sleep(0.05)
