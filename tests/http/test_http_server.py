"""The inbound HTTP/1.1 server through raw sockets: framing, keep-alive, limits."""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass, field
from typing import Any

import httptools
import orjson
import pytest
import trio

from louter.config import load_config
from louter.http.server import HeaderNames, Limits, _backlog
from louter.proxy.app import build_context, serve

SMALL = Limits(max_body=2000, max_header=1024)
CHAT_BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "ping"}]})
CHAT_ANSWER = 'Mock answer to: "ping" (images: 0)'


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class ResponseReader:
    """Reads HTTP/1.1 responses off a raw stream with httptools (1xx ones included)."""

    stream: trio.SocketStream
    done: list[Response] = field(default_factory=list)
    eof: bool = False

    def __post_init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        self.done.append(Response(status, self._headers, b"".join(self._body)))
        self._headers, self._body = {}, []

    def feed(self, data: bytes) -> None:
        self._parser.feed_data(data)

    async def next(self) -> Response:
        with trio.fail_after(3):
            while not self.done:
                data = await self.stream.receive_some()
                if not data:
                    self.eof = True
                    raise AssertionError("connection closed before a complete response")
                self.feed(data)
        return self.done.pop(0)

    async def closed(self) -> bool:
        """True when the server closes the connection (without sending anything more)."""
        with trio.fail_after(3):
            return await self.stream.receive_some() == b""


@pytest.fixture
async def louter_port(nursery: trio.Nursery) -> int:
    ctx = build_context(load_config(None, {}), default_backend="mock")
    return await nursery.start(serve, ctx, "127.0.0.1", 0)


@pytest.fixture
async def small_port(nursery: trio.Nursery) -> int:
    ctx = build_context(load_config(None, {}), default_backend="mock")
    return await nursery.start(functools.partial(serve, ctx, "127.0.0.1", 0, limits=SMALL))


async def connect(port: int) -> tuple[trio.SocketStream, ResponseReader]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    return stream, ResponseReader(stream)


def get(path: str = "/health", extra: bytes = b"") -> bytes:
    return b"GET %b HTTP/1.1\r\nhost: louter\r\n%b\r\n" % (path.encode(), extra)


def post(body: bytes = CHAT_BODY, extra: bytes = b"") -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: louter\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n%b\r\n%b"
        % (len(body), extra, body)
    )


def chat_answer(response: Response) -> str:
    assert response.status == 200, response.body
    return response.json["choices"][0]["message"]["content"]


async def test_keep_alive_serves_three_requests_on_one_connection(louter_port):
    stream, reader = await connect(louter_port)
    async with stream:
        await stream.send_all(get())
        assert (await reader.next()).json["status"] == "ok"
        await stream.send_all(post())
        response = await reader.next()
        assert chat_answer(response) == CHAT_ANSWER
        assert "connection" not in response.headers
        await stream.send_all(get("/v1/models"))
        models = await reader.next()
        assert models.status == 200 and models.json["object"] == "list"


async def test_pipelined_requests_are_answered_in_order(louter_port):
    stream, reader = await connect(louter_port)
    async with stream:
        await stream.send_all(post() + get())
        first, second = await reader.next(), await reader.next()
        assert chat_answer(first) == CHAT_ANSWER
        assert second.status == 200 and second.json["status"] == "ok"


async def test_pipelined_requests_keep_their_own_method_and_connection_header(louter_port):
    stream, reader = await connect(louter_port)
    async with stream:
        await stream.send_all(get() + post(extra=b"connection: close\r\n"))
        first = await reader.next()
        assert first.status == 200 and first.json["status"] == "ok"
        assert "connection" not in first.headers
        second = await reader.next()
        assert chat_answer(second) == CHAT_ANSWER
        assert second.headers["connection"] == "close"
        assert await reader.closed()


async def test_chunked_request_body(louter_port):
    stream, reader = await connect(louter_port)
    body = CHAT_BODY
    pieces = [body[:5], body[5:6], body[6:30], body[30:]]
    chunked = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: louter\r\n"
        b"transfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n"
    )
    async with stream:
        await stream.send_all(head)
        for index in range(0, len(chunked), 9):  # the chunk framing itself split badly
            await stream.send_all(chunked[index : index + 9])
        assert chat_answer(await reader.next()) == CHAT_ANSWER
        await stream.send_all(get())  # still keep-alive afterwards
        assert (await reader.next()).status == 200


async def test_expect_100_continue(louter_port):
    stream, reader = await connect(louter_port)
    head = post(body=b"", extra=b"expect: 100-continue\r\n").replace(
        b"content-length: 0", b"content-length: %d" % len(CHAT_BODY)
    )
    async with stream:
        await stream.send_all(head)
        with trio.fail_after(3):
            interim = await stream.receive_some()
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        await stream.send_all(CHAT_BODY)
        assert chat_answer(await reader.next()) == CHAT_ANSWER


async def test_oversized_body_by_content_length_is_413(small_port):
    stream, reader = await connect(small_port)
    async with stream:
        await stream.send_all(post(body=b"").replace(b"content-length: 0", b"content-length: 2001"))
        response = await reader.next()  # answered before the body was sent
        assert response.status == 413
        assert response.json["error"]["type"] == "invalid_request_error"
        assert response.headers["connection"] == "close"
        assert await reader.closed()


async def test_oversized_chunked_body_is_413(small_port):
    stream, reader = await connect(small_port)
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: louter\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    async with stream:
        await stream.send_all(head + b"%x\r\n%b\r\n" % (1500, b"x" * 1500))
        await stream.send_all(b"%x\r\n%b\r\n" % (1500, b"x" * 1500))
        assert (await reader.next()).status == 413
        assert await reader.closed()


async def test_body_within_limit_is_served(small_port):
    padded = orjson.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "ping"}], "user": "u" * 1800}
    )
    assert 1024 < len(padded) <= 2000
    stream, reader = await connect(small_port)
    async with stream:
        await stream.send_all(post(body=padded))  # one write: headers and body together
        assert chat_answer(await reader.next()) == CHAT_ANSWER


@pytest.mark.parametrize("writes", [1, 3])
async def test_oversized_headers_are_431(small_port, writes):
    stream, reader = await connect(small_port)
    data = get(extra=b"x-filler: %b\r\n" % (b"f" * 3000))
    size = -(-len(data) // writes)
    async with stream:
        for index in range(0, len(data), size):
            await stream.send_all(data[index : index + size])
            await trio.sleep(0.01)
        response = await reader.next()
        assert response.status == 431
        assert await reader.closed()


async def test_endless_header_line_is_431(small_port):
    """A header line that never ends is cut off once it exceeds the limit."""
    stream, reader = await connect(small_port)
    async with stream:
        await stream.send_all(b"GET /health HTTP/1.1\r\nhost: louter\r\nx-endless: ")
        for _ in range(10):  # 4000 bytes at most; the limit is 1024
            await stream.send_all(b"e" * 400)
            with trio.move_on_after(0.05):
                reader.feed(await stream.receive_some())
            if reader.done:
                break
        response = await reader.next()
        assert response.status == 431
        assert await reader.closed()


async def test_slow_headers_then_a_big_body_are_not_mistaken_for_big_headers(small_port):
    padded = orjson.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "ping"}], "user": "u" * 1800}
    )
    data = post(body=padded)
    stream, reader = await connect(small_port)
    async with stream:
        for piece in (data[:20], data[20:40], data[40:]):
            await stream.send_all(piece)
            await trio.sleep(0.01)
        assert chat_answer(await reader.next()) == CHAT_ANSWER


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /health HTTP/1.1\r\nbad header line\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\ncontent-length: abc\r\n\r\n",
    ],
)
async def test_malformed_request_is_400_and_closes(louter_port, data):
    stream, reader = await connect(louter_port)
    async with stream:
        await stream.send_all(data)
        response = await reader.next()
        assert response.status == 400
        assert response.headers["connection"] == "close"
        assert "error" in response.json
        assert await reader.closed()


async def test_connection_close_is_honoured(louter_port):
    stream, reader = await connect(louter_port)
    async with stream:
        await stream.send_all(get(extra=b"connection: close\r\n"))
        response = await reader.next()
        assert response.status == 200
        assert response.headers["connection"] == "close"
        assert await reader.closed()


async def test_http_1_0_closes_after_the_response(louter_port):
    stream, reader = await connect(louter_port)
    async with stream:
        await stream.send_all(b"GET /health HTTP/1.0\r\n\r\n")
        assert (await reader.next()).status == 200
        assert await reader.closed()


def test_a_stop_takes_the_connections_waiting_in_the_backlog() -> None:
    """Closing a listening socket resets the connections the kernel completed but louter
    had not accepted; a graceful stop takes them first (louter/http/server.py)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    try:
        for client in clients:
            client.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        taken = _backlog([listener])
        assert len(taken) == 3
        for stream in taken:
            stream.sock.setblocking(True)
            assert stream.sock.recv(100).startswith(b"GET /health")
            stream.sock.close()
        assert _backlog([listener]) == []
    finally:
        listener.close()
        for client in clients:
            client.close()


def test_header_names_are_remembered_up_to_a_bound() -> None:
    """A server's cache of header names (as sent -> lower case) stops growing at its
    bound; names past it are still read, only not remembered."""
    names = HeaderNames()
    assert names.add(b"Content-Type") == "content-type" and names[b"Content-Type"] == "content-type"
    for n in range(2 * HeaderNames.LIMIT):
        assert names.add(b"X-Name-%d" % n) == f"x-name-{n}"
    assert len(names) == HeaderNames.LIMIT
