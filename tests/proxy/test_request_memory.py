"""A finished request's objects are freed at once, by reference counting.

Issue 24 (peak RSS): the exchange and the pipeline's call referred to each other, so
every request's parsed body (a 50 KB request is some 3,000 objects) waited for the
cyclic garbage collector, which runs seldom on a frozen heap. Under 16 concurrent 50 KB
requests that held louter at 67 MiB instead of 48. Here the collector is off while real
requests go through louter over loopback; afterwards no `Call` may be alive, and no
`Exchange` but the last one (the connection's responder keeps its stamp until the next).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import httptools
import httpx
import pytest
import trio

from louter.http.server import Connection, _ParserProtocol
from louter.http.upstream import _ResponseProtocol
from louter.proxy.exchange import Exchange
from louter.proxy.pipeline import Call
from tests.fakes import FakeUpstream, JSONReply, chat_completion

CHAT = {"model": "any-model", "messages": [{"role": "user", "content": "ping " * 2000}]}
MESSAGES = {**CHAT, "max_tokens": 50}


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def alive(kind: type) -> int:
    return sum(type(o) is kind for o in gc.get_objects())


async def test_requests_leave_no_exchange_behind(
    start_louter, tmp_path: Path, no_collector: None
) -> None:
    base = await start_louter(log_file=tmp_path / "louter.jsonl")
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for _ in range(3):
            for stream in (False, True):
                answer = await http.post("/v1/chat/completions", json={**CHAT, "stream": stream})
                assert answer.status_code == 200, answer.text
            answer = await http.post("/v1/messages", json=MESSAGES)
            assert answer.status_code == 200, answer.text
            answer = await http.post("/v1/chat/completions", content=b"{not json")
            assert answer.status_code == 400
    assert alive(Call) == 0
    assert alive(Exchange) <= 1  # the connection's responder stamps with the last one


async def test_closed_connections_leave_nothing_behind(start_louter, no_collector: None) -> None:
    """A client connection's parser and its callbacks refer to each other: once the
    connection is closed they are freed at once, not left to the collector."""
    base = await start_louter()
    for _ in range(3):
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            answer = await http.post("/v1/chat/completions", json=CHAT)
            assert answer.status_code == 200, answer.text
    with trio.fail_after(5):
        while alive(Connection):  # louter's side closes just after the client's
            await trio.sleep(0.01)
    assert alive(_ParserProtocol) == 0
    assert alive(httptools.HttpRequestParser) == 0


async def test_closed_upstream_connections_leave_nothing_behind(
    start_louter, nursery: trio.Nursery, no_collector: None
) -> None:
    """An upstream that closes its connection after each answer (llama-server does
    after a stream): the response parser and its callbacks go with the connection."""
    closing = JSONReply(chat_completion("hi"), headers=(("connection", "close"),))
    fake = FakeUpstream(default=closing)
    await nursery.start(fake.serve)
    base = await start_louter(f'[backends.up]\nurl = "{fake.url}"\nprotocol = "openai"\n')
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for _ in range(3):
            answer = await http.post("/v1/chat/completions", json=CHAT)
            assert answer.status_code == 200, answer.text
    assert len(fake.connections) == 3  # (each answer closed its connection)
    assert alive(_ResponseProtocol) == 0
    assert alive(httptools.HttpResponseParser) == 0
