"""The inbound server under hostile or broken clients: trickling (slowloris) clients, more
connections than the cap or the fd limit allow, protocol errors in each door's envelope.

Raw trio sockets on 127.0.0.1; every wait is bounded."""

from __future__ import annotations

import functools
import itertools
import resource
import socket
import subprocess
import sys
from pathlib import Path

import httptools
import httpx
import orjson
import pytest
import trio

from louter.config import load_config
from louter.convert.dialect import DIALECTS
from louter.http.server import Limits
from louter.proxy.app import build_context, serve
from tests.paths import REPO

CHAT = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "ping"}]})
DRIP = 0.3  # seconds between two trickled bytes


async def start(nursery: trio.Nursery, limits: Limits) -> int:
    ctx = build_context(load_config(None, {}), default_backend="mock")
    return await nursery.start(functools.partial(serve, ctx, "127.0.0.1", 0, limits=limits))


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    received = b""
    try:
        while data := await stream.receive_some():
            received += data
    except trio.BrokenResourceError:  # reset after the answer: what arrived still counts
        pass
    return received


class Trickler:
    """Sends `head` at once, then one byte of `drip` every DRIP seconds until the server
    closes the connection (or the test ends)."""

    def __init__(self, stream: trio.SocketStream, head: bytes, drip: bytes) -> None:
        self.stream = stream
        self.head = head
        self.drip = drip
        self.sent_after_head = 0

    async def run(self) -> None:
        try:
            await self.stream.send_all(self.head)
            for byte in itertools.cycle(self.drip):
                await trio.sleep(DRIP)
                await self.stream.send_all(bytes([byte]))
                self.sent_after_head += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the server closed the connection: what the test waits for


async def trickle_until_closed(port: int, head: bytes, drip: bytes) -> tuple[float, bytes, int]:
    """(seconds until the server closed, what it sent, bytes trickled after the head)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    trickler = Trickler(stream, head, drip)
    async with stream, trio.open_nursery() as nursery:
        started = trio.current_time()
        nursery.start_soon(trickler.run)
        with trio.fail_after(6):
            received = await read_until_closed(stream)
        elapsed = trio.current_time() - started
        nursery.cancel_scope.cancel()
    return elapsed, received, trickler.sent_after_head


# --------------------------------------------------------------------------- slowloris


async def test_trickled_headers_are_cut_at_the_header_budget(nursery):
    port = await start(nursery, Limits(header_timeout=1.0, request_timeout=5.0))
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: "
    elapsed, received, dripped = await trickle_until_closed(port, head, b"abcdefgh")
    assert received == b""
    assert 1.0 <= elapsed < 2.5, elapsed  # budget + watchdog interval, not renewed per byte
    assert dripped >= 3  # bytes kept coming while the budget ran out


async def test_trickled_body_is_cut_at_the_request_budget(nursery):
    port = await start(nursery, Limits(header_timeout=0.5, request_timeout=1.5))
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 1000\r\n\r\n"
    )
    elapsed, received, dripped = await trickle_until_closed(port, head, b" ")
    assert received == b""
    assert 1.5 <= elapsed < 3.0, elapsed
    assert dripped >= 4


async def test_a_prompt_request_after_an_idle_wait_is_served(nursery):
    """The budgets start at a request's first byte, not when the connection opened."""
    port = await start(nursery, Limits(header_timeout=0.5, request_timeout=0.5))
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await trio.sleep(1.0)  # idle longer than both budgets (idle timeout is 75 s)
        await stream.send_all(_post("/v1/chat/completions", CHAT))
        with trio.fail_after(3):
            response = await read_response(stream)
    assert response.status == 200, response.body


# --------------------------------------------------------------------------- responses


class Response:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True

    @property
    def json(self):  # type: ignore[no-untyped-def]
        return orjson.loads(self.body)


async def read_response(stream: trio.SocketStream) -> Response:
    response = Response()
    parser = httptools.HttpResponseParser(response)
    while not response.complete:
        data = await stream.receive_some()
        assert data, "connection closed before a complete response"
        parser.feed_data(data)
    response.status = parser.get_status_code()
    return response


async def exchange(port: int, raw: bytes) -> tuple[Response, bool]:
    """Send `raw`, read one response; also whether the server then closed the connection."""
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(raw)
        with trio.fail_after(3):
            response = await read_response(stream)
            closed = await read_until_closed(stream) == b""
    return response, closed


def _post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST %b HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n%b\r\n%b" % (path.encode(), len(body), extra, body)
    )


DOORS = {
    "/v1/chat/completions": "openai",
    "/v1beta/models/x:generateContent": "gemini",
    "/v1beta/models/x:streamGenerateContent?alt=sse&key=k": "gemini",
    "/v1/messages": "anthropic",
    "/v1/responses": "responses",
}


def assert_envelope(dialect: str, status: int, body: dict, needle: str) -> None:
    """`body` is exactly the dialect's error envelope for `status` with a message about
    `needle`."""
    if dialect == "gemini":
        message = body["error"]["message"]
        assert body["error"]["code"] == status
        assert set(body["error"]) == {"code", "message", "status"}
    elif dialect == "anthropic":
        message = body["error"]["message"]
        assert body["type"] == "error"
    else:
        message = body["error"]["message"]
        assert set(body["error"]) == {"message", "type", "param", "code"}
    assert needle in message, message
    assert body == DIALECTS[dialect].error_body(status, message)


SMALL = Limits(max_body=2000, max_header=1024)
FAULTS = {
    413: (lambda path: _post(path, b"x" * 3000), "too large"),
    431: (lambda path: _post(path, CHAT, b"x-big: " + b"a" * 2000 + b"\r\n"), "too large"),
    400: (lambda path: b"POST %b HTTP/1.1\r\nbad header line\r\n\r\n" % path.encode(), "malformed"),
}


@pytest.mark.parametrize("status", sorted(FAULTS))
@pytest.mark.parametrize("path", sorted(DOORS))
async def test_protocol_errors_use_the_doors_envelope(nursery, path, status):
    port = await start(nursery, SMALL)
    make, needle = FAULTS[status]
    response, closed = await exchange(port, make(path))
    assert response.status == status
    assert response.headers["connection"] == "close"
    assert closed
    assert_envelope(DOORS[path], status, response.json, needle)


async def test_garbage_before_any_path_gets_openais_envelope(nursery):
    port = await start(nursery, SMALL)
    response, closed = await exchange(port, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
    assert response.status == 400
    assert closed
    assert_envelope("openai", 400, response.json, "malformed")


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"gzip", b"identity", b"deflate"])
async def test_transfer_codings_other_than_chunked_are_refused(nursery, coding):
    port = await start(nursery, SMALL)
    body = b"0\r\n\r\n"
    raw = (
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: %b\r\n\r\n%b" % (coding, body)
    )
    response, closed = await exchange(port, raw)
    assert response.status == 501
    assert closed
    assert_envelope("anthropic", 501, response.json, "transfer-encoding")


async def test_chunked_in_any_case_is_still_accepted(nursery):
    port = await start(nursery, SMALL)
    raw = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"Transfer-Encoding: Chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(CHAT), CHAT)
    )
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(raw)
        with trio.fail_after(3):
            response = await read_response(stream)
    assert response.status == 200, response.body


async def test_content_length_with_transfer_encoding_is_refused(nursery):
    port = await start(nursery, SMALL)
    raw = (
        b"POST /v1beta/models/m:generateContent HTTP/1.1\r\nhost: x\r\n"
        b"content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    response, closed = await exchange(port, raw)
    assert response.status == 400
    assert closed
    assert_envelope("gemini", 400, response.json, "Content-Length")


async def test_gemini_action_with_get_is_405_with_allow(nursery):
    port = await start(nursery, SMALL)
    raw = b"GET /v1beta/models/m:generateContent HTTP/1.1\r\nhost: x\r\n\r\n"
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(raw)
        with trio.fail_after(3):
            response = await read_response(stream)
    assert response.status == 405
    assert response.headers["allow"] == "POST"
    assert_envelope("gemini", 405, response.json, "needs POST")


async def test_generic_405_keeps_its_allow(nursery):
    port = await start(nursery, SMALL)
    raw = b"GET /v1/messages HTTP/1.1\r\nhost: x\r\n\r\n"
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(raw)
        with trio.fail_after(3):
            response = await read_response(stream)
    assert response.status == 405
    assert response.headers["allow"] == "POST"
    assert_envelope("anthropic", 405, response.json, "not allowed")


# --------------------------------------------------------------------------- the cap


async def test_connections_beyond_max_connections_get_503(start_louter):
    base = await start_louter("[server]\nmax_connections = 2\n\n[backends.mock]\n")
    port = int(base.rsplit(":", 1)[1])
    held = []
    for _ in range(2):  # two keep-alive connections, each answered once (so surely admitted)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        with trio.fail_after(3):
            assert (await read_response(stream)).status == 200
        held.append(stream)

    response, closed = await exchange(port, _post("/v1/messages", b"{}"))
    assert response.status == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["connection"] == "close"
    assert closed
    assert_envelope("anthropic", 503, response.json, "connection limit")

    await held.pop().aclose()  # a slot frees up: the next client is served
    with trio.fail_after(3):
        while True:
            request = _post("/v1/chat/completions", CHAT, b"connection: close\r\n")
            response, _ = await exchange(port, request)
            if response.status != 503:
                break
            await trio.sleep(0.05)  # the server notices the close within a moment
    assert response.status == 200, response.body
    await held.pop().aclose()


# --------------------------------------------------------------------------- fd limit

FD_LIMIT = 64
ATTACKERS = 100  # more slow connections than descriptors


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


# The derived cap (half the fd limit, less a reserve: 16), and a cap the fd limit is hit
# before (then accept() fails with EMFILE until the slow connections are cut).
@pytest.mark.parametrize("cap", ["", "max_connections = 1000\n"], ids=["derived", "above"])
async def test_normal_clients_are_served_under_a_low_fd_limit(tmp_path: Path, cap: str):
    config = tmp_path / "louter.toml"
    config.write_text(
        "[server]\nheader_timeout_seconds = 1\nrequest_timeout_seconds = 2\n"
        f"{cap}\n[backends.mock]\n"
    )
    port = _free_port()
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "bin" / "louter"), "--port", str(port)]
            + ["--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=_low_fd_limit,  # only setrlimit between fork and exec
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # No keep-alive: each request of a normal client needs a new connection admitted.
        fresh = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=5, limits=fresh) as client:
            await _wait_for_health(client, base, proc, stderr)
            async with trio.open_nursery() as nursery:
                attackers = await _attack(nursery, port)
                await trio.sleep(0.5)  # the attackers hold every slot now
                for _ in range(5):
                    with trio.fail_after(6):
                        await _served(client, base)
                assert proc.poll() is None, stderr.read_text()
                with trio.fail_after(5):  # every attacker was closed, none kept its slot
                    while any(not a.done for a in attackers):
                        await trio.sleep(0.1)
            refused = [a for a in attackers if a.answer.startswith(b"HTTP/1.1 503 ")]
            cut = [a for a in attackers if a.answer == b""]
            assert len(refused) + len(cut) == ATTACKERS  # nobody trickling got an answer
            if not cap:
                assert 0 < len(cut) <= 16 < len(refused)  # the derived cap: (64 - 32) // 2
            await _served(client, base)
        assert proc.poll() is None, stderr.read_text()
    finally:
        proc.kill()
        proc.wait()


class Attacker:
    def __init__(self) -> None:
        self.done = False
        self.answer = b""  # a 503 when refused at the cap; nothing when cut at the budget

    async def run(self, port: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        head = b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: "
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(Trickler(stream, head, b"abcdef").run)
            self.answer = await read_until_closed(stream)  # cut at the budget, or refused
            self.done = True
            nursery.cancel_scope.cancel()


async def _attack(nursery: trio.Nursery, port: int) -> list[Attacker]:
    attackers = [Attacker() for _ in range(ATTACKERS)]
    for attacker in attackers:
        nursery.start_soon(attacker.run, port)
    return attackers


async def _served(client: httpx.AsyncClient, base: str) -> None:
    """A normal client: posts, and waits as told when refused with 503 at the cap."""
    while True:
        response = await client.post(
            base + "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "ping"}]},
        )
        if response.status_code != 503:
            break
        assert response.headers["retry-after"] == "1"
        await trio.sleep(0.2)
    assert response.status_code == 200, response.text


async def _wait_for_health(
    client: httpx.AsyncClient, base: str, proc: subprocess.Popen[bytes], stderr: Path
) -> None:
    with trio.fail_after(15):
        while True:
            assert proc.poll() is None, stderr.read_text()
            try:
                response = await client.get(base + "/health")
            except httpx.TransportError:
                await trio.sleep(0.05)
                continue
            assert response.status_code == 200
            return


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
