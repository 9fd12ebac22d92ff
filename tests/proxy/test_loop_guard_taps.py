"""The watched OpenAI passthrough (`louter/proxy/watch.py`) over both journal taps: the
full `OpenAITap` (the log keeps payloads) and the lean `OpenAIUsageTap` (no log, or no
payloads), which decodes only the keys the loop guard reads. Through real HTTP: the same
stream must give the client the same bytes and the same cut with either tap, also once
the lean tap has handed over to the full one (a CRLF stream, a stream past what it keeps),
and a stream with a tool call is never cut.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from louter.config import parse_config
from louter.proxy.app import build_context, serve
from louter.proxy.pipeline import Call
from louter.proxy.taps import OpenAIUsageTap
from louter.proxy.watch import TextWatch, WatchedRelay
from tests.fakes import FakeUpstream, SSEReply, chat_chunk
from tests.proxy.test_request_memory import alive, no_collector  # noqa: F401 - a fixture

PARAGRAPH = "I will now check the configuration file again to be sure it is right. "  # 71 chars
LOOPS = """
[loop_detection]
min_pattern_length = 50
max_pattern_length = 500
min_repetitions = 3
"""
NOTE = "[louter stopped this answer"
TAPS = ["full", "lean"]  # the log keeps payloads (full tap), or there is no log (lean)


async def _start(nursery: trio.Nursery, fake: FakeUpstream, tap: str, tmp_path: Path):
    await nursery.start(fake.serve)
    config = f'[backends.up]\nurl = "{fake.url}"\nprotocol = "openai"\n' + LOOPS
    log = tmp_path / "log.jsonl" if tap == "full" else None
    ctx = build_context(parse_config(config, path="t.toml", env={}), default_backend="up",
                        log_file=log)  # fmt: skip
    assert ctx.journal.keeps_payloads is (tap == "full")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}", ctx


def _event(chunk: dict[str, Any], crlf: bool = False) -> bytes:
    end = b"\r\n\r\n" if crlf else b"\n\n"
    return b"data: " + orjson.dumps(chunk) + end


def _looping(prefix: list[str], crlf: bool = False) -> Iterator[bytes]:
    """`prefix` pieces (no loop), then PARAGRAPH again and again, 9 characters a chunk."""
    yield _event(chat_chunk("", role="assistant"), crlf)
    for piece in prefix:
        yield _event(chat_chunk(piece), crlf)
    for start in itertools.count(0, 9):
        at = start % len(PARAGRAPH)
        yield _event(chat_chunk((PARAGRAPH * 2)[at : at + 9]), crlf)


async def _post(base: str) -> tuple[str, list[dict[str, Any]]]:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=20) as client:
        reply = await client.post(base + "/v1/chat/completions", json=body)
    assert reply.status_code == 200
    events = [e[6:] for e in reply.text.replace("\r\n", "\n").split("\n\n") if e[:6] == "data: "]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    return text, chunks


CUT_ONCE = b'loop_detections_total{action="cut",backend="up",kind="text"} 1.0'


@pytest.mark.parametrize("tap", TAPS)
@pytest.mark.parametrize("crlf", [False, True])
async def test_a_loop_is_cut_with_either_tap(
    nursery: trio.Nursery, tmp_path: Path, tap: str, crlf: bool
) -> None:
    fake = FakeUpstream(default=lambda request: SSEReply(_looping([], crlf), pause=0.001))  # type: ignore[arg-type]
    base, ctx = await _start(nursery, fake, tap, tmp_path)
    with trio.fail_after(20):
        text, chunks = await _post(base)
        await fake.requests[0].connection.closed.wait()  # the upstream was let go
    body, _, note = text.rpartition("\n\n")
    assert note.startswith(NOTE) and "configuration file" in note
    assert PARAGRAPH * 3 in body and len(body) < len(PARAGRAPH) * 5
    assert {c["id"] for c in chunks} == {"chatcmpl-fake"}  # the closing chunks too
    assert {c["model"] for c in chunks} == {"real-model"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert ctx.metrics is not None and CUT_ONCE in ctx.metrics.render()


@pytest.mark.parametrize("tap", TAPS)
async def test_a_loop_past_what_the_lean_tap_keeps(
    nursery: trio.Nursery, tmp_path: Path, tap: str
) -> None:
    """More stream than the lean tap keeps (it hands over to the full tap), then a loop:
    cut once, after all the text before it."""
    prefix = [f"w{n} " for n in range(OpenAIUsageTap.KEEP_BYTES // 150 + 200)]
    fake = FakeUpstream(default=lambda request: SSEReply(_looping(prefix), pause=0))  # type: ignore[arg-type]
    base, ctx = await _start(nursery, fake, tap, tmp_path)
    with trio.fail_after(30):
        text, _ = await _post(base)
    body, _, note = text.rpartition("\n\n")
    assert note.startswith(NOTE)
    assert body.startswith("".join(prefix) + PARAGRAPH * 3)
    assert len(body) < len("".join(prefix)) + len(PARAGRAPH) * 5
    assert ctx.metrics is not None and CUT_ONCE in ctx.metrics.render()


@pytest.mark.parametrize("tap", TAPS)
async def test_no_cut_once_a_tool_call_began(
    nursery: trio.Nursery, tmp_path: Path, tap: str
) -> None:
    """A Chat Completions stream ends its calls only at the finish: text that loops after
    a call began is passed on whole, byte for byte."""
    call = {"index": 0, "id": "c1", "type": "function",
            "function": {"name": "f", "arguments": "{}"}}  # fmt: skip
    events = [
        _event(chat_chunk("", role="assistant")),
        _event({**chat_chunk(), "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}),
        *(_event(chat_chunk(PARAGRAPH)) for _ in range(8)),
        _event(chat_chunk(finish="tool_calls")),
        b"data: [DONE]\n\n",
    ]
    fake = FakeUpstream(default=lambda request: SSEReply(events))
    base, ctx = await _start(nursery, fake, tap, tmp_path)
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=20) as client:
        reply = await client.post(base + "/v1/chat/completions", json=body)
    assert reply.content == b"".join(events)
    assert ctx.metrics is not None
    assert b"loop_detections_total{" not in ctx.metrics.render()  # found, never cut


@pytest.mark.parametrize("tap", TAPS)
async def test_an_answer_without_a_loop_passes_through(
    nursery: trio.Nursery, tmp_path: Path, tap: str
) -> None:
    events = [_event(chat_chunk("", role="assistant"))]
    events += [_event(chat_chunk(f"tok{n} ")) for n in range(300)]
    usage = {"prompt_tokens": 5, "completion_tokens": 300, "total_tokens": 305}
    events += [_event(chat_chunk(finish="stop")), _event({**chat_chunk(), "choices": [],
               "usage": usage}), b"data: [DONE]\n\n"]  # fmt: skip
    fake = FakeUpstream(default=lambda request: SSEReply([b"".join(events[:150]),
                                                          b"".join(events[150:])]))  # fmt: skip
    base, ctx = await _start(nursery, fake, tap, tmp_path)
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=20) as client:
        reply = await client.post(base + "/v1/chat/completions", json=body)
    assert reply.content == b"".join(events)
    assert ctx.metrics is not None
    rendered = ctx.metrics.render()
    assert b"loop_detections_total{" not in rendered
    assert b'tokens_total{backend="up",type="output"} 300.0' in rendered  # the usage read


@pytest.mark.parametrize("tap", TAPS)
async def test_a_watched_stream_leaves_nothing_for_the_collector(
    nursery: trio.Nursery,
    tmp_path: Path,
    tap: str,
    no_collector: None,  # noqa: F811
) -> None:
    """With the cyclic collector off, a watched stream's relay, tap and call are freed as
    soon as it is over: no reference cycle (a tap holding its relay made one per stream,
    and under load the collector's passes cost more than the guard itself)."""
    events = [_event(chat_chunk("", role="assistant"))]
    events += [_event(chat_chunk(f"tok{n} ")) for n in range(40)]
    events += [_event(chat_chunk(finish="stop")), b"data: [DONE]\n\n"]
    fake = FakeUpstream(default=lambda request: SSEReply([b"".join(events[:20]),
                                                          b"".join(events[20:])]))  # fmt: skip
    base, _ = await _start(nursery, fake, tap, tmp_path)
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(timeout=20) as client:
        for _ in range(3):
            reply = await client.post(base + "/v1/chat/completions", json=body)
            assert reply.content == b"".join(events)
    assert alive(WatchedRelay) == 0
    assert alive(TextWatch) == 0
    assert alive(Call) == 0
