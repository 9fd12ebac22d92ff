"""The OpenAI front door end to end: real HTTP on 127.0.0.1, louter in-process.

Clients are the official `openai` SDK (sync, in a worker thread) and raw `httpx`; backends
are the built-in mock and the scriptable fake upstream of `tests/fakes.py`.
"""

from __future__ import annotations

import functools
import gc
import socket
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import trio

from louter.convert.sse import SSEDecoder
from louter.proxy.door import HEAD_FROM
from tests.fakes import (
    Close,
    FakeUpstream,
    Hang,
    JSONReply,
    Recorded,
    SSEReply,
    awkward_chunks,
    chat_chunk,
    chat_stream,
    sse_events,
)

CLIENT_KEY = "sk-client-secret-4f1c"
UPSTREAM_KEY = "sk-upstream"
IMAGE_URL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
    "DwABBAEAghP9WQAAAABJRU5ErkJggg=="
)
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 2, "maximum": 10},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "hourly": {"type": "boolean"},
            },
            "required": ["city", "days"],
        },
    },
}


def sdk(base: str, key: str = CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=10)


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def chat(base: str, **kwargs: Any) -> Any:
    with sdk(base) as client:
        return client.chat.completions.create(**kwargs)


def chat_streamed(base: str, **kwargs: Any) -> list[Any]:
    with sdk(base) as client:
        return list(client.chat.completions.create(stream=True, **kwargs))


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def streamed_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_reasons(chunks: list[Any]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def sse_data(raw: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [event.data for event in [*decoder.feed(raw), *decoder.flush()]]


def up_config(port: int, *, backend_extra: str = "", top: str = "") -> str:
    return f"""
{top}
[backends.up]
url = "http://127.0.0.1:{port}/v1/"
api_key = "{UPSTREAM_KEY}"
max_tokens = 77
temperature = 0.3
{backend_extra}

[backends.up.model_mapping]
"client-model" = "real-model"
"""


@pytest.fixture
async def fake(nursery: trio.Nursery) -> FakeUpstream:
    upstream = FakeUpstream()
    await nursery.start(upstream.serve)
    return upstream


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    return error


# =========================================================================== the mock backend


async def test_sdk_non_streaming(start_louter):
    base = await start_louter()
    reply = await in_thread(chat, base, model="any-model", messages=user("hello there"))
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == 'Mock answer to: "hello there" (images: 0)'
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 7)


async def test_sdk_streaming_reassembles_to_the_non_streaming_answer(start_louter):
    base = await start_louter()
    messages = user("tell me a story about ünïcode 🦀")
    whole = await in_thread(chat, base, model="m", messages=messages)
    chunks = await in_thread(chat_streamed, base, model="m", messages=messages)
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    assert streamed_text(chunks) == whole.choices[0].message.content
    assert finish_reasons(chunks) == ["stop"]


async def test_sdk_tool_call(start_louter):
    base = await start_louter()
    reply = await in_thread(
        chat, base, model="m", messages=user("what's the weather in Paris?"), tools=[WEATHER_TOOL]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    arguments = orjson.loads(call.function.arguments)
    assert arguments == {"city": "mock-city", "days": 2, "unit": "celsius", "hourly": True}
    schema = WEATHER_TOOL["function"]["parameters"]
    assert set(schema["required"]) <= set(arguments) <= set(schema["properties"])
    assert isinstance(arguments["days"], int) and 2 <= arguments["days"] <= 10
    assert arguments["unit"] in schema["properties"]["unit"]["enum"]


async def test_sdk_streaming_tool_call(start_louter):
    base = await start_louter()
    kwargs = {"model": "m", "messages": user("weather please"), "tools": [WEATHER_TOOL]}
    whole = await in_thread(chat, base, **kwargs)
    chunks = await in_thread(chat_streamed, base, **kwargs)
    calls: dict[int, dict[str, str]] = defaultdict(lambda: {"id": "", "name": "", "args": ""})
    fragments = 0
    for chunk in chunks:
        for fragment in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            fragments += 1
            call = calls[fragment.index]
            call["id"] = call["id"] or fragment.id or ""
            call["name"] = call["name"] or (fragment.function.name or "")
            call["args"] += fragment.function.arguments or ""
    assert fragments > 2  # the arguments really arrive in pieces
    (expected,) = whole.choices[0].message.tool_calls
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather"
    assert orjson.loads(calls[0]["args"]) == orjson.loads(expected.function.arguments)
    assert orjson.loads(calls[0]["args"])["days"] == 2
    assert finish_reasons(chunks) == ["tool_calls"]


async def test_sdk_image_input_is_counted(start_louter):
    base = await start_louter()
    content = [
        {"type": "text", "text": "describe"},
        {"type": "image_url", "image_url": {"url": IMAGE_URL}},
    ]
    reply = await in_thread(chat, base, model="m", messages=[{"role": "user", "content": content}])
    assert reply.choices[0].message.content == 'Mock answer to: "describe" (images: 1)'


async def test_sdk_max_tokens_truncates_with_finish_reason_length(start_louter):
    base = await start_louter()
    reply = await in_thread(chat, base, model="m", messages=user("a b c d"), max_tokens=3)
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == "Mock answer to:"
    chunks = await in_thread(chat_streamed, base, model="m", messages=user("a b c"), max_tokens=2)
    assert streamed_text(chunks) == "Mock answer"
    assert finish_reasons(chunks) == ["length"]


async def test_sdk_models_list_has_mapped_names_and_backend_names(start_louter):
    base = await start_louter(
        """
[backends.fast]
protocol = "mock"
[backends.fast.model_mapping]
"gpt-4o" = "mock-4o"
"house-model" = "mock-house"

[backends.spare]
protocol = "mock"
"""
    )

    def list_models() -> dict[str, str]:
        with sdk(base) as client:
            return {model.id: model.owned_by for model in client.models.list()}

    models = await in_thread(list_models)
    assert models["gpt-4o"] == models["house-model"] == "fast"
    assert models["fast"] == "fast" and models["spare"] == "spare" and models["mock"] == "mock"
    # the mapped name routes to its backend, which answers under the backend's name
    reply = await in_thread(chat, base, model="gpt-4o", messages=user("hi"))
    assert reply.model == "mock-4o"


# =========================================================================== the fake upstream


RAW_COMPLETION = (
    b'{"id": "chatcmpl-raw",  "object": "chat.completion", "created": 1, "model": "real-model",'
    b' "choices": [{"index": 0, "message": {"role": "assistant",'
    b' "content": "caf\\u00e9 \xe2\x98\x95"},'
    b' "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 2,'
    b' "total_tokens": 3}, "timings": {"predicted_ms": 1.50}}\n'
)
EXTRA_FIELDS: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "héllo"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ],
    "top_p": 0.9,
    "seed": 12345678901234,
    "stop": ["\n\n", "END"],
    "response_format": {"type": "json_object"},
    "logit_bias": {"50256": -100},
    "user": "u-1",
    "x_vendor_extension": {"nested": [1, 2.5, None, True, "ü"]},
}


async def test_forwarded_request_and_byte_exact_response(start_louter, fake, http):
    fake.script(JSONReply(RAW_COMPLETION, headers=[("x-upstream-thing", "yes")]))
    base = await start_louter(up_config(fake.port))
    body = {"model": "client-model", **EXTRA_FIELDS}
    response = await http.post(
        base + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {CLIENT_KEY}", "user-agent": "test-agent/1"},
    )
    assert response.status_code == 200
    assert response.content == RAW_COMPLETION
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-upstream-thing"] == "yes"

    (seen,) = fake.requests
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.json == {**body, "model": "real-model", "max_tokens": 77, "temperature": 0.3}
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"] == "test-agent/1"
    assert not any(CLIENT_KEY in value for value in seen.headers.values())


async def test_client_values_win_over_backend_defaults(start_louter, fake, http):
    fake.default = JSONReply(RAW_COMPLETION)
    base = await start_louter(up_config(fake.port))
    explicit = {"model": "client-model", "messages": user("x"), "max_tokens": 5, "temperature": 0.0}
    unmapped = {"model": "other-model", "messages": user("x"), "temperature": 1.5}
    for body in (explicit, unmapped):
        response = await http.post(base + "/v1/chat/completions", json=body)
        assert response.status_code == 200
    assert fake.requests[0].json == {**explicit, "model": "real-model"}
    # a name no backend maps goes to the default backend, passed through unchanged
    assert fake.requests[1].json == {**unmapped, "max_tokens": 77}
    # louter's pool reused the upstream connection
    assert fake.requests[0].connection is fake.requests[1].connection


async def test_max_tokens_field_renames_the_clients_max_tokens(start_louter, fake, http):
    fake.default = JSONReply(RAW_COMPLETION)
    base = await start_louter(
        up_config(fake.port, backend_extra='max_tokens_field = "max_completion_tokens"')
    )
    for extra in ({"max_tokens": 5}, {}, {"max_completion_tokens": 9}):
        body = {"model": "client-model", "messages": user("x"), **extra}
        assert (await http.post(base + "/v1/chat/completions", json=body)).status_code == 200
    sent = [r.json for r in fake.requests]
    assert [(s.get("max_completion_tokens"), "max_tokens" in s) for s in sent] == [
        (5, False),
        (77, False),
        (9, False),
    ]
    assert sent[0] == {
        "model": "real-model",
        "messages": user("x"),
        "max_completion_tokens": 5,
        "temperature": 0.3,
    }


async def test_backend_without_key_forwards_the_clients_authorization(start_louter, fake, http):
    fake.default = JSONReply(RAW_COMPLETION)
    base = await start_louter(
        f"""
[backends.open]
url = "http://127.0.0.1:{fake.port}"
"""
    )
    response = await http.post(
        base + "/v1/chat/completions",
        json={"model": "m", "messages": user("x")},
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
    )
    assert response.status_code == 200
    (seen,) = fake.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {CLIENT_KEY}"
    assert seen.json == {"model": "m", "messages": user("x")}


STREAM_PIECES = ["Grüße, ", "wörld ", "— 日本語 ", "🦀 done"]
STREAM_BYTES = chat_stream(STREAM_PIECES)


async def test_stream_bytes_pass_through_unchanged(start_louter, fake, http):
    assert any(b >= 0x80 for b in STREAM_BYTES)
    fake.script(SSEReply(awkward_chunks(STREAM_BYTES), headers=[("x-upstream-thing", "s")]))
    base = await start_louter(up_config(fake.port))
    body = {"model": "client-model", "messages": user("x"), "stream": True}
    async with http.stream("POST", base + "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["x-upstream-thing"] == "s"
        received = b"".join([chunk async for chunk in response.aiter_raw()])
    assert received == STREAM_BYTES
    assert fake.requests[0].json["stream"] is True


async def test_sdk_stream_through_fake_reassembles(start_louter, fake):
    fake.script(SSEReply(awkward_chunks(STREAM_BYTES)))
    base = await start_louter(up_config(fake.port))
    chunks = await in_thread(chat_streamed, base, model="client-model", messages=user("x"))
    assert streamed_text(chunks) == "".join(STREAM_PIECES)
    assert finish_reasons(chunks) == ["stop"]
    assert fake.requests[0].json["model"] == "real-model"


async def test_stream_is_delivered_incrementally(start_louter, fake, http):
    release = trio.Event()
    first = sse_events(chat_chunk("first"), done=False)
    rest = sse_events(chat_chunk("second"), chat_chunk(finish="stop"))
    fake.script(SSEReply([first, rest], hold_after=1, release=release))
    base = await start_louter(up_config(fake.port))
    body = {"model": "client-model", "messages": user("x"), "stream": True}
    async with http.stream("POST", base + "/v1/chat/completions", json=body) as response:
        chunks = response.aiter_raw()
        with trio.fail_after(2):
            seen = b""
            while len(seen) < len(first):
                seen += await chunks.__anext__()
        assert seen == first  # before the upstream released the rest
        release.set()
        seen += b"".join([chunk async for chunk in chunks])
    assert seen == first + rest


# =========================================================================== error paths


async def test_backend_down_is_a_502_envelope(start_louter, http):
    base = await start_louter(f'[backends.down]\nurl = "http://127.0.0.1:{closed_port()}"\n')
    response = await http.post(
        base + "/v1/chat/completions", json={"model": "m", "messages": user("x")}
    )
    error = assert_openai_error(response, 502)
    assert error["type"] == "api_error"


async def test_upstream_closing_without_answer_is_a_502(start_louter, fake, http):
    fake.script(Close())
    base = await start_louter(up_config(fake.port))
    response = await http.post(
        base + "/v1/chat/completions", json={"model": "client-model", "messages": user("x")}
    )
    assert_openai_error(response, 502)
    assert len(fake.requests) == 1  # a fresh connection closing is not retried


async def test_slow_first_byte_is_a_quick_504(start_louter, fake, http):
    fake.script(Hang())
    base = await start_louter(up_config(fake.port, top="[performance]\ntimeout_seconds = 0.3"))
    started = trio.current_time()
    response = await http.post(
        base + "/v1/chat/completions", json={"model": "client-model", "messages": user("x")}
    )
    elapsed = trio.current_time() - started
    assert_openai_error(response, 504)
    assert 0.25 <= elapsed < 3
    with trio.fail_after(2):  # louter gave up on the upstream request
        await fake.requests[0].connection.closed.wait()


async def test_long_stream_with_quick_first_byte_is_not_cut(start_louter, fake, http):
    pieces = [f"part{i} " for i in range(8)]
    raw = chat_stream(pieces)
    fake.script(SSEReply(awkward_chunks(raw, bytewise=0, stride=len(raw) // 7), pause=0.1))
    base = await start_louter(up_config(fake.port, top="[performance]\ntimeout_seconds = 0.3"))
    body = {"model": "client-model", "messages": user("x"), "stream": True}
    started = trio.current_time()
    async with http.stream("POST", base + "/v1/chat/completions", json=body) as response:
        received = b"".join([chunk async for chunk in response.aiter_raw()])
    assert trio.current_time() - started > 0.6  # well beyond timeout_seconds
    assert received == raw


RATE_LIMIT = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rl"}}


async def test_upstream_429_passes_through_with_retry_after(start_louter, fake, http):
    fake.default = JSONReply(RATE_LIMIT, status=429, headers=[("retry-after", "7")])
    base = await start_louter(up_config(fake.port))
    response = await http.post(
        base + "/v1/chat/completions", json={"model": "client-model", "messages": user("x")}
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.content == orjson.dumps(RATE_LIMIT)

    with pytest.raises(openai.RateLimitError) as caught:
        await in_thread(chat, base, model="client-model", messages=user("x"))
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.response.json() == RATE_LIMIT
    assert len(fake.requests) == 2  # max_retries=0: no retry by the SDK, none by louter


async def test_upstream_500_body_and_status_pass_through(start_louter, fake, http):
    raw = b'{"error":{"code":500,"message":"Failed to parse input","type":"server_error"}}'
    fake.script(JSONReply(raw, status=500))
    base = await start_louter(up_config(fake.port))
    response = await http.post(
        base + "/v1/chat/completions", json={"model": "client-model", "messages": user("x")}
    )
    assert response.status_code == 500
    assert response.content == raw


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"model": "m", "messages": [', "not valid JSON"),
        (b"", "not valid JSON"),
        (b'["model", "m"]', "JSON object"),
        (b'"just a string"', "JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "", "messages": []}', "model"),
        (b'{"model": 7, "messages": []}', "model"),
    ],
)
async def test_bad_request_bodies_are_400(start_louter, http, body, words):
    base = await start_louter()
    response = await http.post(
        base + "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    error = assert_openai_error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert words in error["message"]


async def test_unknown_route_is_404_json(start_louter, http):
    base = await start_louter()
    response = await http.post(base + "/v1/nothing/here", json={})
    assert_openai_error(response, 404)
    assert_openai_error(await http.get(base + "/"), 404)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("POST", "/v1/models", "GET"),
        ("DELETE", "/health", "GET"),
    ],
)
async def test_wrong_method_is_405_with_allow(start_louter, http, method, path, allow):
    base = await start_louter()
    response = await http.request(method, base + path)
    assert_openai_error(response, 405)
    assert response.headers["allow"] == allow


async def raw_request(port: int, body: dict[str, Any]) -> trio.SocketStream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    data = orjson.dumps(body)
    await stream.send_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: louter\r\ncontent-type: application/json"
        b"\r\ncontent-length: %d\r\n\r\n%b" % (len(data), data)
    )
    return stream


@pytest.mark.parametrize("upstream", ["waits", "floods"])
async def test_client_disconnect_mid_stream_cancels_the_upstream(
    start_louter, fake, http, upstream
):
    first = sse_events(chat_chunk("first"), done=False)
    more = sse_events(chat_chunk("more"), done=False)
    if upstream == "waits":  # louter is waiting for the upstream when the client leaves
        fake.script(SSEReply([first, more], end="hang"))
    else:  # louter is blocked writing to a client that stopped reading, then left
        fake.script(SSEReply([first] + [more * 50] * 400, pause=0))
    base = await start_louter(up_config(fake.port))
    port = int(base.rsplit(":", 1)[1])
    stream = await raw_request(
        port, {"model": "client-model", "messages": user("x"), "stream": True}
    )
    received = b""
    with trio.fail_after(2):
        while b"data: " not in received:
            received += await stream.receive_some()
    assert received.startswith(b"HTTP/1.1 200 ")
    await stream.aclose()
    with trio.fail_after(2):
        await fake.requests[0].connection.closed.wait()

    # louter is still healthy and serves the next request on a fresh upstream connection
    assert (await http.get(base + "/health")).status_code == 200
    fake.script(JSONReply(RAW_COMPLETION))
    response = await http.post(
        base + "/v1/chat/completions", json={"model": "client-model", "messages": user("x")}
    )
    assert response.content == RAW_COMPLETION
    assert fake.requests[1].connection is not fake.requests[0].connection
    gc.collect()  # an abandoned upstream generator would warn (an error here) when collected


STREAM_START = sse_events(chat_chunk("partial "), chat_chunk("answer"), done=False)


@pytest.mark.parametrize(
    "end",
    [
        "close",
        "reset",
    ],
)
async def test_upstream_dying_mid_stream_gives_an_in_stream_error(start_louter, fake, http, end):
    fake.script(SSEReply(awkward_chunks(STREAM_START), end=end))
    base = await start_louter(up_config(fake.port))
    body = {"model": "client-model", "messages": user("x"), "stream": True}
    async with http.stream("POST", base + "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        with trio.fail_after(3):
            received = b"".join([chunk async for chunk in response.aiter_raw()])  # ends cleanly
    assert received.startswith(STREAM_START)
    events = sse_data(received[len(STREAM_START) :])
    assert len(events) == 1
    error = orjson.loads(events[0])["error"]
    assert error["message"]

    with pytest.raises(openai.APIError, match=error["message"][:20]):  # the SDK surfaces it
        fake.script(SSEReply([STREAM_START], end=end))
        await in_thread(chat_streamed, base, model="client-model", messages=user("x"))


async def test_upstream_dying_mid_event_still_gives_a_parseable_error(start_louter, fake, http):
    cut = STREAM_START + b'data: {"choices": [{"delta": {"con'
    fake.script(SSEReply([cut], end="close"))
    base = await start_louter(up_config(fake.port))
    body = {"model": "client-model", "messages": user("x"), "stream": True}
    async with http.stream("POST", base + "/v1/chat/completions", json=body) as response:
        received = b"".join([chunk async for chunk in response.aiter_raw()])
    last = sse_data(received)[-1]
    assert "error" in orjson.loads(last)


# =========================================================================== the JSONL log


async def wait_for_lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The log's entries once it has `count` lines (the last entries of a stream are
    written just after its final chunk went out)."""
    with trio.fail_after(3):
        while len(lines := path.read_bytes().splitlines()) < count:
            await trio.sleep(0.01)
    return [orjson.loads(line) for line in lines]


async def test_log_of_concurrent_streams(start_louter, fake, tmp_path, http):
    count = 20

    def answer(request: Recorded) -> SSEReply:
        number = request.json["messages"][0]["content"].rsplit(" ", 1)[1]
        pieces = ["Answer ", "for ", f"#{number}: ", "ünï", "code"]
        return SSEReply(awkward_chunks(chat_stream(pieces), bytewise=8, stride=40))

    fake.default = answer
    log = tmp_path / "louter.jsonl"
    base = await start_louter(up_config(fake.port), log_file=log)
    expected: dict[str, str] = {}

    async def one(number: int) -> None:
        body = {"model": "client-model", "messages": user(f"request {number}"), "stream": True}
        headers = {"authorization": f"Bearer {CLIENT_KEY}", "x-api-key": CLIENT_KEY}
        url = base + f"/v1/chat/completions?key={CLIENT_KEY}&alt=sse"
        async with http.stream("POST", url, json=body, headers=headers) as response:
            assert response.status_code == 200
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        text = "".join(
            orjson.loads(data)["choices"][0]["delta"].get("content", "")
            for data in sse_data(raw)
            if data != "[DONE]"
        )
        assert text == f"Answer for #{number}: ünïcode"
        expected[response.headers["x-louter-request-id"]] = text

    async with trio.open_nursery() as nursery:
        for number in range(count):
            nursery.start_soon(one, number)

    entries = await wait_for_lines(log, 4 * count)
    raw_log = log.read_text()
    assert CLIENT_KEY not in raw_log and UPSTREAM_KEY not in raw_log
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_id[entry["request_id"]].append(entry)
    assert set(by_id) == set(expected)
    for request_id, group in by_id.items():
        directions = [e["direction"] for e in group]
        assert sorted(directions) == sorted(
            ["client_request", "backend_request", "backend_response", "client_response"]
        ), directions
        found = {e["direction"]: e for e in group}
        client_request = found["client_request"]
        assert client_request["path"] == "/v1/chat/completions?key=[REDACTED]&alt=sse"
        assert client_request["headers"]["authorization"] == "[REDACTED]"
        assert client_request["headers"]["x-api-key"] == "[REDACTED]"
        assert client_request["payload"]["model"] == "client-model"
        assert found["backend_request"]["payload"]["model"] == "real-model"
        for direction in ("backend_response", "client_response"):
            entry = found[direction]
            assert entry["status"] == 200
            assert entry["chunks"] >= 1
            assert isinstance(entry["ttft_ms"], int | float) and entry["ttft_ms"] >= 0
            assert entry["payload"]["content"] == expected[request_id]
            assert entry["payload"]["finish_reason"] == "stop"


async def test_client_leaving_after_done_is_a_complete_exchange(start_louter, fake, tmp_path):
    """A client may close as soon as it has `[DONE]`; the upstream then still owes its
    terminating chunk. That is a finished answer, not a disconnect error."""
    fake.script(SSEReply([chat_stream(["all ", "there"])], end="hang"))
    log = tmp_path / "louter.jsonl"
    base = await start_louter(up_config(fake.port), log_file=log)
    port = int(base.rsplit(":", 1)[1])
    body = orjson.dumps({"model": "client-model", "messages": user("x"), "stream": True})
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%b" % (len(body), body)
    )
    received = b""
    with trio.fail_after(3):
        while b"data: [DONE]" not in received:
            received += await stream.receive_some()
    await stream.aclose()
    entries = await wait_for_lines(log, 4)
    directions = [e["direction"] for e in entries]
    assert directions == [
        "client_request",
        "backend_request",
        "backend_response",
        "client_response",
    ]
    assert entries[-1]["payload"]["content"] == "all there"


# Text that makes a body as large as an agent's request: its head alone is read (door.py)
AGENT_SIZED = b"You are a careful agent. " * (HEAD_FROM // 25 + 1)


async def test_a_forwarded_body_keeps_its_bytes_but_the_model(start_louter, fake, http):
    """Same dialect, nothing else to change: the upstream gets the client's bytes (its
    spacing, key order, number forms, escapes) with the backend's model name written in;
    a backend default to add re-serialises the body instead."""
    fake.default = JSONReply(RAW_COMPLETION)
    base = await start_louter(up_config(fake.port))
    body = (
        b'{"messages": [{"role": "system", "content": "%b"},\n'
        b'  {"role": "user", "content": "caf\\u00e9 \\/ 1"}],\n'
        b'  "model" : "client-model", "max_tokens": 5, "temperature": 1.0e0, "n": 1}'
    ) % AGENT_SIZED
    headers = {"content-type": "application/json"}
    response = await http.post(base + "/v1/chat/completions", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert fake.requests[0].body == body.replace(b'"client-model"', b'"real-model"')
    defaults = b'{"model": "client-model", "messages": [{"role": "user", "content": "%b"}]}'
    defaults %= AGENT_SIZED
    response = await http.post(base + "/v1/chat/completions", content=defaults, headers=headers)
    assert response.status_code == 200, response.text
    assert fake.requests[1].json == {
        **orjson.loads(defaults),
        "model": "real-model",
        "max_tokens": 77,
        "temperature": 0.3,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"model": "client-model", "messages": [], "x": 1e400, "%b": 0}', "not valid JSON"),
        (b'{"model": 7, "messages": [], "%b": 0}', "'model' is required"),
        (b'{"model": "bad model", "messages": [], "%b": 0}', "invalid model name"),
    ],
)
async def test_a_body_read_by_its_head_is_refused_as_before(
    start_louter, fake, http, body: bytes, message: str
):
    """What the head does not check, the full parse a conversion needs does (here: an
    Anthropic backend); what it checks gets the same 400 as a parsed body."""
    base = await start_louter(up_config(fake.port, backend_extra='protocol = "anthropic"'))
    response = await http.post(
        base + "/v1/chat/completions",
        content=body % AGENT_SIZED,
        headers={"content-type": "application/json"},
    )
    error = assert_openai_error(response, 400)
    assert message in error["message"]
    assert fake.requests == []
