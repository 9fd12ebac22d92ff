"""Logs for the log-parser tests: one written by a real louter run, plus hand-written
entries in the wire shapes of every dialect (tool results and shapes the mock backend
never produces, and the Responses dialect, whose front door is not built yet).

`real_log` starts louter in-process (two mock backends, a model mapping each), drives it
with the OpenAI SDK and httpx — plain, streamed, tool calls (streamed and not), a tool
result, bad JSON, an unknown path, an upstream 400, the Gemini and Anthropic front doors
(tool calls, streamed and not, with API keys the journal redacts), and a burst of
concurrent requests — and returns the JSONL file louter wrote. The tests here check that
log is what the other modules rely on (interleaved, every exchange answered, every front
door present).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trio

from louter.config import parse_config
from louter.proxy.app import build_context, serve

REPO = Path(__file__).resolve().parents[2]
LOG_PARSER = [sys.executable, str(REPO / "bin" / "log-parser")]

CONFIG = """
[backends.alpha]
protocol = "mock"
[backends.alpha.model_mapping]
"model-a" = "alpha-internal"

[backends.beta]
protocol = "mock"
[backends.beta.model_mapping]
"model-b" = "beta-internal"
"""

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CLOCK: dict[str, Any] = {  # no parameters: the mock calls it with arguments "{}"
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
CONCURRENT = 12
SEQUENTIAL = 12  # exchanges before the concurrent burst (8 OpenAI, 2 Gemini, 2 Anthropic)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def sdk_calls(base: str) -> None:
    """A plain and a streamed request through the official OpenAI SDK."""
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-secret", max_retries=0)
    client.chat.completions.create(model="model-a", messages=user("hello louter"))
    stream = client.chat.completions.create(
        model="model-b",
        messages=user("stream please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass


async def sequential(client: httpx.AsyncClient) -> None:
    chat = "/v1/chat/completions"
    await client.post(
        chat, json={"model": "model-a", "tools": [WEATHER], "messages": user("weather?")}
    )
    await client.post(
        chat,
        json={"model": "model-b", "stream": True, "tools": [CLOCK], "messages": user("time?")},
    )
    history = [
        *user("weather in Paris?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
    ]
    await client.post(chat, json={"model": "model-a", "tools": [WEATHER], "messages": history})
    await client.post(
        chat,
        content=b'{"model": "model-a", "messages": [',
        headers={"content-type": "application/json"},
    )
    await client.post("/v1/nowhere", json={"model": "model-a"})
    await client.post(chat, json={"model": "model-b"})  # the mock answers 400


async def one_concurrent(client: httpx.AsyncClient, index: int) -> None:
    body: dict[str, Any] = {
        "model": ("model-a", "model-b")[index % 2],
        "messages": user(f"concurrent request number {index}"),
        "stream": index % 3 != 0,
    }
    if index % 4 == 1:
        body["tools"] = [WEATHER, CLOCK]
        body["messages"] = user(f"get_time for request {index}")
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        async for _ in response.aiter_bytes():
            await trio.sleep(0.001)  # keep the streams open side by side


async def other_doors(client: httpx.AsyncClient) -> None:
    """The Gemini and Anthropic front doors, with tools, streaming and not."""
    declaration = {"name": "get_weather", "parametersJsonSchema": WEATHER["function"]["parameters"]}
    gemini = {
        "contents": [{"role": "user", "parts": [{"text": "weather?"}]}],
        "tools": [{"functionDeclarations": [declaration]}],
    }
    await client.post(
        "/v1beta/models/model-a:generateContent",
        json=gemini,
        headers={"x-goog-api-key": "gm-secret"},  # the journal redacts keys, both ways
    )
    await client.post(
        "/v1beta/models/model-b:streamGenerateContent?alt=sse&key=gm-secret", json=gemini
    )
    tool = {"name": "get_time", "input_schema": CLOCK["function"]["parameters"]}
    anthropic = {"model": "model-a", "max_tokens": 64, "tools": [tool], "messages": user("time?")}
    headers = {"x-api-key": "sk-ant-secret", "anthropic-version": "2023-06-01"}
    await client.post("/v1/messages", json=anthropic, headers=headers)
    await client.post("/v1/messages", json={**anthropic, "stream": True}, headers=headers)


async def drive(base: str) -> None:
    await trio.to_thread.run_sync(sdk_calls, base)
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        await sequential(client)
        await other_doors(client)
        async with trio.open_nursery() as nursery:
            for index in range(CONCURRENT):
                nursery.start_soon(one_concurrent, client, index)


async def produce(log_file: Path) -> None:
    config = parse_config(CONFIG, path="test.toml", env={})
    ctx = build_context(config, default_backend="alpha", log_file=log_file)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve, ctx, "127.0.0.1", 0)
        await drive(f"http://127.0.0.1:{port}")
        nursery.cancel_scope.cancel()


def make_real_log(factory: pytest.TempPathFactory) -> Path:
    """The JSONL log of a real louter run (see the module docstring), made once per test
    session and shared by the modules' `real_log` fixtures. Read-only."""
    path = factory.getbasetemp() / "log-parser-real.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        trio.run(produce, partial)
        partial.rename(path)
    return path


@pytest.fixture
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_real_log(tmp_path_factory)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    return path


# --------------------------------------------------------------------------- other dialects


def _entry(request_id: str, direction: str, fmt: str, payload: Any, **extra: Any) -> dict[str, Any]:
    responding = direction.endswith("response")
    return {
        "timestamp": extra.pop("timestamp", "2026-01-01T10:00:00.000Z"),
        "request_id": request_id,
        "direction": direction,
        "format": fmt,
        "endpoint": extra.pop("endpoint", "/"),
        "backend": extra.pop("backend", "qwen"),
        "model": extra.pop("model", "qwen3-coder"),
        "status": 200 if responding else None,
        "latency_ms": 50.0 if responding else None,
        **extra,
        "payload": payload,
    }


def gemini_entries() -> list[dict[str, Any]]:
    endpoint = "/v1beta/models/qwen3-coder:generateContent"
    request = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather in Oslo?"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}, "id": "g1"}}
                ],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "get_weather",
                            "response": {"sky": "snow"},
                            "id": "g1",
                        }
                    }
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "get_weather", "parameters": {"type": "object"}},
                    {"name": "get_time"},
                ]
            }
        ],
    }
    response = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "get_time", "args": {}}}],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 4, "totalTokenCount": 34},
    }
    return [
        _entry("gem-1", "client_request", "gemini", request, endpoint=endpoint, backend=None),
        _entry("gem-1", "client_response", "gemini", response, endpoint=endpoint),
    ]


def anthropic_entries() -> list[dict[str, Any]]:
    request = {
        "model": "claude-x",
        "max_tokens": 100,
        "tools": [
            {"name": "read_file", "description": "Read a file", "input_schema": {"type": "object"}}
        ],
        "messages": [
            {"role": "user", "content": "show me README"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Reading it."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "read_file",
                        "input": {"path": "README.md"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "# louter"}
                ],
            },
        ],
    }
    response = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me list the files too."},
            {"type": "tool_use", "id": "toolu_2", "name": "list_files", "input": {}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 40, "output_tokens": 12},
    }
    return [
        _entry(
            "ant-1",
            "client_request",
            "anthropic",
            request,
            endpoint="/v1/messages",
            model="claude-x",
            backend=None,
        ),
        _entry(
            "ant-1",
            "client_response",
            "anthropic",
            response,
            endpoint="/v1/messages",
            model="claude-x",
        ),
    ]


def responses_entries() -> list[dict[str, Any]]:
    request = {
        "model": "gpt-x",
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}],
        "input": [
            {"role": "user", "content": "list files"},
            {
                "type": "function_call",
                "call_id": "fc_1",
                "name": "shell",
                "arguments": '{"cmd": "ls"}',
            },
            {"type": "function_call_output", "call_id": "fc_1", "output": "README.md"},
        ],
    }
    response = {
        "id": "resp_1",
        "output": [
            {"type": "function_call", "call_id": "fc_2", "name": "shell", "arguments": "{bad json"},
        ],
        "usage": {"input_tokens": 20, "output_tokens": 5},
    }
    stream_result = {
        "content": "",
        "tool_calls": [
            {"id": "fc_3", "type": "function", "function": {"name": "shell", "arguments": "{}"}}
        ],
        "finish_reason": "tool_calls",
        "usage": {"input_tokens": 21, "output_tokens": 3},
    }
    stream_extra = {"stream": True, "chunks": 5, "ttft_ms": 12.5}
    return [
        _entry(
            "rsp-1",
            "client_request",
            "responses",
            request,
            endpoint="/v1/responses",
            model="gpt-x",
            backend=None,
        ),
        _entry(
            "rsp-1",
            "client_response",
            "responses",
            response,
            endpoint="/v1/responses",
            model="gpt-x",
        ),
        _entry(
            "rsp-2",
            "client_request",
            "responses",
            {**request, "stream": True},
            endpoint="/v1/responses",
            model="gpt-x",
            backend=None,
        ),
        _entry(
            "rsp-2",
            "client_response",
            "responses",
            stream_result,
            endpoint="/v1/responses",
            model="gpt-x",
            **stream_extra,
        ),
    ]


def dialect_entries() -> list[dict[str, Any]]:
    return [*gemini_entries(), *anthropic_entries(), *responses_entries()]


# JSON objects, but not the shape of an entry: nothing may crash on them.
ODD_ENTRIES = [
    {},
    {"direction": ["client_response"], "backend": {"a": 1}, "model": [1], "status": "200"},
    {"direction": "client_response", "request_id": 7, "backend": [1], "model": {"m": 1},
     "status": [500], "format": None, "latency_ms": "slow", "ttft_ms": True, "stream": 1,
     "payload": {"usage": {"prompt_tokens": "x"}, "tool_calls": [{"function": "f"}, 3]}},
    {"direction": "error", "error_type": ["E"], "timestamp": 12, "endpoint": 5},
    {"direction": "client_request", "request_id": "r", "headers": ["h"], "path": None,
     "payload": {"messages": "hi", "tools": [{"function": "f"}, {"name": 3}, "t"],
                 "contents": [{"parts": [{"functionCall": "c"}]}], "input": [{"type": 1}]}},
    {"direction": "client_response", "request_id": "r", "payload": [1, 2]},
]  # fmt: skip


# --------------------------------------------------------------------------- processes


def run_log_parser(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [*LOG_PARSER, *args], input=stdin, capture_output=True, timeout=60, env=env, check=False
    )


# --------------------------------------------------------------------------- the log itself


def test_real_log_answers_every_exchange(real_log: Path) -> None:
    entries = read_jsonl(real_log)
    responses = [e for e in entries if e["direction"] == "client_response"]
    assert len(responses) == SEQUENTIAL + CONCURRENT
    assert {e["backend"] for e in responses} >= {"alpha", "beta"}
    assert any(e.get("stream") for e in responses)
    assert any(e["direction"] == "error" for e in entries)
    assert {(e["format"], bool(e.get("stream"))) for e in responses} == {
        (door, stream) for door in ("openai", "gemini", "anthropic") for stream in (False, True)
    }
    assert "secret" not in real_log.read_text()  # the keys sent were redacted


def test_real_log_interleaves_concurrent_exchanges(real_log: Path) -> None:
    """The pairs tests mean something only if exchanges really are interleaved."""
    order = [e["request_id"] for e in read_jsonl(real_log)]
    closed: set[str] = set()
    interleaved = False
    for previous, current in zip(order, order[1:], strict=False):
        if current != previous:
            closed.add(previous)
        interleaved |= current in closed
    assert interleaved
