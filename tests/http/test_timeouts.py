"""Inbound timeouts: slow clients and idle keep-alive connections are dropped by the watchdog."""

from __future__ import annotations

from functools import partial

import trio

from louter.config import load_config
from louter.http.server import Limits
from louter.proxy.app import build_context, serve

BODY = b'{"model":"m","messages":[{"role":"user","content":"a"}]}'
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%b" % (len(BODY), BODY)
)


async def _start(nursery: trio.Nursery, limits: Limits) -> int:
    ctx = build_context(load_config(None, {}), default_backend="mock")
    return await nursery.start(partial(serve, ctx, "127.0.0.1", 0, limits=limits))


async def _read_until_closed(stream: trio.SocketStream) -> bytes:
    received = b""
    while data := await stream.receive_some():
        received += data
    return received


async def test_slow_client_is_dropped(nursery):
    port = await _start(nursery, Limits(request_timeout=0.3))
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(REQUEST[:30])  # headers never complete
    started = trio.current_time()
    with trio.fail_after(3):
        assert await _read_until_closed(stream) == b""
    assert trio.current_time() - started >= 0.3
    await stream.aclose()


async def test_idle_keep_alive_connection_is_closed(nursery):
    port = await _start(nursery, Limits(idle_timeout=0.3))
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(REQUEST)
    with trio.fail_after(3):
        received = await _read_until_closed(stream)
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Mock answer to" in received
    await stream.aclose()


async def test_busy_connection_is_not_dropped_while_active(nursery):
    port = await _start(nursery, Limits(idle_timeout=0.6))
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    for _ in range(4):  # 4 requests spaced 0.3 s apart: each resets the idle deadline
        await stream.send_all(REQUEST)
        response = await stream.receive_some()
        assert response.startswith(b"HTTP/1.1 200 OK\r\n")
        await trio.sleep(0.3)
    await stream.aclose()
