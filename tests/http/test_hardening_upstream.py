"""Upstream request safety and the connection pool (issue 16, part 1).

The upstream here is a raw trio socket server on 127.0.0.1 that records exactly the bytes
it receives, parses them itself (so a smuggled second request would be counted) and
answers with scripted bytes: interim 1xx answers, two responses in one write, bytes after
the end of a response. Clients are raw sockets too, so nothing normalises the paths and
bodies the attacks are made of.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httptools
import orjson
import pytest
import trio

from louter.convert.escape import header_value
from louter.errors import LouterError, UpstreamError
from louter.http.deadlines import Deadlines
from louter.http.target import check_model
from louter.http.tls import HttpxTransport
from louter.http.upstream import PooledTransport
from tests.conftest import StartLouter
from tests.proxy.test_faults import closed_port

SMUGGLED = b"SMUGGLED-SECOND-ANSWER"


# --------------------------------------------------------------------------- the raw upstream


@dataclass
class Seen:
    """One request as the upstream parsed it."""

    target: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def prompt(self) -> str:
        data = orjson.loads(self.body)
        return str(data["contents"][-1]["parts"][0]["text"])


class _RequestProtocol:
    def __init__(self) -> None:
        self.current = Seen()
        self.done: list[Seen] = []

    def on_url(self, url: bytes) -> None:
        self.current.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        self.done.append(self.current)
        self.current = Seen()


Behaviour = Callable[["RawUpstream", trio.SocketStream, Seen], Awaitable[None]]


def gemini_answer(text: str) -> bytes:
    body = orjson.dumps(
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
        }
    )
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )


def echo(seen: Seen) -> bytes:
    return gemini_answer("echo:" + seen.prompt())


async def answer(upstream: RawUpstream, stream: trio.SocketStream, seen: Seen) -> None:
    await stream.send_all(echo(seen))


async def interim_first(upstream: RawUpstream, stream: trio.SocketStream, seen: Seen) -> None:
    """100 and 103, each in a read of its own, then the answer."""
    await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
    await trio.sleep(0.03)
    await stream.send_all(b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n")
    await trio.sleep(0.03)
    await stream.send_all(echo(seen))


async def interim_together(upstream: RawUpstream, stream: trio.SocketStream, seen: Seen) -> None:
    await stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n" + echo(seen))


async def two_in_one(upstream: RawUpstream, stream: trio.SocketStream, seen: Seen) -> None:
    await stream.send_all(echo(seen) + gemini_answer(SMUGGLED.decode()))


async def garbage_after(upstream: RawUpstream, stream: trio.SocketStream, seen: Seen) -> None:
    await stream.send_all(echo(seen) + b"garbage after the end\r\n")


async def garbage_later(upstream: RawUpstream, stream: trio.SocketStream, seen: Seen) -> None:
    await stream.send_all(echo(seen))
    await trio.sleep(0.05)
    await stream.send_all(gemini_answer(SMUGGLED.decode()))
    upstream.extra_sent.set()


async def stream_then_second(upstream: RawUpstream, stream: trio.SocketStream, seen: Seen) -> None:
    """A chunked SSE answer and, in the same write, an unsolicited second response."""
    event = orjson.dumps(
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "s:" + seen.prompt()}]}}]}
    )
    chunk = b"data: " + event + b"\r\n\r\n"
    await stream.send_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
        b"\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(chunk), chunk) + gemini_answer(SMUGGLED.decode())
    )


async def bad_chunk(upstream: RawUpstream, stream: trio.SocketStream, seen: Seen) -> None:
    """A chunked answer whose second chunk header is not hex, in a read of its own."""
    await stream.send_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n"
        b'\r\n2\r\n{"\r\n'
    )
    await trio.sleep(0.05)
    await stream.send_all(b"zz\r\nnot a chunk\r\n")
    await trio.sleep_forever()  # the connection stays open: louter must close it


async def hang(upstream: RawUpstream, stream: trio.SocketStream, seen: Seen) -> None:
    await trio.sleep_forever()


class RawUpstream:
    """HTTP/1.1 on 127.0.0.1: every byte received is kept per connection; each parsed
    request is answered by the next scripted behaviour (default: echo the prompt)."""

    def __init__(self) -> None:
        self.port = 0
        self.accepts = 0
        self.received: list[bytearray] = []
        self.requests: list[Seen] = []
        self.parse_errors = 0
        self.script: list[Behaviour] = []
        self.extra_sent = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._connection, listeners)

    @property
    def raw(self) -> bytes:
        return b"".join(self.received)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.accepts += 1
        raw = bytearray()
        self.received.append(raw)
        protocol = _RequestProtocol()
        parser = httptools.HttpRequestParser(protocol)
        async with stream:
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return
                if not data:
                    return
                raw += data
                try:
                    parser.feed_data(data)
                except httptools.HttpParserError:
                    self.parse_errors += 1
                    return
                while protocol.done:
                    seen = protocol.done.pop(0)
                    self.requests.append(seen)
                    behaviour = self.script.pop(0) if self.script else answer
                    await behaviour(self, stream, seen)


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> RawUpstream:
    server = RawUpstream()
    await nursery.start(server.serve)
    return server


def gemini_backend(port: int, extra: str = 'api_key = "k-gem"\n') -> str:
    return f'[backends.gem]\nprotocol = "gemini"\nurl = "http://127.0.0.1:{port}"\n{extra}'


# --------------------------------------------------------------------------- the raw client


async def call(base: str, target: str, body: Any, headers: bytes = b"") -> tuple[int, Any]:
    """POST `body` (JSON, or bytes as they are) to `target` on a fresh connection."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    port = int(base.rsplit(":", 1)[1])
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(
                b"POST %b HTTP/1.1\r\nhost: louter\r\ncontent-type: application/json\r\n"
                b"connection: close\r\n%bcontent-length: %d\r\n\r\n%b"
                % (target.encode("latin-1"), headers, len(data), data)
            )
            answer = bytearray()
            while chunk := await stream.receive_some(65536):
                answer += chunk
    head, _, payload = bytes(answer).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(payload)


def chat(model: str, prompt: str = "hi") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}]}


def anthropic_body(model: str, prompt: str = "hi") -> dict[str, Any]:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": prompt}]}


def gemini_body(prompt: str = "hi") -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}


def openai_envelope(body: Any) -> str:
    assert set(body) == {"error"}
    assert body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


def gemini_envelope(body: Any) -> str:
    assert set(body) == {"error"}
    assert body["error"]["code"] == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    return str(body["error"]["message"])


def anthropic_envelope(body: Any) -> str:
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


BAD_MODELS = [
    "m\r\nx-injected: 1\r\n\r\nPOST /admin HTTP/1.1\r\nx-smuggled: 1",
    "../../admin/x?y=1#",
    "models/../admin",
    "a//b",
    "m?alt=json",
    "m#frag",
    "m%0D%0Ax-injected:1",
    "back\\slash",
    "with space",
    "tab\tm",
    "nul\x00m",
    "snow\u2603man",  # not latin-1: 400, not 500
    "caf\u00e9",
    "x" * 257,
]
BAD_GEMINI_PATHS = [
    "m%0D%0Ax-injected:%201%0D%0A%0D%0APOST%20/admin%20HTTP/1.1",
    "..%2F..%2Fadmin%2Fx%3Fy=1%23",
    "../../admin/x",
    "m%3Falt=json",
    "m%23frag",
    "m%20x",
    "m%00x",
    "snow%E2%98%83man",
    "m%5Cx",
    "%2E%2E",
    "m%FF",  # not UTF-8
]
BODY_DOORS = {
    "openai": ("/v1/chat/completions", chat, openai_envelope),
    "anthropic": ("/v1/messages", anthropic_body, anthropic_envelope),
    "anthropic-count": ("/v1/messages/count_tokens", anthropic_body, anthropic_envelope),
    "responses": ("/v1/responses", lambda m: {"model": m, "input": "hi"}, openai_envelope),
}


async def later_clients_get_their_own_answers(base: str, upstream: RawUpstream) -> None:
    """Sequentially (one pooled connection), then concurrently: each answer is the echo
    of its own prompt, through both the Gemini door and the OpenAI door."""
    accepts = upstream.accepts
    for i in range(6):
        status, body = await call(base, "/v1beta/models/m:generateContent", gemini_body(f"p{i}"))
        assert status == 200, body
        assert body["candidates"][0]["content"]["parts"][0]["text"] == f"echo:p{i}"
    assert upstream.accepts <= accepts + 1  # the pool was reused

    results: dict[str, str] = {}

    async def one(prompt: str) -> None:
        status, body = await call(base, "/v1/chat/completions", chat("m", prompt))
        assert status == 200, body
        results[prompt] = body["choices"][0]["message"]["content"]

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(one, f"c{i}")
    assert results == {f"c{i}": f"echo:c{i}" for i in range(8)}
    assert SMUGGLED not in upstream.raw


def nothing_injected(upstream: RawUpstream) -> None:
    raw = upstream.raw.lower()
    for marker in (b"x-injected", b"x-smuggled", b"admin", b"alt=json", b"#"):
        assert marker not in raw
    assert upstream.requests == []
    assert upstream.parse_errors == 0


# --------------------------------------------------------------------------- model names


@pytest.mark.parametrize("door", list(BODY_DOORS))
async def test_unsafe_body_models_get_400_in_the_doors_envelope(
    door: str, start_louter: StartLouter, upstream: RawUpstream
) -> None:
    base = await start_louter(gemini_backend(upstream.port))
    path, make_body, envelope = BODY_DOORS[door]
    for model in BAD_MODELS:
        status, body = await call(base, path, make_body(model))
        assert status == 400, (model, body)
        assert "invalid model name" in envelope(body)
    nothing_injected(upstream)
    await later_clients_get_their_own_answers(base, upstream)


@pytest.mark.parametrize("action", ["generateContent", "streamGenerateContent", "countTokens"])
async def test_unsafe_gemini_path_models_get_400_in_gemini_envelope(
    action: str, start_louter: StartLouter, upstream: RawUpstream
) -> None:
    base = await start_louter(gemini_backend(upstream.port))
    for model in BAD_GEMINI_PATHS:
        for prefix in ("/v1beta/models/", "/v1/models/"):
            status, body = await call(base, f"{prefix}{model}:{action}", gemini_body())
            assert status == 400, (model, body)
            assert "invalid model name" in gemini_envelope(body)
    nothing_injected(upstream)
    await later_clients_get_their_own_answers(base, upstream)


async def test_a_forwarded_client_key_with_crlf_is_refused(
    start_louter: StartLouter, upstream: RawUpstream
) -> None:
    """A backend without its own key forwards the client's; a `?key=` is percent-decoded,
    so it could carry CR/LF or non-latin-1 text into the upstream header."""
    base = await start_louter(gemini_backend(upstream.port, extra=""))
    for key in ("k%0D%0Ax-injected:%201", "k%E2%98%83", "k%00"):
        status, body = await call(
            base, f"/v1beta/models/m:generateContent?key={key}", gemini_body()
        )
        assert status == 400, (key, body)
        gemini_envelope(body)
    nothing_injected(upstream)
    status, body = await call(base, "/v1beta/models/m:generateContent?key=good", gemini_body("k"))
    assert status == 200, body
    assert (b"x-goog-api-key", b"good") in upstream.requests[-1].headers


@pytest.mark.parametrize(
    ("door", "model"),
    [
        ("openai", "Qwen/Qwen3-Coder:30b"),
        ("gemini", "Qwen%2FQwen3-Coder:30b"),
        ("gemini", "Qwen/Qwen3-Coder:30b"),
        ("openai", "models/gemini-2.5-pro"),
        ("openai", "user@org+tag:v1.2_x-y"),
    ],
)
async def test_a_valid_model_with_slash_or_colon_is_escaped_in_the_gemini_path(
    door: str, model: str, start_louter: StartLouter, upstream: RawUpstream
) -> None:
    # (no model-list read: a name with ':' whose prefix is no backend would ask the list
    # whether it is served, and this scripted upstream only echoes generate requests)
    config = gemini_backend(upstream.port) + "[catalog]\ndiscovery = false\n"
    base = await start_louter(config)
    if door == "openai":
        status, body = await call(base, "/v1/chat/completions", chat(model, "v"))
        assert status == 200, body
        assert body["choices"][0]["message"]["content"] == "echo:v"
    else:
        status, body = await call(base, f"/v1beta/models/{model}:generateContent", gemini_body("v"))
        assert status == 200, body
        assert body["candidates"][0]["content"]["parts"][0]["text"] == "echo:v"
    plain = model.replace("%2F", "/")
    expected = "/v1beta/models/" + plain.replace("/", "%2F") + ":generateContent"
    assert [seen.target.decode() for seen in upstream.requests] == [expected]


# --------------------------------------------------------------------------- the pool


async def test_interim_1xx_answers_are_skipped_and_the_pool_stays_in_step(
    start_louter: StartLouter, upstream: RawUpstream
) -> None:
    upstream.script = [interim_first, interim_first, interim_together]
    base = await start_louter(gemini_backend(upstream.port))
    status, body = await call(base, "/v1beta/models/m:generateContent", gemini_body("one"))
    assert (status, body["candidates"][0]["content"]["parts"][0]["text"]) == (200, "echo:one")
    status, body = await call(base, "/v1/chat/completions", chat("m", "two"))
    assert (status, body["choices"][0]["message"]["content"]) == (200, "echo:two")
    status, body = await call(base, "/v1beta/models/m:generateContent", gemini_body("three"))
    assert (status, body["candidates"][0]["content"]["parts"][0]["text"]) == (200, "echo:three")
    assert upstream.accepts == 1  # the connection was fit for reuse after each


@pytest.mark.parametrize("behaviour", [two_in_one, garbage_after], ids=["two", "garbage"])
async def test_bytes_after_a_response_close_the_connection(
    behaviour: Behaviour, start_louter: StartLouter, upstream: RawUpstream
) -> None:
    upstream.script = [behaviour]
    base = await start_louter(gemini_backend(upstream.port))
    status, body = await call(base, "/v1beta/models/m:generateContent", gemini_body("first"))
    assert status == 200
    # exactly the first answer (passed through byte for byte), nothing appended
    assert orjson.dumps(body) == echo_body("echo:first")
    status, body = await call(base, "/v1beta/models/m:generateContent", gemini_body("next"))
    assert (status, body["candidates"][0]["content"]["parts"][0]["text"]) == (200, "echo:next")
    assert upstream.accepts == 2  # the first connection was not reused
    await later_clients_get_their_own_answers(base, upstream)


async def test_a_streamed_answer_is_not_joined_with_a_second_response(
    start_louter: StartLouter, upstream: RawUpstream
) -> None:
    upstream.script = [stream_then_second]
    base = await start_louter(gemini_backend(upstream.port))
    port = int(base.rsplit(":", 1)[1])
    data = orjson.dumps(gemini_body("st"))
    with trio.fail_after(10):
        client = await trio.open_tcp_stream("127.0.0.1", port)
        async with client:
            await client.send_all(
                b"POST /v1beta/models/m:streamGenerateContent?alt=sse HTTP/1.1\r\n"
                b"host: louter\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%b"
                % (len(data), data)
            )
            received = bytearray()
            while chunk := await client.receive_some(65536):
                received += chunk
    assert b" 200 " in received.split(b"\r\n", 1)[0]
    assert b'"s:st"' in received
    assert SMUGGLED not in received
    status, body = await call(base, "/v1beta/models/m:generateContent", gemini_body("after"))
    assert (status, body["candidates"][0]["content"]["parts"][0]["text"]) == (200, "echo:after")
    assert upstream.accepts == 2


async def test_a_parse_error_in_the_body_closes_the_connection(
    start_louter: StartLouter, upstream: RawUpstream
) -> None:
    upstream.script = [bad_chunk]
    base = await start_louter(gemini_backend(upstream.port))
    status, body = await call(base, "/v1beta/models/m:generateContent", gemini_body("bad"))
    assert status == 502
    assert "malformed HTTP response" in gemini_envelope_any(body)
    status, body = await call(base, "/v1beta/models/m:generateContent", gemini_body("next"))
    assert (status, body["candidates"][0]["content"]["parts"][0]["text"]) == (200, "echo:next")
    assert upstream.accepts == 2


def gemini_envelope_any(body: Any) -> str:
    assert set(body) == {"error"}
    return str(body["error"]["message"])


async def test_bytes_arriving_on_an_idle_connection_keep_it_out_of_use(
    start_louter: StartLouter, upstream: RawUpstream
) -> None:
    upstream.script = [garbage_later]
    base = await start_louter(gemini_backend(upstream.port))
    status, body = await call(base, "/v1/chat/completions", chat("m", "first"))
    assert (status, body["choices"][0]["message"]["content"]) == (200, "echo:first")
    with trio.fail_after(3):
        await upstream.extra_sent.wait()
    await trio.sleep(0.05)  # the unsolicited answer is in louter's socket buffer
    status, body = await call(base, "/v1/chat/completions", chat("m", "second"))
    assert (status, body["choices"][0]["message"]["content"]) == (200, "echo:second")
    assert upstream.accepts == 2


async def test_two_responses_in_one_read_are_not_joined_by_the_transport(
    upstream: RawUpstream,
) -> None:
    upstream.script = [two_in_one]
    transport = PooledTransport(
        f"http://127.0.0.1:{upstream.port}", connect_timeout=2, deadlines=Deadlines(10)
    )
    try:
        for prompt in ("a", "b"):
            response = await transport.request(
                "/v1beta/models/m:generateContent", [], orjson.dumps(gemini_body(prompt)),
                first_byte_timeout=5,
            )  # fmt: skip
            body = await response.read()
            assert body == echo_body(f"echo:{prompt}")
        assert upstream.accepts == 2
    finally:
        await transport.aclose()


class _HeadWatch:
    def __init__(self) -> None:
        self.head = False
        self.complete = False

    def on_headers_complete(self) -> None:
        self.head = True

    def on_message_complete(self) -> None:
        self.complete = True


class EarlyUpstream:
    """Answers on the first connection as soon as a request's head is in (`first`), reads
    the rest of the body, then sends `then` (if any); later connections answer `OK`."""

    def __init__(self, first: bytes, then: bytes = b"") -> None:
        self.first, self.then = first, then
        self.port = 0
        self.accepts = 0
        self.body_bytes: list[int] = []

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.accepts += 1
        first = self.accepts == 1
        async with stream:
            while True:
                watch = _HeadWatch()
                parser = httptools.HttpRequestParser(watch)
                answered, received = False, 0
                while not watch.complete:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    received += len(data)
                    parser.feed_data(data)
                    if watch.head and first and not answered:
                        answered = True
                        await stream.send_all(self.first)
                self.body_bytes.append(received)
                await stream.send_all(self.then if first else OK)


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
BIG = b"x" * (24 * 1024 * 1024)


@pytest.mark.parametrize(
    ("first", "then", "status", "body", "accepts"),
    [
        (b"HTTP/1.1 413 Too Large\r\ncontent-length: 3\r\n\r\nbig", b"", 413, b"big", 2),
        (b"HTTP/1.1 100 Continue\r\n\r\n", OK, 200, b"ok", 1),
    ],
    ids=["early-413", "interim-100"],
)
async def test_an_answer_before_the_request_is_all_sent(
    first: bytes, then: bytes, status: int, body: bytes, accepts: int, nursery: trio.Nursery
) -> None:
    """A final answer that comes while a large request is still being sent stops the
    sending, is the response, and its connection is closed; an interim 100 does not."""
    upstream = EarlyUpstream(first, then)
    await nursery.start(upstream.serve)
    transport = PooledTransport(
        f"http://127.0.0.1:{upstream.port}", connect_timeout=2, deadlines=Deadlines(10)
    )
    try:
        with trio.fail_after(10):
            response = await transport.request("/big", [], BIG, first_byte_timeout=5)
            assert (response.status, await response.read()) == (status, body)
            response = await transport.request("/small", [], b"{}", first_byte_timeout=5)
            assert (response.status, await response.read()) == (200, b"ok")
        assert upstream.accepts == accepts
    finally:
        await transport.aclose()


def echo_body(text: str) -> bytes:
    return echo_payload(gemini_answer(text))


def echo_payload(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


# --------------------------------------------------------------------------- the transport


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/x\r\nx-injected: 1", []),
        ("/v1/x\nx-injected: 1", []),
        ("/v1/x y", []),
        ("/v1/x#y", []),
        ("/v1/\u2603", []),
        ("/v1/x", [(b"x-api-key", b"k\r\nx-injected: 1")]),
        ("/v1/x", [(b"x-api-key", b"k\x00")]),
        ("/v1/x", [(b"x-api-key", b"k\x7f")]),
        ("/v1/x", [(b"x-bad name", b"v")]),
    ],
)
async def test_the_transport_refuses_unsafe_targets_and_headers(
    path: str, headers: list[tuple[bytes, bytes]], upstream: RawUpstream
) -> None:
    transport = PooledTransport(
        f"http://127.0.0.1:{upstream.port}", connect_timeout=2, deadlines=Deadlines(10),
        label="gem",
    )  # fmt: skip
    try:
        with pytest.raises(LouterError) as info:
            await transport.request(path, headers, b"{}", first_byte_timeout=5)
        assert not isinstance(info.value, UpstreamError)  # the request's fault, not gem's
        assert info.value.status_hint == 400
        assert info.value.message.startswith("gem: request refused")
        await trio.sleep(0.05)
        assert upstream.accepts == 0 and upstream.raw == b""
    finally:
        await transport.aclose()


async def test_the_host_header_never_carries_url_credentials(upstream: RawUpstream) -> None:
    transport = PooledTransport(
        f"http://alice:s3cret@127.0.0.1:{upstream.port}/base", connect_timeout=2,
        deadlines=Deadlines(10), label="gem",
    )  # fmt: skip
    try:
        response = await transport.request(
            "/v1beta/models/m:generateContent", [], orjson.dumps(gemini_body("h")),
            first_byte_timeout=5,
        )  # fmt: skip
        await response.read()
    finally:
        await transport.aclose()
    seen = upstream.requests[0]
    assert seen.target == b"/base/v1beta/models/m:generateContent"
    assert (b"host", f"127.0.0.1:{upstream.port}".encode()) in seen.headers
    assert b"alice" not in upstream.raw and b"s3cret" not in upstream.raw


GOOD_MODELS = [
    "gpt-oss:20b",
    "Qwen/Qwen3-Coder-30B",
    "models/gemini-2.5-pro",
    "claude-3-5-sonnet@20240620",
    "llama3.1:8b-instruct-q4_K_M",
    "org/model+lora",
    "a",
    "x" * 256,
    "...",
    ".hidden",
]


def test_the_model_name_rule() -> None:
    for good in GOOD_MODELS:
        assert check_model(good) == good
    for bad in BAD_MODELS + ["", ".", "..", "/m", "m/", "a/./b", "a/../b"]:
        with pytest.raises(LouterError) as info:
            check_model(bad)
        assert info.value.status_hint == 400


def test_forwarded_header_values_are_checked() -> None:
    assert header_value("2023-06-01", "anthropic-version") == b"2023-06-01"
    assert header_value("Bearer k\tk", "authorization") == b"Bearer k\tk"
    for bad in ("k\r\nx-injected: 1", "k\n", "k\x00", "k\x7f", "k\u2603"):
        with pytest.raises(LouterError) as info:
            header_value(bad, "x-api-key")
        assert info.value.status_hint == 400


async def test_the_httpx_transport_sends_no_url_credentials(upstream: RawUpstream) -> None:
    transport = HttpxTransport(
        f"http://alice:s3cret@127.0.0.1:{upstream.port}/base", connect_timeout=2, label="gem"
    )
    try:
        with trio.fail_after(10):
            response = await transport.request(
                "/v1beta/models/Qwen%2FQwen3:generateContent", [], orjson.dumps(gemini_body()),
                first_byte_timeout=5,
            )  # fmt: skip
            await response.aclose()
        with pytest.raises(LouterError) as info:
            await transport.request("/v1/x\r\nx-injected: 1", [], b"{}", first_byte_timeout=5)
        assert info.value.status_hint == 400
    finally:
        await transport.aclose()
    seen = upstream.requests[0]
    assert seen.target == b"/base/v1beta/models/Qwen%2FQwen3:generateContent"
    assert (b"host", f"127.0.0.1:{upstream.port}".encode()) in seen.headers
    assert b"alice" not in upstream.raw and b"s3cret" not in upstream.raw
    assert b"authorization" not in upstream.raw.lower()
    assert len(upstream.requests) == 1


# --------------------------------------------------------------------------- error messages


def named_backend(url: str, extra: str = "") -> str:
    return f'{extra}[backends.primary]\nprotocol = "gemini"\nurl = "{url}"\napi_key = "k"\n'


def no_address(message: str, port: int) -> None:
    assert "primary" in message
    for secret in ("127.0.0.1", str(port), "http://"):
        assert secret not in message, message


async def test_connect_failure_names_the_backend_not_its_address(
    start_louter: StartLouter,
) -> None:
    port = closed_port()
    base = await start_louter(named_backend(f"http://127.0.0.1:{port}/v1"))
    status, body = await call(base, "/v1/chat/completions", chat("m"))
    assert status == 502
    no_address(openai_envelope_any(body), port)
    status, body = await call(base, "/v1beta/models/m:generateContent", gemini_body())
    assert status == 502
    no_address(body["error"]["message"], port)


async def test_timeout_names_the_backend_not_its_address(
    start_louter: StartLouter, upstream: RawUpstream
) -> None:
    upstream.script = [hang, hang]
    base = await start_louter(
        named_backend(f"http://127.0.0.1:{upstream.port}", "[performance]\ntimeout_seconds = 0.3\n")
    )
    status, body = await call(base, "/v1/messages", anthropic_body("m"))
    assert status == 504
    no_address(body["error"]["message"], upstream.port)
    status, body = await call(base, "/v1/responses", {"model": "m", "input": "hi"})
    assert status == 504
    no_address(body["error"]["message"], upstream.port)


def openai_envelope_any(body: Any) -> str:
    assert set(body) == {"error"}
    return str(body["error"]["message"])
