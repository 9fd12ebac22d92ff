"""End to end: the official openai SDK → louter (in-process) → a real llama.cpp llama-server.

The server comes from `<SHARED>/llama-server/start.sh` (SmolLM2-135M-Instruct, see its
README). It is started once per session on a free port by this module and stopped at the
end; a server left running by someone else is never used. If the script is missing the
tests FAIL (CI must run them), they are never skipped.

Run: `python -m pytest tests/e2e/test_llama_e2e.py -q -m llama`
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import trio

from tests.llama import LLAMA_MODEL

pytestmark = pytest.mark.llama

REQUEST_TIMEOUT_S = 180.0  # ~35–65 tok/s on 2 cores; prompts of ~450 tokens take ~1 s

CLIENT_MODEL = "smol"  # what the client asks louter for; mapped to LLAMA_MODEL

TEXT_MESSAGES = [
    {"role": "user", "content": "What is the capital of France? Answer in one sentence."}
]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
# The README's reproducible tool call: one tool, a one-shot example exchange, temperature 0.
TOOL_MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the weather in London?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"London"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c":15,"sky":"cloudy"}'},
    {"role": "assistant", "content": "It is 15 C and cloudy in London."},
    {"role": "user", "content": "What is the weather in Paris?"},
]


# --------------------------------------------------------------------------- louter


@dataclass(frozen=True)
class Louter:
    base: str
    log_file: Path

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.base + "/v1",
            api_key="sk-test",
            max_retries=0,
            timeout=REQUEST_TIMEOUT_S,
        )

    async def call(self, fn: Callable[[openai.OpenAI], Any]) -> Any:
        """Run `fn(client)` with the sync SDK in a worker thread."""

        def run() -> Any:
            with self.client() as client:
                return fn(client)

        return await trio.to_thread.run_sync(run)

    def entries(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line]

    async def wait_entries(
        self, ready: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """The journal once `ready(entries)` holds. A stream's closing entries are written
        just after its last byte reached the client, so they may lag the SDK a little."""
        with trio.move_on_after(timeout):
            while not ready(entries := self.entries()):
                await trio.sleep(0.05)
            return entries
        return self.entries()


@pytest.fixture
async def louter(start_louter, llama_url: str, tmp_path: Path) -> Louter:
    config = f"""
[performance]
timeout_seconds = {REQUEST_TIMEOUT_S}

[backends.llama]
url = "{llama_url}"
protocol = "openai"

[backends.llama.model_mapping]
"{CLIENT_MODEL}" = "{LLAMA_MODEL}"
"""
    log_file = tmp_path / "louter.jsonl"
    base = await start_louter(config, log_file=log_file)
    return Louter(base, log_file)


def by_direction(entries: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["direction"] == direction]


def assert_backend_requests_mapped(entries: list[dict[str, Any]], count: int) -> None:
    requests = by_direction(entries, "backend_request")
    assert len(requests) == count, entries
    for entry in requests:
        assert entry["backend"] == "llama"
        assert entry["model"] == CLIENT_MODEL
        assert entry["backend_model"] == LLAMA_MODEL
        assert entry["payload"]["model"] == LLAMA_MODEL
    for entry in by_direction(entries, "client_request"):
        assert entry["payload"]["model"] == CLIENT_MODEL


def stream_responses(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in by_direction(entries, "backend_response") if e.get("stream")]


def has_stream_responses(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    def ready(entries: list[dict[str, Any]]) -> bool:
        done = [e for e in by_direction(entries, "client_response") if e.get("stream")]
        return len(stream_responses(entries)) >= count and len(done) >= count

    return ready


def assert_no_errors(entries: list[dict[str, Any]]) -> None:
    assert not by_direction(entries, "error"), by_direction(entries, "error")


# --------------------------------------------------------------------------- SDK calls


def complete_text(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model=CLIENT_MODEL, messages=TEXT_MESSAGES, temperature=0, max_tokens=32
    )


def stream_text(client: openai.OpenAI) -> dict[str, Any]:
    parts: list[str] = []
    finish: str | None = None
    usage = None
    models: set[str] = set()
    stream = client.chat.completions.create(
        model=CLIENT_MODEL,
        messages=TEXT_MESSAGES,
        temperature=0,
        max_tokens=32,
        stream=True,
        stream_options={"include_usage": True},
    )
    with stream:
        for chunk in stream:
            models.add(chunk.model)
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
                if choice.finish_reason is not None:
                    finish = choice.finish_reason
    return {"text": "".join(parts), "finish": finish, "usage": usage, "models": models}


def call_tool(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model=CLIENT_MODEL,
        messages=TOOL_MESSAGES,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        temperature=0,
        max_tokens=64,
    )


def stream_tool(client: openai.OpenAI) -> dict[str, Any]:
    calls: dict[int, dict[str, Any]] = {}
    content: list[str] = []
    finish: str | None = None
    usage = None
    stream = client.chat.completions.create(
        model=CLIENT_MODEL,
        messages=TOOL_MESSAGES,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        temperature=0,
        max_tokens=64,
        stream=True,
        stream_options={"include_usage": True},
    )
    with stream:
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.finish_reason is not None:
                    finish = choice.finish_reason
                if choice.delta.content:
                    content.append(choice.delta.content)
                for fragment in choice.delta.tool_calls or ():
                    call = calls.setdefault(fragment.index, {"id": "", "name": "", "args": []})
                    if fragment.id and not call["id"]:
                        call["id"] = fragment.id
                    if fragment.function is not None:
                        if fragment.function.name and not call["name"]:
                            call["name"] = fragment.function.name
                        if fragment.function.arguments:
                            call["args"].append(fragment.function.arguments)
    tool_calls = [
        {"id": c["id"], "name": c["name"], "arguments": "".join(c["args"])}
        for _, c in sorted(calls.items())
    ]
    return {"tool_calls": tool_calls, "content": "".join(content), "finish": finish, "usage": usage}


# --------------------------------------------------------------------------- tests


async def test_text_completion(louter: Louter) -> None:
    reply = await louter.call(complete_text)
    choice = reply.choices[0]
    assert choice.message.content and choice.message.content.strip(), reply
    assert choice.finish_reason in {"stop", "length"}, reply
    assert reply.model == LLAMA_MODEL
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens

    entries = await louter.wait_entries(lambda es: bool(by_direction(es, "client_response")))
    assert_no_errors(entries)
    assert_backend_requests_mapped(entries, 1)
    (response,) = by_direction(entries, "client_response")
    assert response["status"] == 200
    assert response["payload"]["choices"][0]["message"]["content"] == choice.message.content


async def test_streamed_text_equals_non_streamed(louter: Louter) -> None:
    whole = await louter.call(complete_text)
    streamed = await louter.call(stream_text)

    assert streamed["text"].strip(), streamed
    assert streamed["finish"] in {"stop", "length"}, streamed
    assert streamed["usage"] is not None and streamed["usage"].completion_tokens > 0
    assert streamed["models"] == {LLAMA_MODEL}
    # temperature 0 without prompt caching (the fixture's default) is deterministic
    assert streamed["text"] == whole.choices[0].message.content
    assert streamed["finish"] == whole.choices[0].finish_reason

    entries = await louter.wait_entries(has_stream_responses(1))
    assert_no_errors(entries)
    assert_backend_requests_mapped(entries, 2)
    (backend,) = stream_responses(entries)
    assembled = backend["payload"]
    assert assembled["content"] == streamed["text"]
    assert assembled["finish_reason"] == streamed["finish"]
    assert assembled["model"] == LLAMA_MODEL
    assert assembled["done"] is True and assembled["error"] is None
    assert assembled["usage"]["completion_tokens"] == streamed["usage"].completion_tokens
    assert assembled["tool_calls"] == []
    assert backend["chunks"] >= 1 and backend["ttft_ms"] is not None
    client = [e for e in by_direction(entries, "client_response") if e.get("stream")]
    assert client[0]["payload"] == assembled


async def test_tool_call(louter: Louter) -> None:
    reply = await louter.call(call_tool)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", reply
    assert choice.message.tool_calls, reply
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id

    entries = await louter.wait_entries(lambda es: bool(by_direction(es, "client_response")))
    assert_no_errors(entries)
    assert_backend_requests_mapped(entries, 1)
    (request,) = by_direction(entries, "backend_request")
    assert request["payload"]["tools"] == [WEATHER_TOOL]
    assert request["payload"]["messages"] == TOOL_MESSAGES


async def test_tool_call_streamed(louter: Louter) -> None:
    streamed = await louter.call(stream_tool)
    assert streamed["finish"] == "tool_calls", streamed
    assert len(streamed["tool_calls"]) == 1, streamed
    (call,) = streamed["tool_calls"]
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    assert call["id"]
    assert streamed["usage"] is not None

    entries = await louter.wait_entries(has_stream_responses(1))
    assert_no_errors(entries)
    assert_backend_requests_mapped(entries, 1)
    (backend,) = stream_responses(entries)
    assembled = backend["payload"]
    assert assembled["finish_reason"] == "tool_calls"
    assert assembled["done"] is True and assembled["error"] is None
    assert assembled["tool_calls"] == [
        {
            "id": call["id"],
            "type": "function",
            "function": {"name": "get_weather", "arguments": call["arguments"]},
        }
    ]


async def test_concurrent_streams(louter: Louter) -> None:
    """Two streams at once through one louter (the server has two slots)."""
    results: list[dict[str, Any]] = []

    async def one(fn: Callable[[openai.OpenAI], dict[str, Any]]) -> None:
        results.append(await louter.call(fn))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, stream_text)
        nursery.start_soon(one, stream_tool)

    text = next(r for r in results if "text" in r)
    tool = next(r for r in results if "tool_calls" in r)
    assert text["text"].strip() and text["finish"] in {"stop", "length"}
    assert tool["finish"] == "tool_calls" and tool["tool_calls"][0]["name"] == "get_weather"

    entries = await louter.wait_entries(has_stream_responses(2))
    assert_no_errors(entries)
    assert_backend_requests_mapped(entries, 2)
    assert len({e["request_id"] for e in entries}) == 2
    assert len(stream_responses(entries)) == 2
