"""Legacy OpenAI `functions` / `function_call` clients, end to end over loopback HTTP.

A client that declares `functions` (not `tools`) reads `message.function_call` and finish
reason "function_call". When louter converts the answer (a Gemini- or Anthropic-protocol
backend) it answers in that form, whole and streamed; an OpenAI-protocol backend answers
legacy clients itself, so those bytes pass through. The official `openai` SDK is the
client; the backends are louter A on the mock (louter B in front of it) and fake upstreams.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, SSEReply, sse_events
from tests.sdk import Clients, in_thread

FUNCTIONS: Any = [
    {
        "name": "get_weather",
        "description": "Get the weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]
ASK: Any = [{"role": "user", "content": "weather in Paris?"}]
MOCK_ARGUMENTS = {"city": "mock-city"}


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def two_louters(start_louter: StartLouter, protocol: str, log: Path | None = None) -> str:
    """louter A on the mock; louter B whose only backend is A spoken to in `protocol`."""
    upstream = await start_louter()
    config = f'[backends.upstream]\nprotocol = "{protocol}"\nurl = "{upstream}"\n'
    return await start_louter(config, backend="upstream", log_file=log)


def legacy_stream(client: Any, **extra: Any) -> tuple[str, str, list[str], list[Any]]:
    """Stream a legacy request: the function_call's name and arguments as the deltas
    spell them, the finish reasons, and the chunks."""
    chunks = list(
        client.chat.completions.create(
            model="m", messages=ASK, functions=FUNCTIONS, stream=True, **extra
        )
    )
    name, arguments, finishes = "", "", []
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        assert choice.delta.tool_calls is None
        if choice.delta.function_call is not None:
            name += choice.delta.function_call.name or ""
            arguments += choice.delta.function_call.arguments or ""
        if choice.finish_reason:
            finishes.append(choice.finish_reason)
    return name, arguments, finishes, chunks


@pytest.mark.parametrize("protocol", ["gemini", "anthropic", "responses"])
async def test_legacy_function_call_answer(
    sdk: Clients, start_louter: StartLouter, tmp_path: Path, protocol: str
) -> None:
    log = tmp_path / "b.jsonl"
    client = sdk.openai(await two_louters(start_louter, protocol, log))
    reply = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=ASK, functions=FUNCTIONS)
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.tool_calls is None and choice.message.function_call is not None
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments) == MOCK_ARGUMENTS
    sent = next(e for e in read_log(log) if e["direction"] == "backend_request")
    assert sent["format"] == protocol
    if protocol == "anthropic":  # the legacy form holds one call: ask for one
        assert sent["payload"]["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    if protocol == "responses":
        assert sent["payload"]["parallel_tool_calls"] is False
    # The legacy round trip: the call and a `function` message with its result.
    history = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "function", "name": "get_weather", "content": "sunny"},
    ]
    second = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=history, functions=FUNCTIONS)
    )
    assert second.choices[0].message.content == 'Mock answer to tool result: "sunny"'
    assert second.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("protocol", ["gemini", "anthropic"])
async def test_legacy_function_call_stream(
    sdk: Clients, start_louter: StartLouter, protocol: str
) -> None:
    client = sdk.openai(await two_louters(start_louter, protocol))
    name, arguments, finishes, chunks = await in_thread(lambda: legacy_stream(client))
    assert (name, json.loads(arguments), finishes) == (
        "get_weather",
        MOCK_ARGUMENTS,
        ["function_call"],
    )
    named = [c for c in chunks if c.choices and c.choices[0].delta.function_call is not None]
    assert named[0].choices[0].delta.function_call.name == "get_weather"
    assert all(c.choices[0].delta.function_call.name is None for c in named[1:])


async def test_tools_clients_still_get_tool_calls(sdk: Clients, start_louter: StartLouter) -> None:
    """Declaring `tools` (even next to `functions`) is the modern form."""
    client = sdk.openai(await two_louters(start_louter, "gemini"))
    tools: Any = [{"type": "function", "function": FUNCTIONS[0]}]
    reply = await in_thread(
        lambda: client.chat.completions.create(
            model="m", messages=ASK, tools=tools, functions=FUNCTIONS
        )
    )
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.choices[0].message.function_call is None
    assert reply.choices[0].message.tool_calls is not None


# --------------------------------------------------------------------------- several calls

GEMINI_TWO_CALLS = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                ],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
}


async def gemini_fake(nursery: trio.Nursery, start_louter: StartLouter, log: Path) -> tuple:
    upstream = FakeUpstream()
    port = await nursery.start(upstream.serve)
    config = f'[backends.g]\nprotocol = "gemini"\nurl = "http://127.0.0.1:{port}/v1beta"\n'
    return upstream, await start_louter(config, backend="g", log_file=log)


async def test_several_calls_answer_the_first_and_log_the_rest(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery, tmp_path: Path
) -> None:
    """Gemini has no switch for one call: a second call is dropped, with a note in the log
    (an `error` entry for a whole answer, `notes` in a stream's assembled answer)."""
    log = tmp_path / "b.jsonl"
    upstream, base = await gemini_fake(nursery, start_louter, log)
    upstream.script(
        JSONReply(GEMINI_TWO_CALLS),
        SSEReply([sse_events(GEMINI_TWO_CALLS, done=False)]),
    )
    client = sdk.openai(base)
    reply = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=ASK, functions=FUNCTIONS)
    )
    call = reply.choices[0].message.function_call
    assert call is not None and json.loads(call.arguments) == {"city": "Paris"}
    assert reply.choices[0].finish_reason == "function_call"
    name, arguments, finishes, _ = await in_thread(lambda: legacy_stream(client))
    assert (name, json.loads(arguments), finishes) == (
        "get_weather",
        {"city": "Paris"},
        ["function_call"],
    )
    entries = read_log(log)
    notes = [e["error"] for e in entries if e["direction"] == "error"]
    assert len(notes) == 1
    assert "legacy 'functions'" in notes[0] and "dropped" in notes[0]
    assert "get_weather (" in notes[0] and notes[0].count("get_weather") == 1
    streamed = [e for e in entries if e["direction"] == "client_response"][1]
    assert streamed["stream"] is True and len(streamed["payload"]["notes"]) == 1
    assert "dropped the backend's other tool calls: get_weather" in streamed["payload"]["notes"][0]


# --------------------------------------------------------------------------- same dialect


async def test_the_mock_answers_legacy_clients(sdk: Clients, start_louter: StartLouter) -> None:
    """The mock speaks OpenAI, so the answer passes through: it is the mock's own legacy
    form, as OpenAI answers a client that declared `functions`."""
    client = sdk.openai(await start_louter())
    reply = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=ASK, functions=FUNCTIONS)
    )
    call = reply.choices[0].message.function_call
    assert reply.choices[0].finish_reason == "function_call"
    assert call is not None and json.loads(call.arguments) == MOCK_ARGUMENTS
    name, arguments, finishes, _ = await in_thread(lambda: legacy_stream(client))
    assert (name, json.loads(arguments), finishes) == (
        "get_weather",
        MOCK_ARGUMENTS,
        ["function_call"],
    )


async def test_openai_backends_answer_legacy_clients_themselves(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    """An OpenAI-protocol backend gets `functions` as sent and its answer passes through
    byte for byte."""
    upstream = FakeUpstream()
    port = await nursery.start(upstream.serve)
    answer = {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "model": "real",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                "finish_reason": "function_call",
            }
        ],
    }
    raw = json.dumps(answer, indent=1).encode()
    upstream.script(JSONReply(raw))
    config = f'[backends.o]\nprotocol = "openai"\nurl = "http://127.0.0.1:{port}"\n'
    client = sdk.openai(await start_louter(config, backend="o"))
    response = await in_thread(
        lambda: client.chat.completions.with_raw_response.create(
            model="m", messages=ASK, functions=FUNCTIONS
        )
    )
    assert response.content == raw
    sent = upstream.requests[0].json
    assert sent["functions"] == FUNCTIONS and "tools" not in sent
    assert "parallel_tool_calls" not in sent
