"""Codex CLI itself (`codex exec --json`), headless, through louter's Responses door to the
mock backend (clients.md §7, §8), with a custom provider (`wire_api = "responses"`).

Codex is installed from the npm registry on first use (tests/clients.py). Codex always
declares tools, so the mock's first answer is an `exec_command` call (its rules pick a
tool named in the prompt, else the first); Codex runs it and sends a
`function_call_output`, and the mock's answer to that is the agent message.
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

CODEX = ("@openai/codex", "0.169.0", "codex")
RUN_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    return npm_client(*CODEX)


async def run_codex(binary: Path, base: str, tmp: Path, prompt: str) -> list[dict[str, Any]]:
    home, work = tmp / "codex-home", tmp / "work"
    home.mkdir()
    work.mkdir()
    provider = (
        'model_providers.louter={name="louter",base_url="' + base + '/v1",'
        'env_key="LOUTER_API_KEY",wire_api="responses"}'
    )
    command = [
        str(binary), "exec", "--skip-git-repo-check", "--json",
        "-c", "model=gpt-5.5", "-c", "model_provider=louter", "-c", provider, prompt,
    ]  # fmt: skip
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CODEX_HOME": str(home),
        "LOUTER_API_KEY": "dummy-key",
    }
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
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def completed(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == kind
    ]


def client_requests(log: Path) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in log.read_text().splitlines() if line]
    return [e for e in entries if e["direction"] == "client_request"]


async def test_plain_prompt(start_louter: StartLouter, codex_bin: Path, tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    events = await run_codex(codex_bin, await start_louter(log_file=log), tmp_path, "say hi")
    messages = completed(events, "agent_message")
    assert messages, events
    assert messages[-1]["text"].startswith("Mock answer to")
    requests = client_requests(log)
    assert requests and all(r["endpoint"] == "/v1/responses" for r in requests)
    assert all(r["payload"]["stream"] is True for r in requests)


async def test_tool_round_trip(start_louter: StartLouter, codex_bin: Path, tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    events = await run_codex(codex_bin, base, tmp_path, "use exec_command to list files")
    assert completed(events, "command_execution"), events
    assert completed(events, "agent_message")[-1]["text"].startswith(
        'Mock answer to tool result: "'
    )
    requests = client_requests(log)
    assert len(requests) == 2, [r["endpoint"] for r in requests]
    items = requests[1]["payload"]["input"]
    call = next(i for i in items if i.get("type") == "function_call")
    output = next(i for i in items if i.get("type") == "function_call_output")
    assert call["name"] == "exec_command"
    assert output["call_id"] == call["call_id"]
