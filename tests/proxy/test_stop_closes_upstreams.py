"""louter stopping (its task cancelled) while it still reads an upstream's stream closes
that connection itself: not left open for the garbage collector to find (CI saw the
`ResourceWarning: unclosed <socket.socket ...>` of a llama-server connection)."""

from __future__ import annotations

import gc
import warnings

import orjson
import trio

from louter.config import parse_config
from louter.proxy.app import build_context, serve
from tests.fakes import FakeUpstream, SSEReply, chat_chunk, sse_events


async def test_a_stream_in_flight_is_closed_when_louter_stops(nursery: trio.Nursery) -> None:
    first = sse_events(chat_chunk("hel"), done=False)
    upstream = FakeUpstream(SSEReply([first], end="hang"))  # then nothing, never the end
    await nursery.start(upstream.serve)
    config = parse_config(
        f'[backends.up]\nurl = "{upstream.url}"\nprotocol = "openai"\n', path="t.toml", env={}
    )
    ctx = build_context(config, default_backend="up")
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        async with trio.open_nursery() as louter:
            port = await louter.start(serve, ctx, "127.0.0.1", 0)
            request = orjson.dumps(body)
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(
                    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                    b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
                    % (len(request), request)
                )
                seen_bytes = b""
                with trio.fail_after(5):
                    while b"hel" not in seen_bytes:
                        seen_bytes += await client.receive_some()
                louter.cancel_scope.cancel()  # louter stops, the stream still open
        gc.collect()
    unclosed = [str(w.message) for w in seen if "unclosed <socket" in str(w.message)]
    assert not unclosed, unclosed
    with trio.fail_after(5):  # and the upstream saw its connection closed
        await upstream.connections[0].closed.wait()
