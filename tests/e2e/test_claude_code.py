"""Claude Code itself, headless (`--bare -p ... --output-format json`), through louter to
the mock backend (clients.md §6, §8).

Claude Code is installed from the npm registry on first use (tests/clients.py). Checks:
`is_error == false`, the result text, and from louter's log that every request was
`stream: true` (Claude Code falls back to `stream: false` when a stream is malformed) and
none was retried.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.clients import npm_client
from tests.conftest import StartLouter

CLAUDE_CODE = ("@anthropic-ai/claude-code", "2.1.330", "claude")
RUN_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    return npm_client(*CLAUDE_CODE)


async def run_claude(
    binary: Path, base: str, tmp: Path, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    home, work = tmp / "home", tmp / "work"
    home.mkdir(parents=True)
    work.mkdir()
    (work / "notes.txt").write_text("louter was here\n")
    env = {
        **(env or {}),
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base,
        "ANTHROPIC_API_KEY": "dummy-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    command = [str(binary), "--bare", "--output-format", "json", *args]
    with trio.fail_after(RUN_TIMEOUT_S):
        proc = await trio.run_process(
            command,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    stdout = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stdout}\n{proc.stderr.decode()[-3000:]}"
    return dict(json.loads(stdout[stdout.index("{") :]))


def client_requests(log: Path) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in log.read_text().splitlines() if line]
    return [e for e in entries if e["direction"] == "client_request"]


async def test_plain_prompt(start_louter: StartLouter, claude_bin: Path, tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    result = await run_claude(claude_bin, base, tmp_path, "--tools", "", "-p", "say hi")
    assert result["is_error"] is False
    assert result["result"] == 'Mock answer to: "say hi" (images: 0)'
    requests = client_requests(log)
    assert len(requests) == 1  # no retry, no non-stream fallback
    assert requests[0]["payload"]["stream"] is True
    assert requests[0]["format"] == "anthropic"


async def test_tool_round_trip(start_louter: StartLouter, claude_bin: Path, tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    result = await run_claude(
        claude_bin, base, tmp_path, "-p", "Read notes.txt and tell me what it says"
    )
    assert result["is_error"] is False
    assert result["result"].startswith('Mock answer to tool result: "')
    requests = client_requests(log)
    assert len(requests) == 2, [r["payload"].get("stream") for r in requests]
    assert all(r["payload"]["stream"] is True for r in requests)
    messages = requests[1]["payload"]["messages"]
    use = next(b for b in messages[-2]["content"] if b["type"] == "tool_use")
    outcome = next(b for b in messages[-1]["content"] if b["type"] == "tool_result")
    assert use["name"] == "Read"
    assert outcome["tool_use_id"] == use["id"]
