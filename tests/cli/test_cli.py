"""The command line: `louter` (in-process via typer's CliRunner and as a real process),
the other probe scripts' start-up (`test-runner`, `diagnostic`: their own tests are in
test_test_runner.py and test_diagnostic.py), and the `bin/` wrappers that run from a
checkout.

This typer/click version keeps stderr separate: `result.stderr` holds what the command
wrote there, `result.stdout` only stdout (and `result.output` both, interleaved).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from louter import __version__
from louter.cli.louter import app
from louter.cli.screen import plain_summary, summary_table
from louter.cli.serve import summary
from louter.config import BACKEND_KEYS, parse_config
from louter.proxy.app import build_context

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "bin"
PROBE_SCRIPTS = ("test-runner", "diagnostic")


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without variables that would change louter's choices."""
    env = {k: v for k, v in os.environ.items() if k not in ("PROXY_BACKEND", "OPENAI_API_KEY")}
    env.update(extra)
    return env


def invoke(args: list[str], **env: str):  # type: ignore[no-untyped-def]
    runner = CliRunner(env={"PROXY_BACKEND": None, "OPENAI_API_KEY": None, **env})
    return runner.invoke(app, args)


def run(
    args: list[str], *, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=60, cwd=cwd, env=clean_env(**env), check=False
    )


def louter_bin(*args: str) -> list[str]:
    return [sys.executable, str(BIN / "louter"), *args]


def installed_script(name: str) -> str:
    try:
        importlib.metadata.distribution("louter")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("louter is not installed (pip install -e .); console scripts absent")
    path = shutil.which(name)
    assert path is not None, f"louter is installed but console script {name!r} is not on PATH"
    return path


# --------------------------------------------------------------------------- CliRunner


def test_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"louter {__version__}\n"
    assert result.stderr == ""


def test_help_lists_the_options() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    for option in (
        "--backend",
        "--host",
        "--port",
        "--config",
        "--log-file",
        "--verbose",
        "--version",
    ):
        assert option in result.stdout


def test_missing_config_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = invoke(["--config", str(missing)])
    assert result.exit_code == 2
    assert result.stderr == f"louter: {missing}: config file not found\n"
    assert result.stdout == ""


def test_unknown_key_exits_2_naming_key_table_and_line(tmp_path: Path) -> None:
    config = tmp_path / "louter.toml"
    config.write_text('[server]\nport = 8080\n\n[backends.qwen]\nurl = "http://q"\nbogus = 1\n')
    result = invoke(["--config", str(config)])
    assert result.exit_code == 2
    # The message is printed verbatim: `[backends.qwen]` is not eaten as rich markup and a
    # long message is not wrapped.
    assert result.stderr == (
        f"louter: {config}: [backends.qwen] key 'bogus': unknown key (allowed: "
        f"{', '.join(sorted(BACKEND_KEYS))}) (line 6)\n"
    )


def test_invalid_toml_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "louter.toml"
    config.write_text("[server]\n[server]\n")
    result = invoke(["--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"louter: {config}: invalid TOML: ")


def test_unknown_backend_option_lists_known_backends() -> None:
    result = invoke(["--backend", "nosuch"])
    assert result.exit_code == 2
    assert (
        result.stderr == "louter: unknown backend 'nosuch'; known backends: "
        "mock, openai, gemini, anthropic, openrouter\n"
    )


def test_unknown_backend_from_env_lists_known_backends() -> None:
    result = invoke([], PROXY_BACKEND="nosuch")
    assert result.exit_code == 2
    assert (
        result.stderr == "louter: unknown backend 'nosuch'; known backends: "
        "mock, openai, gemini, anthropic, openrouter\n"
    )


def test_unknown_backend_lists_configured_backends_too(tmp_path: Path) -> None:
    config = tmp_path / "louter.toml"
    config.write_text('[backends.qwen]\nurl = "http://q"\n')
    result = invoke(["--config", str(config), "--backend", "nosuch"])
    assert result.exit_code == 2
    assert result.stderr == (
        "louter: unknown backend 'nosuch'; known backends: "
        "qwen, mock, openai, gemini, anthropic, openrouter\n"
    )


def test_backend_option_beats_env(tmp_path: Path) -> None:
    result = invoke(["--backend", "nosuch"], PROXY_BACKEND="mock")
    assert result.exit_code == 2
    assert "'nosuch'" in result.stderr


def test_unwritable_log_file_exits_2(tmp_path: Path) -> None:
    log_file = tmp_path / "no" / "such" / "dir" / "log.jsonl"
    result = invoke(["--log-file", str(log_file)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"louter: cannot open log file {log_file}: ")


# --------------------------------------------------------------------------- processes


def test_bin_louter_version_from_checkout(tmp_path: Path) -> None:
    result = run(louter_bin("--version"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"louter {__version__}\n"


def test_installed_louter_version() -> None:
    result = run([installed_script("louter"), "--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"louter {__version__}\n"


def test_process_missing_config_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "a-rather-long-directory-name-to-exceed-eighty-columns" / "x.toml"
    result = run(louter_bin("--config", str(missing)))
    assert result.returncode == 2
    assert result.stderr == f"louter: {missing}: config file not found\n"


def test_process_unknown_key_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "louter.toml"
    config.write_text("[performance]\ntimeout_seconds = 3\nretries = 2\n")
    result = run(louter_bin("--config", str(config)))
    assert result.returncode == 2
    assert result.stderr.startswith(f"louter: {config}: [performance] key 'retries': unknown key")
    assert result.stderr.endswith("(line 3)\n")


def test_process_unknown_backend_from_env_exits_2() -> None:
    result = run(louter_bin(), PROXY_BACKEND="nosuch")
    assert result.returncode == 2
    assert (
        result.stderr == "louter: unknown backend 'nosuch'; known backends: "
        "mock, openai, gemini, anthropic, openrouter\n"
    )


@pytest.mark.parametrize("name", PROBE_SCRIPTS)
def test_probe_console_script_starts(name: str) -> None:
    result = run([installed_script(name), "--help"])
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "--json" in result.stdout
    assert "not implemented" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", PROBE_SCRIPTS)
def test_probe_bin_wrapper_starts(name: str, tmp_path: Path) -> None:
    result = run([sys.executable, str(BIN / name), "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "--json" in result.stdout


# --------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(proc: subprocess.Popen[bytes], base: str, stderr: Path) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"louter exited early ({proc.returncode}): {stderr.read_text()}")
        try:
            response = httpx.get(base + "/health", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        assert response.status_code == 200
        return response.json()
    pytest.fail(f"louter did not answer /health within 10 s: {stderr.read_text()}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_one_request_and_stop_on_signal(tmp_path: Path, signum: signal.Signals) -> None:
    port = free_port()
    log_file = tmp_path / "louter.jsonl"
    stderr_file = tmp_path / "stderr.txt"
    base = f"http://127.0.0.1:{port}"
    with stderr_file.open("wb") as stderr:
        proc = subprocess.Popen(
            louter_bin("--port", str(port), "--log-file", str(log_file)),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=tmp_path,
            env=clean_env(),
        )
    try:
        health = wait_for_health(proc, base, stderr_file)
        assert health["status"] == "ok"
        assert health["default"] == "mock"

        response = httpx.post(
            base + "/v1/chat/completions",
            json={"model": "any-model", "messages": [{"role": "user", "content": "ping"}]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == (
            'Mock answer to: "ping" (images: 0)'
        )
        request_id = response.headers["x-louter-request-id"]

        proc.send_signal(signum)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    raw = log_file.read_bytes()
    assert raw.endswith(b"\n")
    entries = [json.loads(line) for line in raw.splitlines()]
    mine = [e for e in entries if e["request_id"] == request_id]
    assert [e["direction"] for e in mine] == [
        "client_request",
        "backend_request",
        "backend_response",
        "client_response",
    ]
    assert all(e["backend"] == "mock" for e in mine[1:])

    err = stderr_file.read_text()  # not a terminal: plain lines, no table
    lines = err.splitlines()
    assert lines[0] == f"louter {__version__} on http://127.0.0.1:{port}"
    assert "backend mock (default): protocol mock, url in-process, key -, models -" in lines
    assert not any(box in err for box in "│┃━") and "\x1b[" not in err
    assert f"louter: {signal.Signals(signum).name}, stopping" in err


def test_busy_port_exits_1_with_a_message() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(["--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"louter: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in result.stderr


def test_the_startup_table_cuts_nothing_on_a_narrow_terminal() -> None:
    """On an 80-column terminal a long URL or key variable wraps inside its cell instead
    of ending in "…"; not a terminal, each backend is one line, whole."""
    url = "https://llm-gateway.internal.example.com/teams/platform/openai/v1"
    toml = (
        f'[backends.team]\nprotocol = "openai"\nurl = "{url}"\n'
        'api_key_env = "TEAM_PLATFORM_GATEWAY_API_KEY"\n'
    )
    ctx = build_context(parse_config(toml, path="t.toml", env={}), default_backend="team")
    shown = summary(ctx, "127.0.0.1", 8080, None)
    base = url.removesuffix("/v1")  # the backend's base URL
    line = f"backend team (default): protocol openai, url {base}, key missing (TEAM_PLATFORM"
    assert line + "_GATEWAY_API_KEY), models -" in plain_summary(shown).splitlines()
    out = StringIO()
    Console(file=out, width=80).print(summary_table(shown))
    text = out.getvalue()
    assert "…" not in text
    rows = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    cells = ["".join(row[column].strip() for row in rows) for column in (3, 4)]
    assert cells[0].startswith(url.removesuffix("/v1"))
    assert "(TEAM_PLATFORM_GATEWAY_API_KEY)" in cells[1]
