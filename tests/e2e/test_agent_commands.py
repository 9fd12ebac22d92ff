"""gemini-cli and Codex themselves, headless, steering louter from their prompt (issue 19):
a command-only prompt is answered by louter, which the agent shows as its answer; a
`!/model(...)` in front of a request switches the model for that request and the rest of
the session (a tool round trip included); gemini-cli without `-m` makes a router call
first, which neither runs the prompt's commands nor uses up a `!/oneoff`. Run against the
mock backend; the harnesses are `test_gemini_cli.py`'s and `test_codex.py`'s.

gemini-cli sends no session id of its own with usage statistics off (as here): its
requests share louter's `default` session, so two runs are one session. Codex names one
session per thread (`session-id`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from tests.conftest import StartLouter
from tests.e2e.test_codex import codex_bin, completed, run_codex  # noqa: F401 - a fixture
from tests.e2e.test_gemini_cli import (  # noqa: F401 - a fixture
    DEFAULT_TOOLS,
    RUN_TIMEOUT_S,
    gemini_bin,
    run_gemini,
    total_errors,
)


def entries(log: Path, direction: str) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in log.read_text().splitlines() if line]
    return [e for e in found if e["direction"] == direction]


def action(entry: dict[str, Any]) -> str:
    """A Gemini request's action: generateContent (the router) or streamGenerateContent."""
    return str(entry["endpoint"]).rsplit(":", 1)[1].split("?")[0]


# --------------------------------------------------------------------------- gemini-cli


async def test_gemini_cli_command_only_prompt_is_answered_by_louter(
    start_louter: StartLouter,
    gemini_bin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    with trio.fail_after(RUN_TIMEOUT_S):
        result = await run_gemini(gemini_bin, base, tmp_path, "!/hello", exclude=DEFAULT_TOOLS)
    assert total_errors(result) == 0
    assert result["response"].startswith("Welcome to louter. Session: default\n")
    assert entries(log, "backend_request") == []  # answered by louter itself


async def test_gemini_cli_model_command_switches_the_model(
    start_louter: StartLouter,
    gemini_bin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    prompt = "!/model(mock:switched-model) use list_directory on this folder"
    with trio.fail_after(RUN_TIMEOUT_S):
        result = await run_gemini(gemini_bin, base, tmp_path, prompt, exclude=[])
    assert total_errors(result) == 0
    assert result["response"].startswith('Mock answer to tool result: "')
    sent = entries(log, "backend_request")
    assert [e["backend_model"] for e in sent] == ["switched-model", "switched-model"]
    first = entries(log, "client_request")[0]["payload"]["contents"][-1]["parts"]
    assert "!/model(mock:switched-model)" in json.dumps(first)  # what gemini-cli sent
    applied = [e["commands"] for e in entries(log, "client_response") if "commands" in e]
    assert applied == [[{"command": "!/model(mock:switched-model)", "outcome": "ok"}]]


async def test_gemini_cli_router_call_keeps_the_oneoff(
    start_louter: StartLouter,
    gemini_bin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Without -m: the router call, then the main request, each run."""
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with trio.fail_after(2 * RUN_TIMEOUT_S):
        first = await run_gemini(gemini_bin, base, tmp_path / "one", "!/oneoff(mock:once-model)",
                                 exclude=DEFAULT_TOOLS, model=False)  # fmt: skip
        assert first["response"] == "the next request goes to mock:once-model"
        routed = entries(log, "backend_request")
        assert [action(e) for e in routed] == ["generateContent"]  # the router's, sent on
        second = await run_gemini(gemini_bin, base, tmp_path / "two", "say hi",
                                  exclude=DEFAULT_TOOLS, model=False)  # fmt: skip
    assert total_errors(first) == total_errors(second) == 0
    assert "say hi" in second["response"]
    sent = entries(log, "backend_request")[1:]
    assert [action(e) for e in sent] == ["generateContent", "streamGenerateContent"]
    router, main = sent
    assert router["backend_model"] != "once-model"  # the router call left the one-off
    assert main["backend_model"] == "once-model"  # for the request that followed


# --------------------------------------------------------------------------- Codex


async def test_codex_command_only_prompt_is_answered_by_louter(
    start_louter: StartLouter,
    codex_bin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    log = tmp_path / "louter.jsonl"
    events = await run_codex(codex_bin, await start_louter(log_file=log), tmp_path, "!/hello")
    (message,) = completed(events, "agent_message")
    session = entries(log, "client_request")[0]["headers"]["session-id"]
    assert message["text"].startswith(f"Welcome to louter. Session: {session}\n")
    assert entries(log, "backend_request") == []


async def test_codex_model_command_switches_the_model(
    start_louter: StartLouter,
    codex_bin: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(log_file=log)
    prompt = "!/model(mock:switched-model) use exec_command to list files"
    events = await run_codex(codex_bin, base, tmp_path, prompt)
    assert completed(events, "command_execution"), events
    assert completed(events, "agent_message")[-1]["text"].startswith(
        'Mock answer to tool result: "'
    )
    sent = entries(log, "backend_request")
    assert [e["backend_model"] for e in sent] == ["switched-model", "switched-model"]
    assert len({e["session"] for e in sent}) == 1  # one Codex thread, one session
