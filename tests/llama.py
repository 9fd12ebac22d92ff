"""The real llama.cpp server from `<SHARED>/llama-server/start.sh`, for end-to-end tests.

`llama_url` (a session fixture, registered in conftest) starts it once on a free port and
stops it at the end; a server left running by someone else is never used. If the script is
missing the tests FAIL (CI must run them), they are never skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import SHARED

LLAMA_DIR = SHARED / "llama-server"
START_SCRIPT = LLAMA_DIR / "start.sh"
LLAMA_HOME = Path(os.environ.get("LLAMA_HOME", "/tmp/llama-server-fixture"))
START_TIMEOUT_S = 600.0  # a cold install (pip) plus the health wait
SOURCE_BUILD_TIMEOUT_S = 2400.0  # building llama-server from source (cmake, two cores)
STOP_GRACE_S = 10.0
LLAMA_MODEL = "smollm2-135m-instruct"  # what the server reports (its --alias)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(text: str | bytes | None, lines: int = 30) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def _is_llama_server(pid: int) -> bool:
    """True while `pid` is a live (non-zombie) llama-server process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return b"llama-server" in cmdline and state != "Z"


def _stop(pid: int) -> None:
    """SIGTERM, wait up to STOP_GRACE_S, then SIGKILL — only if it is our llama-server."""
    if not _is_llama_server(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline:
        if not _is_llama_server(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _start(port: int, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["bash", str(START_SCRIPT), str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )


def llama_server() -> Iterator[str]:
    """Start a fresh llama-server on a free port for this session; yield its base URL."""
    if not START_SCRIPT.is_file():
        pytest.fail(
            f"llama-server fixture script not found: {START_SCRIPT} "
            f"(SHARED={SHARED}; set LOUTER_SHARED to the shared directory). "
            "The llama end-to-end tests are required and are not skipped.",
            pytrace=False,
        )
    port = _free_port()
    env = {**os.environ}
    env.setdefault("LLAMA_PARALLEL", "2")  # two slots: a concurrent request doesn't queue
    started = time.monotonic()
    try:
        proc = _start(port, env, START_TIMEOUT_S)
        if proc.returncode != 0 and b"Illegal instruction" in proc.stderr:
            # The prebuilt binary needs CPU features this machine lacks (seen on some Intel
            # Xeons): build llama-server from its sources for this CPU instead (once, cached
            # under LLAMA_HOME/build; ~11 min with two cores)
            env["LLAMA_FROM_SOURCE"] = "1"
            proc = _start(port, env, SOURCE_BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pid_file = Path(env.get("LLAMA_HOME", LLAMA_HOME)) / f"llama-server-{port}.pid"
        if pid_file.is_file():
            _stop(int(pid_file.read_text().strip() or 0))
        pytest.fail(
            f"{START_SCRIPT} {port} did not return within {exc.timeout:.0f}s; "
            f"stderr tail:\n{_tail(exc.stderr)}",
            pytrace=False,
        )
    stdout = proc.stdout.decode("utf-8", "replace").strip()
    pid = int(stdout.splitlines()[-1]) if stdout and stdout.splitlines()[-1].isdigit() else None
    if proc.returncode != 0 or pid is None:
        if pid is not None:
            _stop(pid)
        pytest.fail(
            f"{START_SCRIPT} {port} failed (exit {proc.returncode}, stdout {stdout!r}); "
            f"stderr tail:\n{_tail(proc.stderr)}",
            pytrace=False,
        )
    print(f"\nllama-server pid {pid} on port {port}, up in {time.monotonic() - started:.1f}s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(pid)
