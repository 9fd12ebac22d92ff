"""End to end with the loop guards on: official SDKs → louter (in-process, `[loop_detection]`
and `[tool_call_loop]` configured) → the real llama-server from `<SHARED>/llama-server/`.

- SmolLM2-135M at temperature 0 loops on a plain question (a phrase again and again
  until `max_tokens`): the OpenAI stream (passing through as bytes) and the Anthropic
  stream (converted) both end with the closing note and a normal finish, long before
  `max_tokens`, and the journal has the `loop_detected` entries;
- an ordinary answer is not cut;
- a conversation with three identical tool calls is blocked without reaching llama.

Run: `python -m pytest tests/e2e/test_loop_guard_llama.py -q -m llama`
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import trio

from tests.llama import LLAMA_MODEL

pytestmark = pytest.mark.llama

TIMEOUT_S = 180.0
MODEL = "smol"
MAX_TOKENS = 1500
# At temperature 0 SmolLM2-135M answers this with "La femme au martyre, la femme au
# martyre, la femme au martyre. " over and over until max_tokens (a 63-character loop).
LOOPING: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
async def louter(start_louter, llama_url: str, tmp_path: Path) -> tuple[str, Path]:
    config = f"""
[performance]
timeout_seconds = {TIMEOUT_S}

[backends.llama]
url = "{llama_url}"
protocol = "openai"

[backends.llama.model_mapping]
"{MODEL}" = "{LLAMA_MODEL}"

[loop_detection]
min_pattern_length = 50
max_pattern_length = 500
min_repetitions = 3

[tool_call_loop]
max_repeats = 3
mode = "block"
"""
    log = tmp_path / "louter.jsonl"
    return await start_louter(config, log_file=log), log


def _entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line]


async def test_a_looping_model_is_stopped_in_both_doors(louter: tuple[str, Path]) -> None:
    base, log = louter

    def openai_stream() -> tuple[str, str | None, int | None]:
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=TIMEOUT_S)
        with client:
            with client.chat.completions.stream(
                model=MODEL, messages=LOOPING, temperature=0, max_tokens=MAX_TOKENS,
                stream_options={"include_usage": True},
            ) as events:  # fmt: skip
                final = events.get_final_completion()
        usage = final.usage.completion_tokens if final.usage else None
        return final.choices[0].message.content or "", final.choices[0].finish_reason, usage

    def anthropic_stream() -> tuple[str, str | None]:
        client = anthropic.Anthropic(base_url=base, api_key="x", timeout=TIMEOUT_S)
        with client:
            with client.messages.stream(
                model=MODEL,
                messages=LOOPING,
                max_tokens=MAX_TOKENS,
                extra_body={"temperature": 0},
            ) as events:
                reply = events.get_final_message()
        text = "".join(b.text for b in reply.content if b.type == "text")
        return text, reply.stop_reason

    text, finish, tokens = await trio.to_thread.run_sync(openai_stream)
    assert finish == "stop" and "[louter stopped this answer" in text, text
    assert tokens is not None and tokens < MAX_TOKENS
    text, stop = await trio.to_thread.run_sync(anthropic_stream)
    assert stop == "end_turn" and "[louter stopped this answer" in text, text
    found = [e for e in _entries(log) if e.get("type") == "loop_detected"]
    assert [(e["kind"], e["action"]) for e in found] == [("text", "cut")] * 2
    assert all(e["backend"] == "llama" for e in found)


async def test_an_ordinary_answer_and_a_blocked_tool_loop(louter: tuple[str, Path]) -> None:
    base, log = louter
    call = {"id": "c", "type": "function",
            "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'}}  # fmt: skip
    looping: list[Any] = [{"role": "user", "content": "Read a.txt"}]
    for n in range(3):
        looping.append({"role": "assistant", "content": None,
                        "tool_calls": [{**call, "id": f"c{n}"}]})  # fmt: skip
        looping.append({"role": "tool", "tool_call_id": f"c{n}", "content": "hello"})
    tools: Any = [{"type": "function", "function": {"name": "read_file", "parameters": {
        "type": "object", "properties": {"path": {"type": "string"}}}}}]  # fmt: skip

    def ask() -> tuple[str, str]:
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", timeout=TIMEOUT_S)
        with client:
            plain = client.chat.completions.create(
                model=MODEL, temperature=0, max_tokens=60,
                messages=[{"role": "user", "content": "List the numbers from 1 to 5."}],
            )  # fmt: skip
            blocked = client.chat.completions.create(model=MODEL, messages=looping, tools=tools)
        return plain.choices[0].message.content or "", blocked.choices[0].message.content or ""

    plain, blocked = await trio.to_thread.run_sync(ask)
    assert "1, 2, 3, 4, 5" in plain and "[louter" not in plain
    assert "louter stopped this turn" in blocked
    entries = _entries(log)
    assert len([e for e in entries if e["direction"] == "backend_request"]) == 1
    found = [e for e in entries if e.get("type") == "loop_detected"]
    assert [(e["kind"], e["action"], e["count"]) for e in found] == [("tool_call", "block", 3)]
