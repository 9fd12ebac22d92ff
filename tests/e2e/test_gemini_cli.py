"""gemini-cli itself, headless, through louter to the mock backend (clients.md §5, §8).

gemini-cli is installed from the npm registry on first use (tests/clients.py). Checks:
the answer text, `totalErrors == 0` in its JSON stats, and from louter's log that it made
no retries (one client request per model turn; gemini-cli retries a whole request when
an answer lacks a finishReason or content, which louter must never provoke).
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

GEMINI_CLI = ("@google/gemini-cli", "0.61.0", "gemini")
DEFAULT_TOOLS = [
    "update_topic", "list_directory", "read_file", "grep_search", "glob",
    "google_web_search", "enter_plan_mode", "invoke_agent",
]  # fmt: skip
RUN_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def gemini_bin() -> Path:
    return npm_client(*GEMINI_CLI)


def _settings(home: Path, exclude: list[str]) -> None:
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "tools": {"exclude": exclude},
    }
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))


async def run_gemini(
    binary: Path, base: str, tmp: Path, prompt: str, exclude: list[str], model: bool = True
) -> dict[str, Any]:
    home, work = tmp / "home", tmp / "work"
    work.mkdir()
    (work / "notes.txt").write_text("hello\n")
    _settings(home, exclude)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GEMINI_CLI_HOME": str(home),
        "GEMINI_API_KEY": "dummy-key",
        "GOOGLE_GEMINI_BASE_URL": base,
        "NO_COLOR": "1",
    }
    chosen = ["-m", "gemini-2.5-flash"] if model else []  # without -m, the router runs first
    command = [str(binary), "--skip-trust", *chosen, "-o", "json", "-p", prompt]
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
    start = stdout.index("{")
    return dict(json.loads(stdout[start:]))


def total_errors(result: dict[str, Any]) -> int:
    return sum(model["api"]["totalErrors"] for model in result["stats"]["models"].values())


def client_requests(log: Path) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in log.read_text().splitlines() if line]
    return [e for e in entries if e["direction"] == "client_request"]


async def test_plain_prompt(start_louter: StartLouter, gemini_bin: Path, tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    with trio.fail_after(RUN_TIMEOUT_S):
        result = await run_gemini(gemini_bin, base, tmp_path, "say hi", exclude=DEFAULT_TOOLS)
    assert result["response"].startswith("Mock answer to: ")
    assert "say hi" in result["response"]
    assert total_errors(result) == 0
    requests = client_requests(log)
    assert len(requests) == 1, [r["endpoint"] for r in requests]  # no retries
    assert requests[0]["endpoint"].endswith(":streamGenerateContent")
    assert requests[0]["format"] == "gemini"


async def test_tool_round_trip(start_louter: StartLouter, gemini_bin: Path, tmp_path: Path) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    prompt = "use list_directory on this folder"
    with trio.fail_after(RUN_TIMEOUT_S):
        result = await run_gemini(gemini_bin, base, tmp_path, prompt, exclude=[])
    assert total_errors(result) == 0
    assert result["response"].startswith('Mock answer to tool result: "')
    requests = client_requests(log)
    assert len(requests) == 2, [r["endpoint"] for r in requests]  # call, then result: no retry
    contents = requests[1]["payload"]["contents"]
    call = contents[-2]["parts"][0]["functionCall"]
    response = contents[-1]["parts"][0]["functionResponse"]
    assert call["name"] == response["name"] == "list_directory"


async def test_default_model_router_call(
    start_louter: StartLouter, gemini_bin: Path, tmp_path: Path
) -> None:
    """Without -m gemini-cli first asks a small model for a JSON "complexity score"
    (generateContent, responseMimeType JSON with an upper-case schema); a non-JSON answer
    would make it retry that call."""
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    with trio.fail_after(RUN_TIMEOUT_S):
        result = await run_gemini(
            gemini_bin, base, tmp_path, "say hi", exclude=DEFAULT_TOOLS, model=False
        )
    assert total_errors(result) == 0
    assert "say hi" in result["response"]
    requests = client_requests(log)
    assert [r["endpoint"].rsplit(":", 1)[1] for r in requests] == [
        "generateContent",
        "streamGenerateContent",
    ]
    config = requests[0]["payload"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
