"""How a passed-through stream is written to the client (issue 24): what the upstream has
sent goes out as soon as louter would wait for more, in one write, so a stream that
arrived whole leaves in one system call (head, body and end), while a slow upstream's
head and each piece still reach the client before louter waits again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from louter.http.message import Responder
from tests.conftest import StartLouter
from tests.fakes import SSE, FakeUpstream, SSEReply, chat_chunk, sse_events

STREAM = sse_events(chat_chunk("Hel"), chat_chunk("lo"), chat_chunk(finish="stop"))


def config(port: int) -> str:
    return (
        f'[backends.up]\nurl = "http://127.0.0.1:{port}/v1"\napi_key = "k-up"\n'
        '[backends.up.model_mapping]\n"m" = "real-m"\n'
    )


BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True})


@pytest.fixture
async def fake(nursery: trio.Nursery) -> FakeUpstream:
    upstream = FakeUpstream()
    await nursery.start(upstream.serve)
    return upstream


class _Wire:
    """A raw upstream on 127.0.0.1 that answers every request with `answer`, written
    in one system call."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.port = 0

    async def serve(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._answer, listeners)

    async def _answer(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some()
        await stream.send_all(self.answer)
        await trio.sleep_forever()


async def raw_exchange(base: str) -> bytes:
    """Send the streamed request over a raw socket; the answer's bytes as sent."""
    port = int(base.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: louter\r\ncontent-type: application/json"
        b"\r\ncontent-length: %d\r\n\r\n%b" % (len(BODY), BODY)
    )
    received = b""
    with trio.fail_after(5):
        while not received.endswith(b"\r\n0\r\n\r\n"):
            received += await stream.receive_some()
    await stream.aclose()
    return received


def body_chunks(answer: bytes) -> list[bytes]:
    """The chunks of a chunked answer's body, as framed."""
    rest = answer.split(b"\r\n\r\n", 1)[1]
    chunks = []
    while True:
        size, rest = rest.split(b"\r\n", 1)
        if int(size, 16) == 0:
            return chunks
        chunks.append(rest[: int(size, 16)])
        rest = rest[int(size, 16) + 2 :]


async def test_a_chunked_upstream_read_reaches_the_client_as_one_chunk(
    nursery: trio.Nursery, start_louter: StartLouter, tmp_path: Path
):
    """Three HTTP chunks that arrive in one network read are checked and sent on as one
    chunk (one write), and the log still has the whole answer."""
    events = [event + b"\n\n" for event in STREAM.split(b"\n\n") if event]
    framed = b"".join(b"%x\r\n%b\r\n" % (len(event), event) for event in events)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked"
    wire = _Wire(head + b"\r\n\r\n" + framed + b"0\r\n\r\n")
    await nursery.start(wire.serve)
    log = tmp_path / "louter.jsonl"
    base = await start_louter(config(wire.port), log_file=log)
    answer = await raw_exchange(base)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body_chunks(answer) == [STREAM]
    with trio.fail_after(3):
        while b"client_response" not in log.read_bytes():
            await trio.sleep(0.01)
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    (reply,) = [e for e in entries if e["direction"] == "client_response"]
    assert reply["payload"]["content"] == "Hello" and reply["chunks"] == 1


async def test_a_malformed_event_in_a_read_is_not_passed_on(
    nursery: trio.Nursery, start_louter: StartLouter
):
    """A read whose second event is not JSON: none of it reaches the client as stream
    data, the client gets the error event instead."""
    bad = sse_events(chat_chunk("Hel"), b'{"id": oops}', chat_chunk(finish="stop"))
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d" % len(bad)
    wire = _Wire(head + b"\r\n\r\n" + bad)
    await nursery.start(wire.serve)
    base = await start_louter(config(wire.port))
    answer = await raw_exchange(base)
    (data,) = body_chunks(answer)
    assert b"Hel" not in data and b"oops" not in data
    assert data.startswith(b"data: {") and b'"error"' in data


async def test_the_head_goes_out_while_the_upstream_has_not_sent_a_chunk_yet(
    start_louter: StartLouter, fake: FakeUpstream
):
    release = trio.Event()
    fake.script(SSEReply([STREAM], hold_after=0, release=release))
    base = await start_louter(config(fake.port))
    async with httpx.AsyncClient(timeout=10) as http:
        with trio.fail_after(3):  # the head, before the upstream sends any event
            request = http.build_request("POST", base + "/v1/chat/completions", content=BODY)
            response = await http.send(request, stream=True)
        assert response.status_code == 200 and response.headers["content-type"] == SSE
        release.set()
        assert await response.aread() == STREAM
        await response.aclose()


class _Recorder:
    """A client connection that records each system call's bytes."""

    closed_by_peer = False
    hangup = None
    stop = None

    def __init__(self) -> None:
        self.sends: list[bytes] = []

    async def send_all(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def peer(self) -> str:
        return ""


async def test_held_stream_bytes_leave_with_the_next_send() -> None:
    channel = _Recorder()
    responder = Responder(channel, keep_alive=True)
    await responder.start(200, [(b"content-type", b"text/event-stream")], hold=True)
    responder.hold(b"data: 1\n\n")
    responder.hold(b"")
    responder.hold(b"data: 2\n\n")
    assert channel.sends == []
    await responder.end()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked"
    body = b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"
    assert channel.sends == [head + b"\r\n\r\n" + body]
    assert responder.finished


async def test_a_write_sends_what_is_held_first() -> None:
    channel = _Recorder()
    responder = Responder(channel, keep_alive=True)
    await responder.start(200, [], hold=True)
    await responder.flush()
    await responder.flush()  # nothing held: nothing sent
    responder.hold(b"a")
    await responder.write(b"bc")
    await responder.write(b"")
    await responder.write(b"d")
    assert channel.sends[1:] == [b"1\r\na\r\n2\r\nbc\r\n", b"1\r\nd\r\n"]
    assert len(channel.sends) == 3
