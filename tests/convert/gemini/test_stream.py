"""Gemini streams: parser goldens, re-chunking invariance, emitter rules, round trips.

Stream fixtures (tests/fixtures/gemini/streams/) hold either the raw `sse` of an
upstream answer (expected `events`, then the emitter's output for them) or a script of
neutral `events` as another dialect's backend yields them (expected emitter output).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from louter.convert import gemini
from louter.convert import model as m
from louter.convert.collect import StreamCollector
from louter.convert.sse import SSEDecoder, SSEEvent
from louter.errors import ConversionError
from tests.convert.gemini.test_convert import META, cases, golden, ids, load, plain, unplain
from tests.paths import FIXTURES as FIXTURES_DIR

# --------------------------------------------------------------------------- helpers


def parse_stream(chunks: Iterable[bytes]) -> list[m.StreamEvent]:
    decoder = SSEDecoder()
    parser = gemini.StreamParser(ids)
    events: list[m.StreamEvent] = []
    for chunk in chunks:
        for event in decoder.feed(chunk):
            events += parser.feed(event)
    for event in decoder.flush():
        events += parser.feed(event)
    return events + parser.flush()


def emit(events: Iterable[m.StreamEvent], *, sse: bool = True) -> bytes:
    emitter = gemini.StreamEmitter(META, sse=sse)
    return b"".join(emitter.feed(event) for event in events) + emitter.flush()


def sse_chunks(raw: bytes) -> list[Any]:
    """The JSON objects of an SSE body written by the emitter, checking the framing."""
    assert raw.endswith(b"\r\n\r\n")
    blocks = raw.split(b"\r\n\r\n")[:-1]
    assert all(block.startswith(b"data: ") and b"\n" not in block for block in blocks)
    return [orjson.loads(block[6:]) for block in blocks]


def collect(events: Iterable[m.StreamEvent]) -> StreamCollector:
    collector = StreamCollector()
    for event in events:
        collector.feed(event)
    return collector


def summary(collector: StreamCollector) -> tuple[Any, ...]:
    response = collector.result()
    calls = [(c.id, c.name, arguments(c.arguments), c.signature) for c in response.tool_calls()]
    reasoning = "".join(p.text for p in response.parts if isinstance(p, m.Reasoning))
    error = collector.error.message if collector.error else None
    return response.text(), reasoning, calls, collector.finish_reason, collector.usage, error


def arguments(text: str) -> Any:
    """Arguments compared as JSON values (the emitter re-serialises them), or as text."""
    try:
        return orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return text


def source_events(path: Path) -> list[m.StreamEvent]:
    data = load(path)
    if "sse" in data:
        return parse_stream([data["sse"].encode()])
    return [unplain(event) for event in data["events"]]


def check_contract(events: list[m.StreamEvent]) -> None:
    assert isinstance(events[0], m.MessageStart)
    assert isinstance(events[-1], m.MessageStop | m.StreamError)
    assert sum(isinstance(e, m.MessageStart | m.MessageStop | m.StreamError) for e in events) == 2
    open_calls: set[int] = set()
    for event in events:
        if isinstance(event, m.ToolCallStart):
            open_calls.add(event.index)
        elif isinstance(event, m.ToolCallDelta):
            assert event.index in open_calls
        elif isinstance(event, m.ToolCallEnd):
            open_calls.remove(event.index)


def check_chunk(chunk: dict[str, Any]) -> None:
    """No empty candidates or parts; responseId and modelVersion on every chunk."""
    if "error" in chunk:
        assert set(chunk) == {"error"} and set(chunk["error"]) == {"code", "message", "status"}
        return
    assert chunk["candidates"] and chunk["candidates"][0]["content"]["parts"]
    assert all(part for part in chunk["candidates"][0]["content"]["parts"])
    assert (chunk["responseId"], chunk["modelVersion"]) == (META.id, META.model)


# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize("path", cases("streams", "sse"))
def test_parser_golden(path: Path) -> None:
    events = parse_stream([load(path)["sse"].encode()])
    check_contract(events)
    golden(path, "events", plain(events))


@pytest.mark.parametrize("path", cases("streams", "sse"))
def test_parser_rechunking_invariance(path: Path) -> None:
    raw = load(path)["sse"].encode()
    whole = parse_stream([raw])
    assert parse_stream([raw[i : i + 1] for i in range(len(raw))]) == whole
    for offset in range(1, len(raw)):
        assert parse_stream([raw[:offset], raw[offset:]]) == whole, offset


def test_parser_holds_the_stop_for_the_last_usage() -> None:
    path = FIXTURES_DIR / "gemini" / "streams"
    events = parse_stream([load(path / "synth-thinking-usage-after-finish.json")["sse"].encode()])
    stop = events[-1]
    assert isinstance(stop, m.MessageStop)
    assert stop.finish_reason == "stop"
    assert stop.usage == m.Usage(10, 13, reasoning_tokens=8, cached_tokens=2)


def feed_chunks(*chunks: Any) -> list[m.StreamEvent]:
    parser = gemini.StreamParser(ids)
    out: list[m.StreamEvent] = []
    for chunk in chunks:
        out += parser.feed(
            SSEEvent(chunk if isinstance(chunk, str) else orjson.dumps(chunk).decode())
        )
    return out + parser.flush()


def text_chunk(text: str, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "index": 0,
    }
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], **extra}


def test_parser_edge_cases() -> None:
    assert feed_chunks() == [m.MessageStart(), m.StreamError(gemini_stream_no_finish())]
    assert feed_chunks({"usageMetadata": {"promptTokenCount": 2}}, text_chunk("", "STOP")) == [
        m.MessageStart(),
        m.UsageUpdate(m.Usage(2)),
        m.MessageStop("stop", m.Usage(2)),
    ]
    assert feed_chunks(text_chunk("a", "MALFORMED_FUNCTION_CALL"))[-1] == m.MessageStop("error")
    thought = {"candidates": [{"content": {"parts": [{"text": "", "thought": True}]}}]}
    assert feed_chunks(thought, text_chunk("", "LENGTH_UNKNOWN")) == [
        m.MessageStart(),
        m.MessageStop("error"),
    ]
    assert feed_chunks({"error": "flat"}) == [m.MessageStart(), m.StreamError("flat")]
    assert feed_chunks({"error": {"code": 200, "message": ""}})[-1] == m.StreamError(
        "{'code': 200, 'message': ''}", 502
    )
    # content after the finish reason still counts; the stop waits for flush()
    assert feed_chunks(text_chunk("a", "STOP"), text_chunk("b")) == [
        m.MessageStart(),
        m.TextDelta("a"),
        m.TextDelta("b"),
        m.MessageStop("stop"),
    ]


def gemini_stream_no_finish() -> str:
    return "upstream stream ended without a finish reason"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not json", "stream chunk is not JSON"),
        ("3", "stream chunk: expected an object"),
        ('{"candidates": {}}', "candidates: expected a list"),
        ('{"candidates": [{"content": {"parts": [{"inlineData": {"data": "x"}}]}}]}', "image part"),
        ('[{"error": {"code": 500, "message": "x"}}, {}]', "data after an error chunk"),
    ],
)
def test_parser_rejects_malformed_chunks(data: str, message: str) -> None:
    parser = gemini.StreamParser(ids)
    with pytest.raises(ConversionError, match=message) as info:
        parser.feed(SSEEvent(data))
    assert info.value.status_hint == 502


def test_parser_rejects_data_after_the_end() -> None:
    parser = gemini.StreamParser(ids)
    parser.feed(SSEEvent('{"error": {"code": 503, "message": "overloaded"}}'))
    with pytest.raises(ConversionError, match="after the end"):
        parser.feed(SSEEvent("{}"))
    assert parser.flush() == [] and parser.flush() == []


# --------------------------------------------------------------------------- emitter


@pytest.mark.parametrize("path", cases("streams"))
def test_emitter_golden_sse(path: Path) -> None:
    raw = emit(source_events(path))
    for chunk in sse_chunks(raw):
        check_chunk(chunk)
    golden(path, "emitted_sse", raw.decode())


@pytest.mark.parametrize("path", cases("streams"))
def test_emitter_golden_array(path: Path) -> None:
    events = source_events(path)
    raw = emit(events, sse=False)
    chunks = orjson.loads(raw)
    assert isinstance(chunks, list) and chunks == sse_chunks(emit(events))
    golden(path, "emitted_array", raw.decode())


@pytest.mark.parametrize("path", cases("streams"))
def test_emitter_final_chunk(path: Path) -> None:
    events = source_events(path)
    chunks = sse_chunks(emit(events))
    last = chunks[-1]
    if isinstance(events[-1], m.MessageStop) and "error" not in last:
        assert last["candidates"][0]["finishReason"]
        assert "usageMetadata" in last
        assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    else:
        assert "error" in last


@pytest.mark.parametrize("path", cases("streams"))
def test_emitter_round_trip(path: Path) -> None:
    """Emitter output parsed back by our own parser: same text, calls, finish, usage."""
    events = source_events(path)
    back = parse_stream([emit(events)])
    check_contract(back)
    original, again = summary(collect(events)), summary(collect(back))
    if isinstance(events[-1], m.MessageStop) and again[5] is None:
        usage = original[4] or m.Usage(META.input_tokens)
        assert again == (*original[:4], usage, None)
    else:  # the stream ended in an error: what came before it survives, and the error
        assert again[0] == original[0] and again[5] is not None


def test_emitter_sends_text_at_once_and_calls_whole() -> None:
    emitter = gemini.StreamEmitter(META)
    assert emitter.feed(m.MessageStart("x", "y")) == b""
    assert b'"text":"Hel"' in emitter.feed(m.TextDelta("Hel"))
    assert emitter.feed(m.ToolCallStart(0, "c1", "f")) == b""
    for fragment in ('{"a"', ": [1, ", "2]}"):
        assert emitter.feed(m.ToolCallDelta(0, fragment)) == b""
    assert emitter.feed(m.UsageUpdate(m.Usage(1, 2))) == b""
    [chunk] = sse_chunks(emitter.feed(m.ToolCallEnd(0)))
    part = chunk["candidates"][0]["content"]["parts"][0]
    assert part == {"functionCall": {"id": "c1", "name": "f", "args": {"a": [1, 2]}}}
    [final] = sse_chunks(emitter.feed(m.MessageStop("tool_calls")))
    assert final["candidates"][0]["finishReason"] == "STOP"
    assert final["usageMetadata"]["candidatesTokenCount"] == 2
    assert emitter.feed(m.TextDelta("late")) == b"" and emitter.flush() == b""


def test_emitter_array_framing_is_incremental() -> None:
    emitter = gemini.StreamEmitter(META, sse=False)
    first = emitter.feed(m.TextDelta("a"))
    second = emitter.feed(m.TextDelta("b"))
    assert first.startswith(b"[{") and second.startswith(b",\r\n{")
    end = emitter.feed(m.MessageStop("stop")) + emitter.flush()
    assert end.endswith(b"}]") and emitter.flush() == b""
    assert len(orjson.loads(first + second + end)) == 3


def test_emitter_error_statuses() -> None:
    [chunk] = sse_chunks(emit([m.StreamError("slow down", 429)]))
    assert chunk == {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    assert orjson.loads(emit([], sse=False)) == [
        {"error": {"code": 502, "message": gemini_stream_no_finish(), "status": "UNAVAILABLE"}}
    ]


def test_emitter_rejects_a_delta_without_start() -> None:
    with pytest.raises(ConversionError, match="never started"):
        gemini.StreamEmitter(META).feed(m.ToolCallDelta(3, "{}"))
    assert gemini.StreamEmitter(META).feed(m.ToolCallEnd(3)) == b""
