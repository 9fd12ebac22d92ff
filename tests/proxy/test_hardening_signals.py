"""Graceful stop (issue 16 part 5): SIGTERM lets the answers in flight finish, refuses
new connections, closes idle ones, logs every exchange's end and exits 0; a stream that
outlives `drain_seconds` ends with the dialect's error event; a second signal stops at
once (exit status 1). louter runs as a subprocess in front of an in-process fake upstream."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from louter.config import parse_config
from louter.errors import ConfigError
from tests.fakes import (
    FakeUpstream,
    Hang,
    JSONReply,
    SSEReply,
    chat_chunk,
    chat_completion,
    sse_events,
)
from tests.hardening import Louter, log_entries, logged_ids

DIRECTIONS = ["client_request", "backend_request", "backend_response", "client_response"]
PIECES = ["one ", "two ", "three ", "four ", "five"]


def _config(url: str, drain_seconds: float) -> str:
    return (
        f"[server]\ndrain_seconds = {drain_seconds}\n"
        f'[backends.up]\nprotocol = "openai"\nurl = "{url}"\napi_key = "k"\n'
    )


def _stream_reply(release: trio.Event) -> SSEReply:
    """Two events at once, the rest (0.05 s apart) once `release` is set."""
    chunks = [sse_events(chat_chunk(p), done=False) for p in PIECES]
    chunks.append(sse_events(chat_chunk(finish="stop")))
    return SSEReply(chunks, pause=0.05, hold_after=2, release=release)


def _body(stream: bool) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}


async def _stream(base: str, into: dict[str, Any], first: trio.Event) -> None:
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=_body(True)) as response,
    ):
        into["response"] = response
        into["body"] = b""
        try:
            async for data in response.aiter_raw():
                into["body"] += data
                first.set()
        except httpx.RemoteProtocolError as exc:
            into["cut"] = exc


async def _whole(base: str, into: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        try:
            into["response"] = await client.post("/v1/chat/completions", json=_body(False))
        except httpx.RemoteProtocolError as exc:
            into["cut"] = exc


async def _stderr_has(louter: Louter, text: str, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while text not in louter.stderr:
            await trio.sleep(0.02)


async def _exit_status(louter: Louter, timeout: float = 15) -> int:
    return await trio.to_thread.run_sync(lambda: louter.proc.wait(timeout=timeout))


async def _start_both(
    nursery: trio.Nursery, fake: FakeUpstream, louter: Louter
) -> tuple[dict[str, Any], dict[str, Any]]:
    whole: dict[str, Any] = {}
    streamed: dict[str, Any] = {}
    first = trio.Event()
    nursery.start_soon(_whole, louter.base, whole)
    await fake.wait_requests(1)
    nursery.start_soon(_stream, louter.base, streamed, first)
    await fake.wait_requests(2)
    with trio.fail_after(5):
        await first.wait()
    return whole, streamed


async def _refused(port: int) -> None:
    """New connections are refused (soon: the listening socket closes right after the
    signal was reported)."""
    with trio.fail_after(2):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                return
            await stream.aclose()
            await trio.sleep(0.05)


async def _idle_connection(port: int) -> trio.SocketStream:
    idle = await trio.open_tcp_stream("127.0.0.1", port)
    await idle.send_all(b"GET /health HTTP/1.1\r\nhost: louter\r\n\r\n")
    assert (await idle.receive_some()).startswith(b"HTTP/1.1 200")
    return idle


async def test_sigterm_lets_answers_in_flight_finish(tmp_path: Path, nursery: trio.Nursery) -> None:
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    whole_go, stream_go = trio.Event(), trio.Event()
    fake.script(JSONReply(chat_completion("the whole answer"), release=whole_go))
    fake.script(_stream_reply(stream_go))
    log = tmp_path / "louter.jsonl"
    with Louter(tmp_path, "--log-file", str(log), config=_config(fake.url, 30)) as louter:
        idle = await _idle_connection(louter.port)
        async with trio.open_nursery() as clients:
            whole, streamed = await _start_both(clients, fake, louter)
            louter.proc.send_signal(signal.SIGTERM)
            await _stderr_has(louter, "SIGTERM, stopping")
            with trio.fail_after(2):  # the idle keep-alive connection is closed
                while await idle.receive_some():
                    pass
            await idle.aclose()
            await _refused(louter.port)
            assert louter.proc.poll() is None
            whole_go.set()
            stream_go.set()
        assert await _exit_status(louter) == 0
    answer = whole["response"]
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "the whole answer"
    assert answer.headers["connection"] == "close"  # answered during the drain
    assert "cut" not in streamed, streamed
    assert streamed["response"].status_code == 200
    body = streamed["body"]
    assert all(piece.encode() in body for piece in PIECES)
    assert body.endswith(b"data: [DONE]\n\n")
    logged = logged_ids(log)
    assert logged[answer.headers["x-louter-request-id"]] == DIRECTIONS
    assert logged[streamed["response"].headers["x-louter-request-id"]] == DIRECTIONS


async def test_stream_outliving_the_drain_ends_with_an_error_event(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    fake.script(Hang(), _stream_reply(trio.Event()))  # neither ever finishes
    log = tmp_path / "louter.jsonl"
    args = ("--log-file", str(log), "--drain-seconds", "1")  # the flag beats the config
    with Louter(tmp_path, *args, config=_config(fake.url, 60)) as louter:
        async with trio.open_nursery() as clients:
            whole, streamed = await _start_both(clients, fake, louter)
            stopped_at = trio.current_time()
            louter.proc.send_signal(signal.SIGTERM)
        assert await _exit_status(louter) == 0
        assert trio.current_time() - stopped_at < 8
    assert "cut" not in streamed, streamed  # the stream ended properly ...
    body = streamed["body"]
    assert b"louter is shutting down" in body  # ... with OpenAI's in-stream error event
    assert b'"error"' in body
    assert "cut" in whole  # a whole answer never started: the connection closed
    stream_id = streamed["response"].headers["x-louter-request-id"]
    entries = [e for e in _entries(log) if e["request_id"] == stream_id]
    assert [e["direction"] for e in entries][-2:] == ["error", "client_response"]
    assert "louter is shutting down" in entries[-2]["error"]
    whole_entries = [e for e in _entries(log) if e["request_id"] not in (stream_id,)]
    assert whole_entries[-1]["direction"] == "error"
    assert whole_entries[-1]["status"] == 503


async def test_second_signal_stops_at_once(tmp_path: Path, nursery: trio.Nursery) -> None:
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    fake.script(Hang(), _stream_reply(trio.Event()))
    log = tmp_path / "louter.jsonl"
    with Louter(tmp_path, "--log-file", str(log), config=_config(fake.url, 60)) as louter:
        async with trio.open_nursery() as clients:
            whole, streamed = await _start_both(clients, fake, louter)
            louter.proc.send_signal(signal.SIGTERM)
            await _stderr_has(louter, "SIGTERM, stopping")
            louter.proc.send_signal(signal.SIGTERM)
            assert await _exit_status(louter, timeout=5) == 1
        assert "SIGTERM again, stopping now" in louter.stderr
    assert "cut" in whole
    assert "cut" in streamed
    last = {}
    for entry in _entries(log):
        last[entry["request_id"]] = entry
    assert len(last) == 2
    assert all(e["direction"] == "error" and e["status"] == 503 for e in last.values())


def _entries(log: Path) -> list[dict[str, Any]]:
    return log_entries(log)


def test_drain_seconds_is_a_server_setting() -> None:
    assert parse_config("", path="t.toml", env={}).server.drain_seconds == 120.0
    config = parse_config("[server]\ndrain_seconds = 2\n", path="t.toml", env={})
    assert config.server.drain_seconds == 2.0
    with pytest.raises(ConfigError, match="drain_seconds"):
        parse_config("[server]\ndrain_seconds = -1\n", path="t.toml", env={})


def _post(body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: louter\r\ncontent-type: application/json"
    return head + b"\r\ncontent-length: %d\r\n\r\n%b" % (len(data), data)


async def _until(stream: trio.SocketStream, seen: bytes, mark: bytes) -> bytes:
    """Read on until `mark` has arrived (the connection must stay open meanwhile)."""
    with trio.fail_after(10):
        while mark not in seen:
            data = await stream.receive_some()
            assert data, f"connection closed after {seen!r}"
            seen += data
    return seen


async def _to_the_end(stream: trio.SocketStream) -> bytes:
    """Everything until the server closes the connection."""
    seen = b""
    with trio.fail_after(10):
        while data := await stream.receive_some():
            seen += data
    return seen


async def test_a_connection_promised_keep_alive_before_the_stop_takes_one_more_request(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """An answer begun before SIGTERM told the client the connection stays open: once it
    is complete the client may send its next request on it at once (nginx does). That
    request is answered, with `connection: close`, not lost with a closed connection."""
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    stream_go = trio.Event()
    fake.script(_stream_reply(stream_go))
    fake.script(JSONReply(chat_completion("the next answer")))
    with Louter(tmp_path, config=_config(fake.url, 30)) as louter:
        client = await trio.open_tcp_stream("127.0.0.1", louter.port)
        await client.send_all(_post(_body(True)))
        seen = await _until(client, b"", b"\r\n\r\n")
        head = seen.split(b"\r\n\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
        louter.proc.send_signal(signal.SIGTERM)
        await _stderr_has(louter, "SIGTERM, stopping")
        stream_go.set()
        streamed = await _until(client, seen, b"\r\n0\r\n\r\n")
        assert b"data: [DONE]" in streamed
        await client.send_all(_post(_body(False)))
        answer = await _to_the_end(client)  # `connection: close`: then it closes
        await client.aclose()
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert b"connection: close" in answer.lower()
        assert b"the next answer" in answer
        assert await _exit_status(louter) == 0
