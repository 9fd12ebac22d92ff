"""The fault suite (issue 8): every way a backend can fail, seen through each front door's
official SDK, against fake upstreams on 127.0.0.1.

The backend is an OpenAI-protocol fake (`tests/fakes.py`); the OpenAI door forwards to it
byte for byte, the Gemini and Anthropic doors convert. Each fault must reach the client as
the right error in its own dialect: an HTTP error with the upstream's (or louter's 502/504)
status before the answer started, the dialect's in-stream error event after.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
import trio
from google.genai import errors as genai_errors

from tests.conftest import StartLouter
from tests.fakes import (
    Close,
    FakeUpstream,
    Hang,
    JSONReply,
    SSEReply,
    chat_chunk,
    chat_completion,
    chat_stream,
    sse_events,
)
from tests.sdk import Clients, in_thread

# --------------------------------------------------------------------------- the doors


@dataclass(frozen=True)
class Door:
    """One front door as its SDK sees it."""

    name: str
    ask: Callable[[Clients, str, str], str]  # (sdk, base, model) -> answer text
    ask_stream: Callable[[Clients, str, str], str]  # the same, streamed
    error: type[BaseException]  # the SDK's base error class
    path: str  # the door's generate endpoint (raw requests)
    body: Callable[[str, bool], dict[str, Any]]  # (model, stream) -> raw request body

    def status(self, exc: BaseException) -> int | None:
        return getattr(exc, "status_code", None) or getattr(exc, "code", None)

    def headers(self, exc: BaseException) -> httpx.Headers:
        response = getattr(exc, "response", None)
        return response.headers if response is not None else httpx.Headers()


def _openai_ask(sdk: Clients, base: str, model: str) -> str:
    messages = [{"role": "user", "content": "hello"}]
    reply = sdk.openai(base).chat.completions.create(model=model, messages=messages)
    return reply.choices[0].message.content or ""


def _openai_stream(sdk: Clients, base: str, model: str) -> str:
    messages = [{"role": "user", "content": "hello"}]
    chunks = sdk.openai(base).chat.completions.create(model=model, messages=messages, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _gemini_ask(sdk: Clients, base: str, model: str) -> str:
    return sdk.gemini(base).models.generate_content(model=model, contents="hello").text or ""


def _gemini_stream(sdk: Clients, base: str, model: str) -> str:
    chunks = sdk.gemini(base).models.generate_content_stream(model=model, contents="hello")
    return "".join(chunk.text or "" for chunk in chunks)


def _anthropic_ask(sdk: Clients, base: str, model: str) -> str:
    messages: Any = [{"role": "user", "content": "hello"}]
    reply = sdk.anthropic(base).messages.create(model=model, max_tokens=50, messages=messages)
    return "".join(block.text for block in reply.content if block.type == "text")


def _anthropic_stream(sdk: Clients, base: str, model: str) -> str:
    messages: Any = [{"role": "user", "content": "hello"}]
    client = sdk.anthropic(base)
    with client.messages.stream(model=model, max_tokens=50, messages=messages) as stream:
        return "".join(stream.text_stream)


def _chat_body(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], "stream": stream}


def _gemini_body(model: str, stream: bool) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def _anthropic_body(model: str, stream: bool) -> dict[str, Any]:
    return {**_chat_body(model, stream), "max_tokens": 50}


OPENAI = Door(
    "openai", _openai_ask, _openai_stream, openai.APIError, "/v1/chat/completions", _chat_body
)
GEMINI = Door(
    "gemini",
    _gemini_ask,
    _gemini_stream,
    genai_errors.APIError,
    "/v1beta/models/{model}:streamGenerateContent?alt=sse",
    _gemini_body,
)
ANTHROPIC = Door(
    "anthropic", _anthropic_ask, _anthropic_stream, anthropic.APIError, "/v1/messages",
    _anthropic_body,
)  # fmt: skip
DOORS = [OPENAI, GEMINI, ANTHROPIC]
doors = pytest.mark.parametrize("door", DOORS, ids=[d.name for d in DOORS])


# --------------------------------------------------------------------------- set-up


def closed_port() -> int:
    """A port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def backend_toml(name: str, port: int, extra: str = "", model: str = "m") -> str:
    return (
        f'[backends.{name}]\nurl = "http://127.0.0.1:{port}/v1"\napi_key = "k-{name}"\n{extra}\n'
        f'[backends.{name}.model_mapping]\n"{model}" = "real-{name}"\n'
    )


def performance(**values: Any) -> str:
    lines = "".join(f"{key} = {orjson.dumps(value).decode()}\n" for key, value in values.items())
    return "[performance]\n" + lines


@pytest.fixture
async def fake(nursery: trio.Nursery) -> FakeUpstream:
    upstream = FakeUpstream()
    await nursery.start(upstream.serve)
    return upstream


def read_log(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


async def log_entries(path: Path, direction: str, count: int = 1) -> list[dict[str, Any]]:
    """The log's entries of `direction` once there are `count` of them."""
    with trio.fail_after(3):
        while len(found := [e for e in read_log(path) if e["direction"] == direction]) < count:
            await trio.sleep(0.01)
    return found


async def expect_error(door: Door, call: Callable[[], Any]) -> BaseException:
    with pytest.raises(door.error) as caught:
        await in_thread(call)
    return caught.value


STREAM_START = sse_events(chat_chunk("partial "), chat_chunk("answer"), done=False)


# --------------------------------------------------------------------------- before the answer


@doors
async def test_connection_refused_is_502(door: Door, sdk: Clients, start_louter: StartLouter):
    base = await start_louter(backend_toml("down", closed_port()))
    error = await expect_error(door, lambda: door.ask(sdk, base, "m"))
    assert door.status(error) == 502
    assert "cannot connect" in str(error)


@doors
async def test_accept_then_hang_is_504_and_the_upstream_is_dropped(
    door: Door, sdk: Clients, start_louter: StartLouter, fake: FakeUpstream
):
    fake.script(Hang())
    base = await start_louter(performance(timeout_seconds=0.3) + backend_toml("up", fake.port))
    started = trio.current_time()
    error = await expect_error(door, lambda: door.ask(sdk, base, "m"))
    assert door.status(error) == 504
    assert 0.25 <= trio.current_time() - started < 3
    with trio.fail_after(2):
        await fake.requests[0].connection.closed.wait()


@doors
async def test_upstream_500_keeps_status_and_message(
    door: Door, sdk: Clients, start_louter: StartLouter, fake: FakeUpstream
):
    body = {"error": {"message": "model crashed", "type": "server_error", "code": 500}}
    fake.script(JSONReply(body, status=500))
    base = await start_louter(backend_toml("up", fake.port))
    error = await expect_error(door, lambda: door.ask(sdk, base, "m"))
    assert door.status(error) == 500
    assert "model crashed" in str(error)


@doors
async def test_upstream_429_keeps_retry_after(
    door: Door, sdk: Clients, start_louter: StartLouter, fake: FakeUpstream
):
    body = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rl"}}
    fake.script(JSONReply(body, status=429, headers=[("retry-after", "7")]))
    base = await start_louter(backend_toml("up", fake.port))
    error = await expect_error(door, lambda: door.ask(sdk, base, "m"))
    assert door.status(error) == 429
    assert "slow down" in str(error)
    assert door.headers(error).get("retry-after") == "7"
    assert len(fake.requests) == 1  # max_retries = 0: louter did not retry


@doors
async def test_malformed_json_body_is_502(
    door: Door, sdk: Clients, start_louter: StartLouter, fake: FakeUpstream
):
    fake.script(JSONReply(b'{"id": "x", "choices": [{"message": {"content": "cut'))
    base = await start_louter(backend_toml("up", fake.port))
    error = await expect_error(door, lambda: door.ask(sdk, base, "m"))
    assert door.status(error) == 502
    assert "not JSON" in str(error)


@doors
async def test_body_stalling_after_the_head_is_504(
    door: Door, sdk: Clients, start_louter: StartLouter, fake: FakeUpstream
):
    """The head arrived, then the body stopped: the idle timeout bounds the wait."""
    fake.script(SSEReply([b'{"error": {"message": "cut'], status=500, end="hang"))
    config = performance(stream_idle_timeout_seconds=0.4) + backend_toml("up", fake.port)
    base = await start_louter(config)
    started = trio.current_time()
    error = await expect_error(door, lambda: door.ask(sdk, base, "m"))
    assert door.status(error) == 504
    assert "no data for 0.4s" in str(error)
    assert 0.4 <= trio.current_time() - started < 3


@doors
async def test_upstream_closing_without_answer_is_502(
    door: Door, sdk: Clients, start_louter: StartLouter, fake: FakeUpstream
):
    fake.script(Close())
    base = await start_louter(backend_toml("up", fake.port))
    error = await expect_error(door, lambda: door.ask(sdk, base, "m"))
    assert door.status(error) == 502


# --------------------------------------------------------------------------- mid-stream


@doors
async def test_malformed_sse_line_ends_the_stream_with_an_error_event(
    door: Door, sdk: Clients, start_louter: StartLouter, fake: FakeUpstream, tmp_path: Path
):
    fake.script(SSEReply([STREAM_START, b"data: {not json}\n\n", chat_stream(["more"])]))
    log = tmp_path / "louter.jsonl"
    base = await start_louter(backend_toml("up", fake.port), log_file=log)
    error = await expect_error(door, lambda: door.ask_stream(sdk, base, "m"))
    assert "not JSON" in str(error)
    (entry,) = await log_entries(log, "error")
    assert entry["status"] == 502 and "not JSON" in entry["error"]


@doors
@pytest.mark.parametrize("end", ["close", "reset"])
async def test_stream_cut_midway_gives_the_error_event_and_a_log_record(
    door: Door,
    end: str,
    sdk: Clients,
    start_louter: StartLouter,
    fake: FakeUpstream,
    tmp_path: Path,
):
    fake.script(SSEReply([STREAM_START], end=end))
    log = tmp_path / "louter.jsonl"
    base = await start_louter(backend_toml("up", fake.port), log_file=log)
    error = await expect_error(door, lambda: door.ask_stream(sdk, base, "m"))
    assert "mid-response" in str(error)
    (entry,) = await log_entries(log, "error")
    assert entry["status"] == 502 and entry["backend"] == "up"
    assert "mid-response" in entry["error"]
    (answer,) = await log_entries(log, "client_response")
    assert answer["payload"]["content"] == "partial answer"  # what the client got before


@doors
async def test_silent_stream_is_ended_by_the_idle_timeout(
    door: Door, sdk: Clients, start_louter: StartLouter, fake: FakeUpstream, tmp_path: Path
):
    fake.script(SSEReply([STREAM_START], end="hang"))
    log = tmp_path / "louter.jsonl"
    config = performance(stream_idle_timeout_seconds=0.4) + backend_toml("up", fake.port)
    base = await start_louter(config, log_file=log)
    started = trio.current_time()
    error = await expect_error(door, lambda: door.ask_stream(sdk, base, "m"))
    assert "sent nothing for 0.4s" in str(error)
    assert 0.4 <= trio.current_time() - started < 3
    (entry,) = await log_entries(log, "error")
    assert "sent nothing" in entry["error"]
    with trio.fail_after(2):
        await fake.requests[0].connection.closed.wait()


@doors
async def test_long_healthy_stream_outlives_the_timeouts(
    door: Door, sdk: Clients, start_louter: StartLouter, fake: FakeUpstream
):
    pieces = [f"p{i} " for i in range(10)]
    raw = chat_stream(pieces)
    events = [event + b"\n\n" for event in raw.split(b"\n\n") if event]
    fake.script(SSEReply(events, pause=0.15))
    config = performance(timeout_seconds=0.5, stream_idle_timeout_seconds=0.5)
    base = await start_louter(config + backend_toml("up", fake.port))
    started = trio.current_time()
    assert await in_thread(lambda: door.ask_stream(sdk, base, "m")) == "".join(pieces)
    assert trio.current_time() - started > 1.0  # well beyond both timeouts


# --------------------------------------------------------------------------- client disconnect


async def raw_post(base: str, path: str, body: dict[str, Any]) -> trio.SocketStream:
    port = int(base.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    data = orjson.dumps(body)
    await stream.send_all(
        b"POST %b HTTP/1.1\r\nhost: louter\r\ncontent-type: application/json\r\n"
        b"x-api-key: k\r\ncontent-length: %d\r\n\r\n%b" % (path.encode(), len(data), data)
    )
    return stream


@doors
async def test_client_disconnect_mid_stream_cancels_the_upstream(
    door: Door, start_louter: StartLouter, fake: FakeUpstream, tmp_path: Path
):
    fake.script(SSEReply([STREAM_START], end="hang"))
    log = tmp_path / "louter.jsonl"
    base = await start_louter(backend_toml("up", fake.port), log_file=log)
    stream = await raw_post(base, door.path.format(model="m"), door.body("m", True))
    received = b""
    with trio.fail_after(3):
        while b"partial" not in received:
            received += await stream.receive_some()
    await stream.aclose()
    with trio.fail_after(2):
        await fake.requests[0].connection.closed.wait()
    (entry,) = await log_entries(log, "error")
    assert entry["status"] == 499


@doors
async def test_client_disconnect_before_the_answer_cancels_the_upstream(
    door: Door, start_louter: StartLouter, fake: FakeUpstream, tmp_path: Path
):
    """The client leaves while louter still waits for the first byte (a slow model)."""
    fake.script(Hang())
    log = tmp_path / "louter.jsonl"
    base = await start_louter(backend_toml("up", fake.port), log_file=log)
    stream = await raw_post(base, door.path.format(model="m"), door.body("m", False))
    await fake.wait_requests(1)
    await stream.aclose()
    with trio.fail_after(2):  # the watchdog looks every 0.5 s
        await fake.requests[0].connection.closed.wait()
    (entry,) = await log_entries(log, "error")
    assert entry["status"] == 499 and "before the answer" in entry["error"]
    # louter is fine and the backend is not blamed for the client leaving
    fake.script(JSONReply(chat_completion("fine")))
    async with httpx.AsyncClient() as http:
        health = (await http.get(base + "/health")).json()
    assert health["backends"]["up"]["consecutive_failures"] == 0
