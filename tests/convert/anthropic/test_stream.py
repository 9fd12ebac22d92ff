"""Anthropic Messages streams: StreamParser over recorded and hand-made streams (re-chunked
every way), StreamEmitter playbooks, and emitter -> parser round trips.

`LOUTER_REGEN=1 pytest tests/convert/anthropic/test_stream.py` rewrites the expected files.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from louter.convert.anthropic.response import parse_response
from louter.convert.anthropic.stream_emitter import StreamEmitter
from louter.convert.anthropic.stream_parser import StreamParser
from louter.convert.collect import StreamCollector
from louter.convert.model import (
    MessageStart,
    MessageStop,
    ReasoningDelta,
    Response,
    ResponseMeta,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
    dump_arguments,
)
from louter.convert.sse import SSEDecoder, SSEEvent, encode_event
from louter.errors import ConversionError
from tests.convert.anthropic.test_convert import FIXTURES, REGEN, fixture_body, golden, ids, to_json

STREAMS = FIXTURES / "streams"
META = ResponseMeta(id="msg_louter_0001", model="client-model", created=0, input_tokens=42)


def stream_cases() -> list[str]:
    return sorted(path.stem for path in STREAMS.glob("*.sse") if ".emitted" not in path.name)


def parse(chunks: list[bytes]) -> list[StreamEvent]:
    """Bytes -> SSEDecoder -> StreamParser, flushed."""
    decoder = SSEDecoder()
    parser = StreamParser(ids)
    events: list[StreamEvent] = []
    for chunk in chunks:
        for sse in decoder.feed(chunk):
            events += parser.feed(sse)
    for sse in decoder.flush():
        events += parser.feed(sse)
    return events + parser.flush()


def emit(events: list[StreamEvent], meta: ResponseMeta = META) -> bytes:
    emitter = StreamEmitter(meta)
    return b"".join(emitter.feed(event) for event in events) + emitter.flush()


def wire(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """SSE bytes -> (event type, JSON payload) pairs."""
    decoder = SSEDecoder()
    return [(e.event, orjson.loads(e.data)) for e in decoder.feed(raw) + decoder.flush()]


def sse(kind: str, **payload: Any) -> SSEEvent:
    return SSEEvent(orjson.dumps({"type": kind, **payload}).decode(), kind)


START = sse(
    "message_start",
    message={
        "id": "msg_1",
        "model": "m",
        "content": [],
        "usage": {"input_tokens": 5, "output_tokens": 1},
    },
)


def text_start(index: int = 0) -> SSEEvent:
    return sse("content_block_start", index=index, content_block={"type": "text", "text": ""})


def delta(index: int, **payload: Any) -> SSEEvent:
    return sse("content_block_delta", index=index, delta=payload)


def run(*events: SSEEvent) -> list[StreamEvent]:
    parser = StreamParser(ids)
    out: list[StreamEvent] = []
    for event in events:
        out += parser.feed(event)
    return out


def upstream_error(*events: SSEEvent) -> str:
    with pytest.raises(ConversionError) as info:
        run(*events)
    assert info.value.status_hint == 502
    return info.value.message


# --------------------------------------------------------------------------- parser: fixtures


@pytest.mark.parametrize("name", stream_cases())
def test_stream_golden(name: str) -> None:
    raw = (STREAMS / f"{name}.sse").read_bytes()
    golden(STREAMS / f"{name}.expected.json", to_json(parse([raw])))


@pytest.mark.parametrize("name", stream_cases())
def test_rechunking_gives_identical_events(name: str) -> None:
    raw = (STREAMS / f"{name}.sse").read_bytes()
    whole = parse([raw])
    assert parse([raw[i : i + 1] for i in range(len(raw))]) == whole
    for cut in range(1, len(raw)):
        assert parse([raw[:cut], raw[cut:]]) == whole, f"split at byte {cut}"


def test_crlf_and_data_only_streams_parse_alike() -> None:
    raw = (STREAMS / "stub-tool.sse").read_bytes()
    crlf = raw.replace(b"\n", b"\r\n")
    data_only = b"\n".join(line for line in raw.split(b"\n") if not line.startswith(b"event:"))
    assert parse([crlf]) == parse([data_only]) == parse([raw])


@pytest.mark.parametrize("name", ["stub-text", "stub-tool", "max-tokens"])
def test_collected_stream_equals_whole_response(name: str) -> None:
    collector = StreamCollector()
    for event in parse([(STREAMS / f"{name}.sse").read_bytes()]):
        collector.feed(event)
    assert objects(collector.result()) == objects(
        parse_response(fixture_body("responses", name), ids)
    )


def objects(response: Response) -> Response:
    """Tool-call arguments as canonical JSON (streams keep the upstream's whitespace)."""
    parts = tuple(
        dataclasses.replace(p, arguments=dump_arguments(p.arguments_object()))
        if isinstance(p, ToolCall)
        else p
        for p in response.parts
    )
    return dataclasses.replace(response, parts=parts)


def test_collected_thinking_stream_equals_whole_response() -> None:
    """signature_delta signs the thinking streamed before it: one signed Reasoning."""
    collector = StreamCollector()
    for event in parse([(STREAMS / "thinking-parallel-tools.sse").read_bytes()]):
        collector.feed(event)
    expected = parse_response(fixture_body("responses", "thinking-parallel-tools"), ids)
    assert objects(collector.result()) == objects(expected)


# --------------------------------------------------------------------------- parser: tables


def test_parser_playbook() -> None:
    assert run(
        START,
        sse("ping"),
        text_start(),
        delta(0, type="text_delta", text="hi"),
        delta(0, type="text_delta", text=""),
        delta(0, type="citations_delta", citation={"type": "char_location"}),
        sse("content_block_stop", index=0),
        sse(
            "content_block_start",
            index=1,
            content_block={"type": "tool_use", "name": "f", "input": {"a": 1}},
        ),
        sse(
            "content_block_start",
            index=2,
            content_block={"type": "thinking", "thinking": "pre", "signature": "s0"},
        ),
        delta(1, type="input_json_delta", partial_json=""),
        sse("some_future_event", x=1),
        sse(
            "message_delta",
            delta={"stop_reason": "end_turn"},
            usage={"output_tokens": 9, "input_tokens": None},
        ),
        sse("message_stop"),
    ) == [
        MessageStart("msg_1", "m"),
        UsageUpdate(Usage(5, 1)),
        TextDelta("hi"),
        ToolCallStart(0, "toolu_louter_0", "f"),
        ToolCallDelta(0, '{"a":1}'),
        ReasoningDelta("pre", "s0"),
        ToolCallEnd(0),  # still open at message_stop
        MessageStop("stop", Usage(5, 9)),
    ]


def test_parser_without_usage_or_stop_reason() -> None:
    bare = sse("message_start", message={"id": "x"})
    assert run(bare, sse("message_stop")) == [MessageStart("x", None), MessageStop("error")]
    empty_delta = sse("message_delta", delta={"stop_sequence": None})
    assert run(bare, empty_delta, sse("message_stop"))[-1] == MessageStop("error")


def test_parser_merges_several_message_deltas() -> None:
    assert run(
        START,
        sse("message_delta", delta={"stop_reason": "max_tokens"}),
        sse("message_delta", delta=None, usage={"output_tokens": 4, "cache_read_input_tokens": 2}),
        sse("message_stop"),
    )[-1] == MessageStop("length", Usage(7, 4, cached_tokens=2))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"type": "overloaded_error", "message": "Overloaded"}, StreamError("Overloaded", 529)),
        ({"type": "api_error", "message": "boom"}, StreamError("boom", 500)),
        ({"type": "rate_limit_error", "message": "slow"}, StreamError("slow", 429)),
        ({"type": "new_error", "message": "?"}, StreamError("?", 502)),
        ({"type": ["odd"], "message": "?"}, StreamError("?", 502)),
        ({"type": "api_error"}, StreamError("{'type': 'api_error'}", 500)),
    ],
)
def test_error_events(error: dict[str, Any], expected: StreamError) -> None:
    assert run(START, sse("error", error=error))[-1] == expected
    assert run(sse("error", error=error)) == [expected]  # before message_start too


def test_bare_json_error_line() -> None:
    """The SSE decoder surfaces a bare `{...}` line as event "error" (llama-server style)."""
    assert run(START, SSEEvent('{"error": "gone"}', "error"))[-1] == StreamError("gone")
    assert run(START, SSEEvent('{"detail": 1}', "error"))[-1] == StreamError("{'detail': 1}")


def test_flush() -> None:
    parser = StreamParser(ids)
    assert parser.flush() == [StreamError("upstream stream ended before message_stop")]
    assert parser.flush() == []
    done = StreamParser(ids)
    done.feed(START)
    done.feed(sse("message_stop"))
    assert done.flush() == []


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([text_start()], "unexpected 'content_block_start' event before message_start"),
        ([START, START], "unexpected 'message_start' event inside the message"),
        ([START, sse("message_stop"), text_start()], "after the end of the stream"),
        (
            [START, delta(0, type="text_delta", text="x")],
            "content_block_delta for content block 0, which is not open",
        ),
        (
            [
                START,
                text_start(),
                sse("content_block_stop", index=0),
                delta(0, type="text_delta", text="x"),
            ],
            "which is not open",
        ),
        ([START, sse("content_block_stop", index=3)], "content block 3, which is not open"),
        ([START, text_start(), text_start()], "content block 0 started twice"),
        (
            [START, text_start(), delta(0, type="input_json_delta", partial_json="{")],
            "input_json_delta inside a text block",
        ),
        (
            [START, text_start(), delta(0, type="future_delta")],
            "delta type 'future_delta' cannot be converted",
        ),
        (
            [
                START,
                sse(
                    "content_block_start",
                    index=0,
                    content_block={"type": "server_tool_use", "id": "s", "name": "web"},
                ),
            ],
            "content block type 'server_tool_use' cannot be converted",
        ),
        (
            [START, sse("content_block_start", index=0, content_block={"type": "tool_use"})],
            "content_block.name is missing or not a str",
        ),
        (
            [START, sse("content_block_start", index="0", content_block={"type": "text"})],
            "content_block_start.index is missing or not a int",
        ),
        (
            [START, sse("content_block_start", index=True, content_block={"type": "text"})],
            "content_block_start.index is missing or not a int",
        ),
        (
            [START, sse("content_block_start", index=0, content_block={"type": "text", "text": 1})],
            "text is not a string",
        ),
        (
            [START, text_start(), delta(0, type="text_delta")],
            "text_delta.text is missing or not a str",
        ),
        (
            [
                START,
                sse(
                    "content_block_start",
                    index=0,
                    content_block={"type": "tool_use", "name": "f", "input": [1]},
                ),
            ],
            "content_block.input is not an object",
        ),
        ([sse("message_start")], "message_start.message is missing or not a dict"),
        ([SSEEvent("not json", "message_start")], "event data is not JSON"),
        ([SSEEvent("[1]", "message_start")], "event data is not a JSON object"),
        ([SSEEvent('{"no": "type"}')], "an event has no type"),
    ],
)
def test_parser_rejects_out_of_order_input(events: list[SSEEvent], problem: str) -> None:
    assert problem in upstream_error(*events)


# --------------------------------------------------------------------------- emitter: golden


@pytest.mark.parametrize("name", stream_cases())
def test_emitter_golden(name: str) -> None:
    """Each fixture's neutral events, emitted for a client (pinned bytes)."""
    out = emit(parse([(STREAMS / f"{name}.sse").read_bytes()]))
    path = STREAMS / f"{name}.emitted.sse"
    if REGEN:
        path.write_bytes(out)
    assert out == path.read_bytes()


@pytest.mark.parametrize("name", stream_cases())
def test_emitted_stream_shape(name: str) -> None:
    events = wire(emit(parse([(STREAMS / f"{name}.sse").read_bytes()])))
    assert all(kind == payload["type"] for kind, payload in events)  # event: lines everywhere
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "message_start"
    assert events[0][1]["message"]["usage"] == {"input_tokens": 42, "output_tokens": 0}
    assert kinds[-1] in ("message_stop", "error") and "[DONE]" not in str(events)
    starts = [p["index"] for k, p in events if k == "content_block_start"]
    assert starts == list(range(len(starts)))  # indexes in emission order
    open_index: int | None = None
    for kind, payload in events:  # one block open at a time, every block closed
        if kind == "content_block_start":
            assert open_index is None
            open_index = payload["index"]
        elif kind == "content_block_delta":
            assert payload["index"] == open_index
        elif kind == "content_block_stop":
            assert payload["index"] == open_index
            open_index = None
    assert open_index is None


def normalise(events: list[StreamEvent]) -> list[StreamEvent]:
    """What survives a trip through the emitter: MessageStart and the opening usage come
    from the ResponseMeta; the final usage is the last one known (else the opening one);
    an open tool call is closed before an error; an error's status survives as its
    Anthropic error type; a finish "error" becomes an error event."""
    out: list[StreamEvent] = []
    usage, open_call = Usage(42, 0), None
    for event in events:
        if isinstance(event, MessageStart):
            out += [MessageStart(META.id, META.model), UsageUpdate(Usage(42, 0))]
        elif isinstance(event, UsageUpdate):
            usage = event.usage
        elif isinstance(event, MessageStop) and event.finish_reason != "error":
            out.append(MessageStop(event.finish_reason, event.usage or usage))
        elif isinstance(event, StreamError | MessageStop):
            message = getattr(event, "message", "upstream ended the response with an error")
            status = getattr(event, "status", 502)
            out += [ToolCallEnd(open_call)] if open_call is not None else []
            out.append(StreamError(message, {502: 500, 503: 500}.get(status, status)))
        else:
            open_call = _open_call(event, open_call)
            out.append(event)
    return out


def _open_call(event: StreamEvent, open_call: int | None) -> int | None:
    if isinstance(event, ToolCallStart):
        return event.index
    return None if isinstance(event, ToolCallEnd) else open_call


@pytest.mark.parametrize("name", stream_cases())
def test_emitter_parser_round_trip(name: str) -> None:
    events = parse([(STREAMS / f"{name}.sse").read_bytes()])
    assert parse([emit(events)]) == normalise(events)


HANDMADE: list[list[StreamEvent]] = [
    [
        MessageStart(),
        TextDelta("a"),
        ToolCallStart(0, "c0", "f"),
        ToolCallDelta(0, "{}"),
        ToolCallEnd(0),
        TextDelta("b"),
        ToolCallStart(1, "c1", "g"),
        ToolCallEnd(1),
        MessageStop("tool_calls", Usage(10, 3, cached_tokens=4)),
    ],
    [
        MessageStart(),
        ReasoningDelta("one"),
        ReasoningDelta(signature="s1"),
        ReasoningDelta("two"),
        ReasoningDelta("", "s2"),
        ReasoningDelta(redacted="r"),
        ReasoningDelta("three"),
        TextDelta("x"),
        UsageUpdate(Usage(1, 2)),
        MessageStop("length"),
    ],
    [MessageStart(), TextDelta("partial"), MessageStop("error")],
    [MessageStart(), ToolCallStart(0, "c0", "f"), StreamError("overloaded", 529)],
    [MessageStart(), MessageStop("content_filter")],
]


@pytest.mark.parametrize("events", HANDMADE)
def test_handmade_round_trip(events: list[StreamEvent]) -> None:
    assert parse([emit(events)]) == normalise(events)


# --------------------------------------------------------------------------- emitter: playbooks


def test_emitter_playbook() -> None:
    emitter = StreamEmitter(META)
    assert wire(emitter.feed(TextDelta("hi"))) == [  # message_start comes first regardless
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_louter_0001",
                    "type": "message",
                    "role": "assistant",
                    "model": "client-model",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 42, "output_tokens": 0},
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "hi"},
            },
        ),
    ]
    assert emitter.feed(MessageStart("upstream", "other")) == b""
    assert emitter.feed(TextDelta("")) == b""
    assert wire(emitter.feed(ToolCallStart(0, "c0", "Read"))) == [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "c0", "name": "Read", "input": {}},
            },
        ),
    ]
    assert emitter.feed(ToolCallDelta(0, "")) == b""
    assert wire(emitter.feed(ToolCallDelta(0, '{"a":'))) == [
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
            },
        ),
    ]
    assert emitter.feed(UsageUpdate(Usage(50, 7, cached_tokens=10))) == b""
    assert wire(emitter.feed(ToolCallEnd(0))) == [
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ]
    assert emitter.feed(ToolCallEnd(0)) == b""
    assert wire(emitter.feed(MessageStop("tool_calls"))) == [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 10},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    assert emitter.flush() == b"" and emitter.ping() == b""
    assert emitter.feed(StreamError("late")) == b""
    with pytest.raises(ConversionError, match="TextDelta after the end of the stream"):
        emitter.feed(TextDelta("more"))


def test_emitter_thinking_blocks() -> None:
    events = wire(
        emit(
            [
                ReasoningDelta("a"),
                ReasoningDelta("b"),
                ReasoningDelta(signature="s"),
                ReasoningDelta("c", "t"),
                ReasoningDelta(redacted="R"),
                MessageStop("stop"),
            ]
        )
    )
    seen = [(k, p.get("index"), p.get("content_block") or p.get("delta")) for k, p in events]
    assert seen[1:] == [
        ("content_block_start", 0, {"type": "thinking", "thinking": "", "signature": ""}),
        ("content_block_delta", 0, {"type": "thinking_delta", "thinking": "a"}),
        ("content_block_delta", 0, {"type": "thinking_delta", "thinking": "b"}),
        ("content_block_delta", 0, {"type": "signature_delta", "signature": "s"}),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, {"type": "thinking", "thinking": "", "signature": ""}),
        ("content_block_delta", 1, {"type": "thinking_delta", "thinking": "c"}),
        ("content_block_delta", 1, {"type": "signature_delta", "signature": "t"}),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, {"type": "redacted_thinking", "data": "R"}),
        ("content_block_stop", 2, None),
        ("message_delta", None, {"stop_reason": "end_turn", "stop_sequence": None}),
        ("message_stop", None, None),
    ]


def test_emitter_errors_close_the_open_block() -> None:
    assert [k for k, _ in wire(emit([TextDelta("x"), StreamError("boom", 503)]))] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "error",
    ]
    events = wire(emit([TextDelta("x"), MessageStop("error")]))
    assert [k for k, _ in events][-2:] == ["content_block_stop", "error"]
    assert events[-1][1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream ended the response with an error"},
    }
    assert "end_turn" not in str(events)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (529, "overloaded_error"),
        (429, "rate_limit_error"),
        (502, "api_error"),
        (504, "timeout_error"),
        (400, "invalid_request_error"),
    ],
)
def test_emitter_error_types(status: int, kind: str) -> None:
    assert wire(emit([StreamError("m", status)])) == [  # before message_start: error alone
        ("error", {"type": "error", "error": {"type": kind, "message": "m"}}),
    ]


def test_emitter_flush_without_stop_is_an_error() -> None:
    emitter = StreamEmitter(META)
    emitter.feed(ToolCallStart(0, "c", "f"))
    events = wire(emitter.flush())
    assert [k for k, _ in events] == ["content_block_stop", "error"]
    assert events[1][1]["error"]["message"] == "upstream stream ended without a stop event"
    assert wire(StreamEmitter(META).flush()) == [
        (
            "error",
            {
                "type": "error",
                "error": {
                    "type": "api_error",
                    "message": "upstream stream ended without a stop event",
                },
            },
        ),
    ]


def test_emitter_ping_and_usage_defaults() -> None:
    emitter = StreamEmitter(META)
    assert emitter.ping() == encode_event(b'{"type":"ping"}', "ping")
    assert wire(emitter.feed(MessageStop("stop")))[1][1]["usage"] == {"output_tokens": 0}


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([ToolCallDelta(0, "{}")], "arguments for tool call 0, which was never started"),
        (
            [ToolCallStart(0, "c", "f"), TextDelta("x"), ToolCallDelta(0, "{}")],
            "arguments for tool call 0, which was closed",
        ),
    ],
)
def test_emitter_rejects_arguments_without_an_open_call(
    events: list[StreamEvent], problem: str
) -> None:
    emitter = StreamEmitter(META)
    with pytest.raises(ConversionError) as info:
        for event in events:
            emitter.feed(event)
    assert problem in info.value.message and info.value.status_hint == 502


def test_emitter_bytes_are_event_lines() -> None:
    out = emit([TextDelta("line one\nline two"), MessageStop("stop")])
    assert out.startswith(b"event: message_start\ndata: {")
    assert b"[DONE]" not in out and out.endswith(
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    assert wire(out)[2][1]["delta"]["text"] == "line one\nline two"
