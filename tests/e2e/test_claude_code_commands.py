"""Claude Code itself, headless, steering louter from its prompt (issue 19): `!/model(...)`
switches the model of the session — for the rest of the turn (a tool round trip) and for
the next turn — and a command-only prompt is answered by louter, which Claude Code shows
as a normal answer. Runs against the mock backend; the harness is `test_claude_code.py`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import StartLouter
from tests.e2e.test_claude_code import claude_bin, run_claude  # noqa: F401 - a fixture


def entries(log: Path, direction: str) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in log.read_text().splitlines() if line]
    return [e for e in found if e["direction"] == direction]


async def test_model_command_in_the_prompt_switches_the_session_model(
    start_louter: StartLouter,
    claude_bin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    prompt = "!/model(mock:switched-model) Read notes.txt and tell me what it says"
    result = await run_claude(claude_bin, base, tmp_path, "-p", prompt)
    assert result["is_error"] is False
    assert result["result"].startswith('Mock answer to tool result: "')
    sent = entries(log, "backend_request")
    assert [e["backend_model"] for e in sent] == ["switched-model", "switched-model"]
    first = next(e for e in entries(log, "client_request"))
    session = first["headers"]["x-claude-code-session-id"]
    assert {e["session"] for e in sent} == {session}  # Claude Code's own header names it
    applied = [e["commands"] for e in entries(log, "client_response") if "commands" in e]
    assert applied == [[{"command": "!/model(mock:switched-model)", "outcome": "ok"}]]


async def test_a_command_only_prompt_then_the_next_turn(
    start_louter: StartLouter,
    claude_bin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    headers = ("ANTHROPIC_CUSTOM_HEADERS", "x-session-id: claude-e2e")
    first = await run_claude(
        claude_bin, base, tmp_path / "one", "--tools", "", "-p", "!/model(mock:next-model)",
        env=dict([headers]),
    )  # fmt: skip
    assert first["is_error"] is False
    assert first["result"] == "backend set to mock, model to next-model"
    assert entries(log, "backend_request") == []  # answered by louter itself
    second = await run_claude(
        claude_bin, base, tmp_path / "two", "--tools", "", "-p", "say hi", env=dict([headers])
    )
    assert second["result"] == 'Mock answer to: "say hi" (images: 0)'
    (sent,) = entries(log, "backend_request")
    assert sent["backend_model"] == "next-model" and sent["session"] == "claude-e2e"
