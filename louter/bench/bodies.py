"""The benchmark's fixed bodies: what clients send and what the mock upstream answers.

Deterministic (no clock, no randomness) so every run sends and receives the same bytes.
Standard library only: the mock upstream imports this module and must start fast.
Requests are written the way the Python SDKs write them (`", "` and `": "`
separators, so `"stream": true`); answers are compact, the way servers send them.
"""

from __future__ import annotations

import json
from typing import Any

MODEL = "bench-model"
CREATED = 1_700_000_000
TEXT = "Hello from louter's benchmark upstream: a short fixed answer to every question."
STREAM_CHUNKS = 100  # data events in a streamed answer, [DONE] not counted
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = '{"city":"Paris"}'

_VOCABULARY = (
    "river lantern orbit copper meadow signal harbor cipher ember thicket vector quarry "
    "falcon prism tundra beacon ledger socket buffer parser stream token schema header "
    "kernel packet gravel willow summit canyon mosaic pillar drift anchor ripple velvet"
).split()

Json = dict[str, Any]


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _sdk_style(value: Any) -> bytes:
    return json.dumps(value).encode()


def prose(words: int, seed: int) -> str:
    """`words` words of deterministic filler text; different seeds give different text."""
    size = len(_VOCABULARY)
    return " ".join(_VOCABULARY[(seed * 11 + i * 7 + i // size) % size] for i in range(words))


# --------------------------------------------------------------------------- answers


def chat_answer() -> bytes:
    """A `chat.completion` with text and usage."""
    return _compact(
        {
            "id": "chatcmpl-bench-chat",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": TEXT},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 14, "completion_tokens": 15, "total_tokens": 29},
        }
    )


def tools_answer() -> bytes:
    """A `chat.completion` whose message is one `get_weather` tool call."""
    call = {
        "id": "call_bench_1",
        "type": "function",
        "function": {"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS},
    }
    return _compact(
        {
            "id": "chatcmpl-bench-tools",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 60, "completion_tokens": 9, "total_tokens": 69},
        }
    )


def stream_pieces() -> list[str]:
    """The text of the streamed answer, one piece per content chunk."""
    return [f"w{i} " for i in range(STREAM_CHUNKS - 3)]


def stream_answer() -> bytes:
    """An OpenAI SSE body: a role chunk, content chunks, a finish chunk, a usage chunk with
    `choices: []` (100 data events in all), then `data: [DONE]`."""
    head: Json = {"id": "chatcmpl-bench-stream", "object": "chat.completion.chunk"}
    head |= {"created": CREATED, "model": MODEL}

    def chunk(delta: Json, finish: str | None = None) -> Json:
        return head | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in stream_pieces()]
    events.append(chunk({}, "stop"))
    words = STREAM_CHUNKS - 3
    usage = {"prompt_tokens": 14, "completion_tokens": words, "total_tokens": 14 + words}
    events.append(head | {"choices": [], "usage": usage})
    return b"".join(b"data: " + _compact(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


# --------------------------------------------------------------------------- requests


def _weather_tool() -> Json:
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "The current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
            },
        },
    }


def small_request(*, stream: bool = False, tools: bool = False) -> bytes:
    """One user turn; streamed (with usage) or with the `get_weather` tool on request."""
    body: Json = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 64,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    if tools:
        body["tools"] = [_weather_tool()]
    return _sdk_style(body)


def tool_definitions(count: int = 12) -> list[Json]:
    """`get_weather` plus `count - 1` tools with seven typed parameters each."""
    types = ("string", "integer", "number", "boolean")
    tools = [_weather_tool()]
    for n in range(1, count):
        params: Json = {
            f"arg_{k}": {"type": types[k % 4], "description": prose(14, n * 8 + k)}
            for k in range(6)
        }
        params["mode"] = {"type": "string", "enum": ["quick", "careful", "exhaustive"]}
        function = {
            "name": f"tool_{n:02d}_{_VOCABULARY[n]}",
            "description": prose(45, n),
            "parameters": {"type": "object", "properties": params, "required": ["arg_0"]},
        }
        tools.append({"type": "function", "function": function})
    return tools


def _turn(n: int) -> list[Json]:
    """User question `n` and the assistant's answer: text, or every fourth turn a
    `get_weather` call and its result."""
    user = {"role": "user", "content": f"Question {n}: {prose(90, n)}"}
    if n % 4:
        return [user, {"role": "assistant", "content": prose(110, n + 50)}]
    call_id = f"call_history_{n:03d}"
    arguments = json.dumps({"city": f"Town{n}"})
    call: Json = {"id": call_id, "type": "function"}
    call["function"] = {"name": TOOL_NAME, "arguments": arguments}
    result = json.dumps({"city": f"Town{n}", "celsius": 8 + n % 17, "note": prose(40, n)})
    return [
        user,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
    ]


def big_request(size: int = 50_000) -> bytes:
    """A request of at least `size` bytes: 12 tool definitions and a long conversation
    (system prompt, text turns, tool calls and results) ending in a weather question."""
    system = {"role": "system", "content": f"You are a careful assistant. {prose(300, 1)}"}
    history: list[Json] = []
    n = 0
    while True:
        n += 1
        history += _turn(n)
        question = {"role": "user", "content": "And the weather in Paris?"}
        body = {
            "model": MODEL,
            "messages": [system, *history, question],
            "tools": tool_definitions(),
            "tool_choice": "auto",
            "max_tokens": 256,
        }
        encoded = _sdk_style(body)
        if len(encoded) >= size:
            return encoded
