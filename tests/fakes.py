"""A scriptable fake OpenAI-compatible upstream: a small trio HTTP/1.1 server (h11).

    fake = FakeUpstream()
    port = await nursery.start(fake.serve)
    fake.script(JSONReply({...}), SSEReply(chunks), Hang(), ...)   # one reply per request
    ... louter sends requests ...
    fake.requests[0].json, fake.requests[0].headers["authorization"], ...
    await fake.requests[0].connection.closed.wait()   # louter closed that connection

Replies are taken from the script in order; when it is empty, `fake.default` (a reply,
or a function of the recorded request returning one) answers. Connections are
keep-alive (several requests each, as louter's pool reuses them); every connection has
a reader task, so `connection.closed` is set as soon as the peer closes its side, even
while the fake is in the middle of a (hanging or paused) answer.
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import h11
import orjson
import trio

JSON = "application/json"
SSE = "text/event-stream"


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class JSONReply:
    """A whole response with a content-length. `body` is JSON-encoded unless bytes."""

    body: Any
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    content_type: str = JSON
    release: trio.Event | None = None  # awaited before answering (a slow upstream)

    @property
    def raw(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)


@dataclass(frozen=True)
class SSEReply:
    """A chunked `text/event-stream` answer: each element of `chunks` is written as one
    HTTP chunk, `pause` seconds apart. `release`, when given, is awaited after the first
    `hold_after` chunks (to prove incremental delivery). `end` is how it finishes:
    "finish" (terminating chunk), "close" (close the connection mid-stream), "reset" (RST),
    "hang" (keep the connection open, send nothing more)."""

    chunks: Sequence[bytes]
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    pause: float = 0.002
    end: str = "finish"
    hold_after: int | None = None
    release: trio.Event | None = None

    @property
    def raw(self) -> bytes:
        return b"".join(self.chunks)


@dataclass(frozen=True)
class Hang:
    """Read the request, then never answer (until the peer closes)."""


@dataclass(frozen=True)
class Close:
    """Read the request, then close the connection without answering."""


Reply = JSONReply | SSEReply | Hang | Close


# --------------------------------------------------------------------------- records


@dataclass(eq=False)
class FakeConnection:
    index: int
    closed: trio.Event = field(default_factory=trio.Event)  # the peer closed its side
    requests: int = 0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    connection: FakeConnection

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


# --------------------------------------------------------------------------- helpers


def sse_events(*payloads: Any, done: bool = True) -> bytes:
    """`data: <json>\\n\\n` for each payload (dicts are JSON-encoded), then `[DONE]`."""
    out = [b"data: " + (p if isinstance(p, bytes) else orjson.dumps(p)) + b"\n\n" for p in payloads]
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def chat_chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict:
    delta: dict[str, Any] = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "real-model",
        "choices": [choice],
        **extra,
    }


def chat_stream(pieces: Iterable[str], finish: str = "stop") -> bytes:
    """An OpenAI SSE stream whose content deltas are `pieces`."""
    return sse_events(*(chat_chunk(p) for p in pieces), chat_chunk(finish=finish))


def chat_completion(content: str, **extra: Any) -> dict:
    message = {"role": "assistant", "content": content}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": "real-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        **extra,
    }


def awkward_chunks(data: bytes, *, bytewise: int = 24, stride: int = 7) -> list[bytes]:
    """Split `data` badly: the first `bytewise` bytes one at a time, then every `stride`
    bytes (mid-line) and additionally inside every multi-byte UTF-8 character."""
    cuts = set(range(1, min(bytewise, len(data))))
    cuts.update(range(bytewise, len(data), stride))
    cuts.update(i for i, byte in enumerate(data) if 0x80 <= byte < 0xC0)  # continuation bytes
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


# --------------------------------------------------------------------------- server


class FakeUpstream:
    def __init__(self, default: Reply | Callable[[Recorded], Reply] | None = None) -> None:
        self.default = default
        self.requests: list[Recorded] = []
        self.connections: list[FakeConnection] = []
        self.port = 0
        self._script: deque[Reply] = deque()
        self._arrived = trio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    async def wait_requests(self, count: int) -> None:
        async with self._arrived:
            while len(self.requests) < count:
                await self._arrived.wait()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._connection, listeners)
            task_status.started(self.port)

    def _next_reply(self, request: Recorded) -> Reply:
        if self._script:
            return self._script.popleft()
        if callable(self.default):
            return self.default(request)
        if self.default is None:
            raise AssertionError(f"fake upstream: no reply scripted for {request.path}")
        return self.default

    async def _connection(self, stream: trio.SocketStream) -> None:
        info = FakeConnection(len(self.connections))
        self.connections.append(info)
        send, receive = trio.open_memory_channel[bytes](256)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader, stream, send, info)
                try:
                    await _Session(self, stream, receive, info).run()
                except trio.BrokenResourceError:  # the peer went away while we were sending
                    info.closed.set()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    @staticmethod
    async def _reader(
        stream: trio.SocketStream, send: trio.MemorySendChannel[bytes], info: FakeConnection
    ) -> None:
        async with send:
            try:
                while data := await stream.receive_some():
                    await send.send(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            info.closed.set()

    async def _record(self, request: Recorded) -> None:
        self.requests.append(request)
        async with self._arrived:
            self._arrived.notify_all()


class _Session:
    """The h11 state machine of one connection: read a request, answer it, repeat."""

    def __init__(
        self,
        fake: FakeUpstream,
        stream: trio.SocketStream,
        incoming: trio.MemoryReceiveChannel[bytes],
        info: FakeConnection,
    ) -> None:
        self.fake = fake
        self.stream = stream
        self.incoming = incoming
        self.info = info
        self.h11 = h11.Connection(h11.SERVER)

    async def _event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.incoming.receive()
            except trio.EndOfChannel:
                data = b""
            self.h11.receive_data(data)

    async def run(self) -> None:
        while True:
            event = await self._event()
            if isinstance(event, h11.ConnectionClosed):
                return
            assert isinstance(event, h11.Request), event
            body = []
            while not isinstance(part := await self._event(), h11.EndOfMessage):
                assert isinstance(part, h11.Data), part
                body.append(bytes(part.data))
            headers: dict[str, str] = {}
            for name, value in event.headers:
                key, text = name.decode("latin-1"), value.decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
            request = Recorded(
                event.method.decode(),
                event.target.decode("latin-1"),
                headers,
                b"".join(body),
                self.info,
            )
            self.info.requests += 1
            await self.fake._record(request)
            if not await self._answer(self.fake._next_reply(request)):
                return
            if self.h11.our_state is not h11.DONE:
                return
            self.h11.start_next_cycle()

    async def _send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            await self.stream.send_all(data)

    async def _answer(self, reply: Reply) -> bool:
        """Send `reply`; False means the connection is finished."""
        if isinstance(reply, Hang):
            await self.info.closed.wait()
            return False
        if isinstance(reply, Close):
            return False
        if isinstance(reply, JSONReply):
            if reply.release is not None:
                await reply.release.wait()
            raw = reply.raw
            headers = [
                ("content-type", reply.content_type),
                ("content-length", str(len(raw))),
                *reply.headers,
            ]
            await self._send(h11.Response(status_code=reply.status, headers=headers))
            await self._send(h11.Data(data=raw))
            await self._send(h11.EndOfMessage())
            return True
        return await self._stream(reply)

    async def _stream(self, reply: SSEReply) -> bool:
        headers = [
            ("content-type", SSE),
            ("cache-control", "no-cache"),
            ("transfer-encoding", "chunked"),
            *reply.headers,
        ]
        await self._send(h11.Response(status_code=reply.status, headers=headers))
        for number, chunk in enumerate(reply.chunks):
            if number and reply.pause:
                await trio.sleep(reply.pause)
            if reply.release is not None and number == reply.hold_after:
                await reply.release.wait()
            await self._send(h11.Data(data=chunk))
        if reply.end == "finish":
            await self._send(h11.EndOfMessage())
            return True
        await trio.sleep(reply.pause)  # let the peer read what was sent before ending badly
        if reply.end == "reset":
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            self.stream.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        elif reply.end == "hang":
            await self.info.closed.wait()
        return False
