"""OpenAI Chat Completions streams <-> neutral stream events (louter.convert.openai
stream_parser and stream_emitter).

Stream goldens live in tests/fixtures/openai/streams/: `<case>.sse` holds the raw bytes
(recorded from llama-server and the SDK's accepted stub, or hand-made for the traps of
design §5) and `<case>.json` the neutral events StreamParser must give for them.
`LOUTER_REGEN=1` rewrites the expected events from the code.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from typing import Any

import httpx2
import openai
import orjson
import pytest

from louter.convert.collect import StreamCollector
from louter.convert.model import (
    FINISH_REASONS,
    MessageStart,
    MessageStop,
    Part,
    Reasoning,
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
)
from louter.convert.openai.stream_emitter import StreamEmitter
from louter.convert.openai.stream_parser import StreamAssembler, StreamParser
from louter.convert.openai.wire import error_event
from louter.convert.sse import SSEDecoder, SSEEvent
from louter.errors import ConversionError
from tests.paths import FIXTURES as FIXTURES_DIR

STREAMS = FIXTURES_DIR / "openai" / "streams"
REGEN = os.environ.get("LOUTER_REGEN") == "1"
META = ResponseMeta(id="chatcmpl-louter-1", model="client-model", created=1700000000)
USAGE_META = dataclasses.replace(META, include_usage=True)
CASES = sorted(path.stem for path in STREAMS.glob("*.sse"))


def ids(n: int) -> str:
    return f"call_louter_{n}"


def neutral_json(value: Any) -> Any:
    """A neutral object as JSON: parts and stream events tagged with their class name,
    None fields left out (the fixtures' notation)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        if isinstance(value, Part | StreamEvent):
            out["type"] = type(value).__name__
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is not None:
                out[field.name] = neutral_json(item)
        return out
    if isinstance(value, tuple | list):
        return [neutral_json(item) for item in value]
    return value


def raw_of(case: str) -> bytes:
    return (STREAMS / f"{case}.sse").read_bytes()


def expected_of(case: str) -> dict[str, Any]:
    expected: dict[str, Any] = orjson.loads((STREAMS / f"{case}.json").read_bytes())
    return expected


def splits(raw: bytes) -> Iterator[list[bytes]]:
    """Whole, byte by byte, and cut in two at every offset."""
    yield [raw]
    yield [raw[i : i + 1] for i in range(len(raw))]
    for i in range(1, len(raw)):
        yield [raw[:i], raw[i:]]


def sse_events(chunks: Iterable[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out + decoder.flush()


def parse(chunks: Iterable[bytes]) -> list[StreamEvent]:
    """Bytes -> SSEDecoder -> StreamParser -> neutral events, feed by feed as a relay does."""
    decoder = SSEDecoder()
    parser = StreamParser(ids)
    out: list[StreamEvent] = []
    for chunk in chunks:
        for event in decoder.feed(chunk):
            out.extend(parser.feed(event))
    for event in decoder.flush():
        out.extend(parser.feed(event))
    return out + parser.flush()


def emit(events: Iterable[StreamEvent], meta: ResponseMeta = USAGE_META) -> bytes:
    emitter = StreamEmitter(meta)
    return b"".join(emitter.feed(event) for event in events) + emitter.flush()


def collect(events: Iterable[StreamEvent]) -> Response:
    collector = StreamCollector()
    for event in events:
        collector.feed(event)
    return collector.result()


def check_contract(events: list[StreamEvent]) -> None:
    """The stream contract of louter.convert.model."""
    assert isinstance(events[0], MessageStart)
    assert sum(isinstance(event, MessageStart) for event in events) == 1
    ends = [i for i, e in enumerate(events) if isinstance(e, MessageStop | StreamError)]
    assert ends == [len(events) - 1], "exactly one MessageStop/StreamError, last"
    started: list[int] = []
    ended: set[int] = set()
    for event in events[1:-1]:
        if isinstance(event, ToolCallStart):
            assert event.index == len(started), "calls numbered 0, 1, 2... as they start"
            assert event.id and event.name
            started.append(event.index)
        elif isinstance(event, ToolCallDelta | ToolCallEnd):
            assert event.index in started and event.index not in ended
            if isinstance(event, ToolCallEnd):
                ended.add(event.index)
        else:
            assert isinstance(event, TextDelta | ReasoningDelta | UsageUpdate)
    last = events[-1]
    if isinstance(last, MessageStop):
        assert ended == set(started), "every call ends before MessageStop"
        assert last.finish_reason in FINISH_REASONS
        if started:
            assert last.finish_reason in ("tool_calls", "length", "content_filter", "error")


# --------------------------------------------------------------------------- StreamParser


def test_fixtures_exist() -> None:
    assert len(CASES) >= 15
    for case in CASES:
        assert (STREAMS / f"{case}.json").exists(), case


@pytest.mark.parametrize("case", CASES)
def test_parser_golden(case: str) -> None:
    events = parse([raw_of(case)])
    expected = expected_of(case)
    if REGEN:
        expected["events"] = neutral_json(events)
        (STREAMS / f"{case}.json").write_bytes(
            orjson.dumps(expected, option=orjson.OPT_INDENT_2) + b"\n"
        )
    assert neutral_json(events) == expected["events"]
    check_contract(events)


@pytest.mark.parametrize("case", CASES)
def test_parser_ignores_chunk_boundaries(case: str) -> None:
    raw = raw_of(case)
    whole = parse([raw])
    for chunks in splits(raw):
        assert parse(chunks) == whole, [len(c) for c in chunks][:3]


@pytest.mark.parametrize("case", CASES)
def test_pipeline_output_ignores_chunk_boundaries(case: str) -> None:
    """bytes -> parser -> emitter -> bytes is the same however the input is split."""
    raw = raw_of(case)
    whole = emit(parse([raw]))
    for chunks in splits(raw):
        assert emit(parse(chunks)) == whole


@pytest.mark.parametrize("case", CASES)
def test_assembler_agrees_with_the_parser(case: str) -> None:
    """The passthrough log (StreamAssembler) and the converting log (StreamParser +
    StreamCollector) read the same answer from the same bytes."""
    raw = raw_of(case)
    events = parse([raw])
    assembler = StreamAssembler()
    for event in sse_events([raw]):
        assembler.feed(event)
    assembled = assembler.result()
    for chunks in splits(raw):
        again = StreamAssembler()
        for event in sse_events(chunks):
            again.feed(event)
        assert again.result() == assembled
    if not isinstance(events[-1], MessageStop):
        return
    response = collect(events)
    assert assembled["content"] == response.text()
    reasoning = "".join(p.text for p in response.parts if isinstance(p, Reasoning))
    assert assembled.get("reasoning_content", "") == reasoning
    calls = {(c.name, c.arguments) for c in response.tool_calls()}
    assert {
        (c["function"]["name"], c["function"]["arguments"] or "{}") for c in assembled["tool_calls"]
    } == calls


def feed_all(parser: StreamParser, *data: str, event: str | None = None) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for item in data:
        out.extend(parser.feed(SSEEvent(item, event)))
    return out


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return orjson.dumps({"id": "c", "model": "m", "choices": [choice], **extra}).decode()


@pytest.mark.parametrize("data", ["{not json", "[1]", '"x"', ""])
def test_parser_rejects_chunks_that_are_not_objects(data: str) -> None:
    parser = StreamParser(ids)
    with pytest.raises(ConversionError) as caught:
        parser.feed(SSEEvent(data))
    assert caught.value.status_hint == 502


def test_parser_empty_stream() -> None:
    parser = StreamParser(ids)
    assert parser.flush() == [
        MessageStart(),
        StreamError("the backend's stream ended before it finished"),
    ]
    assert parser.flush() == []
    assert parser.feed(SSEEvent(chunk({"content": "late"}))) == []


def test_parser_ignores_everything_after_done() -> None:
    parser = StreamParser(ids)
    events = feed_all(parser, chunk({"content": "a"}, "stop"), "[DONE]", chunk({"content": "b"}))
    assert events == [MessageStart("c", "m"), TextDelta("a"), MessageStop("stop")]
    assert parser.flush() == []


def test_parser_done_first() -> None:
    assert feed_all(StreamParser(ids), "[DONE]") == [MessageStart(), MessageStop("error")]


def test_parser_only_reads_choice_zero() -> None:
    other = orjson.dumps({"choices": [{"index": 1, "delta": {"content": "no"}}]}).decode()
    events = feed_all(StreamParser(ids), other, chunk({"content": "yes"}, "stop"), "[DONE]")
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("yes")]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ({"message": "slow down", "code": 429}, 429),
        ({"message": "bad", "code": 400}, 400),
        ({"message": "x", "code": "rate_limit_exceeded"}, 502),
        ({"message": "x", "code": 200}, 502),
        ({"message": "x", "code": True}, 502),
        ("plain text", 502),
    ],
)
def test_parser_error_status(error: Any, status: int) -> None:
    events = feed_all(StreamParser(ids), orjson.dumps({"error": error}).decode())
    assert isinstance(events[-1], StreamError)
    assert events[-1].status == status


def test_parser_event_error_with_a_json_body_without_error_key() -> None:
    events = feed_all(StreamParser(ids), '{"message":"boom"}', event="error")
    assert events == [MessageStart(), StreamError("boom")]


def test_parser_id_after_name_keeps_the_factory_id() -> None:
    """A start cannot wait for an id that may never come: the factory's id is used."""
    parser = StreamParser(ids)
    events = feed_all(
        parser,
        chunk({"tool_calls": [{"index": 0, "function": {"name": "f"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "late", "function": {"arguments": {"a": 1}}}]}),
        chunk({}, "tool_calls"),
    )
    assert events[1:] == [ToolCallStart(0, "call_louter_0", "f"), ToolCallDelta(0, '{"a":1}')]
    assert parser.flush() == [ToolCallEnd(0), MessageStop("tool_calls")]


def test_parser_odd_shapes_are_ignored_not_fatal() -> None:
    events = feed_all(
        StreamParser(ids),
        orjson.dumps({"id": 5, "model": None, "choices": "x", "usage": "y"}).decode(),
        orjson.dumps(
            {"choices": [None, {"delta": "x"}, {"delta": {"tool_calls": ["x", 3]}}]}
        ).decode(),
        chunk({"content": 5, "tool_calls": {"index": 0}}),
        chunk({"tool_calls": [{"index": 0, "function": "f"}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "g"}}]}),
        chunk({}, "stop"),
        "[DONE]",
    )
    assert events == [
        MessageStart(),
        ToolCallStart(0, "call_louter_0", "g"),
        ToolCallEnd(0),
        MessageStop("tool_calls"),
    ]


# --------------------------------------------------------------------------- StreamEmitter


def data_lines(raw: bytes) -> list[Any]:
    """The JSON payloads of an emitted stream ("[DONE]" as the string)."""
    out: list[Any] = []
    for event in sse_events([raw]):
        out.append(event.data if event.data == "[DONE]" else orjson.loads(event.data))
    return out


def normal_cases() -> list[str]:
    return [c for c in CASES if expected_of(c)["events"][-1]["type"] == "MessageStop"
            and expected_of(c)["events"][-1]["finish_reason"] != "error"]  # fmt: skip


@pytest.mark.parametrize("case", normal_cases())
@pytest.mark.parametrize("meta", [META, USAGE_META], ids=["no-usage", "include-usage"])
def test_emitter_round_trip(case: str, meta: ResponseMeta) -> None:
    events = parse([raw_of(case)])
    again = parse([emit(events, meta)])
    stop = events[-1]
    assert isinstance(stop, MessageStop)
    usage = stop.usage if meta.include_usage else None
    assert again == [
        MessageStart(meta.id, meta.model),
        *events[1:-1],
        MessageStop(stop.finish_reason, usage),
    ]


def test_emitter_chunks() -> None:
    events: list[StreamEvent] = [
        MessageStart("upstream", "upstream-model"),
        ReasoningDelta("hm"),
        ReasoningDelta(signature="sig"),  # nothing to say in Chat Completions
        TextDelta("Hi"),
        TextDelta(""),
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, '{"a":'),
        UsageUpdate(Usage(1, 1)),
        ToolCallDelta(0, "1}"),
        ToolCallEnd(0),
        MessageStop("tool_calls", Usage(7, 3, reasoning_tokens=1)),
    ]
    lines = data_lines(emit(events))
    head = {
        "id": META.id,
        "object": "chat.completion.chunk",
        "created": META.created,
        "model": META.model,
    }

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    assert lines == [
        choice({"role": "assistant", "content": ""}),
        choice({"reasoning_content": "hm"}),
        choice({"content": "Hi"}),
        choice(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),
        choice({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        choice({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        choice({}, "tool_calls"),
        {
            **head,
            "choices": [],
            "usage": {
                "prompt_tokens": 7,
                "completion_tokens": 3,
                "total_tokens": 10,
                "completion_tokens_details": {"reasoning_tokens": 1},
            },
        },
        "[DONE]",
    ]


def test_emitter_usage_update_is_used_when_the_stop_has_none() -> None:
    lines = data_lines(emit([MessageStart(), UsageUpdate(Usage(4, 2)), MessageStop("stop")]))
    assert lines[-2]["choices"] == []
    assert lines[-2]["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    assert lines[-1] == "[DONE]"


def test_emitter_without_include_usage_sends_no_usage() -> None:
    raw = emit([MessageStart(), TextDelta("x"), MessageStop("stop", Usage(1, 2))], META)
    assert b"usage" not in raw
    assert raw.endswith(b"data: [DONE]\n\n")


def test_emitter_text_deltas_are_sent_at_once() -> None:
    emitter = StreamEmitter(META)
    assert data_lines(emitter.feed(MessageStart()))[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
    }
    for piece in ("Hel", "lo", " 🌍"):
        lines = data_lines(emitter.feed(TextDelta(piece)))
        assert [line["choices"][0]["delta"] for line in lines] == [{"content": piece}]
    assert emitter.feed(ToolCallEnd(0)) == b""


def test_emitter_starts_even_without_message_start() -> None:
    lines = data_lines(StreamEmitter(META).feed(TextDelta("x")))
    assert [line["choices"][0]["delta"] for line in lines] == [
        {"role": "assistant", "content": ""},
        {"content": "x"},
    ]


@pytest.mark.parametrize(
    ("last", "message", "status"),
    [
        (StreamError("upstream broke", 503), "upstream broke", 503),
        (StreamError("upstream broke"), "upstream broke", 502),
        (MessageStop("error"), "the backend ended its answer with an error", 502),
    ],
)
def test_emitter_errors_are_error_events_without_done(
    last: StreamEvent, message: str, status: int
) -> None:
    emitter = StreamEmitter(USAGE_META)
    raw = emitter.feed(MessageStart()) + emitter.feed(TextDelta("par")) + emitter.feed(last)
    assert b"[DONE]" not in raw
    assert data_lines(raw)[-1] == {
        "error": {"message": message, "type": "upstream_error", "code": status}
    }
    assert raw.endswith(error_event(message, status))
    assert emitter.feed(TextDelta("more")) == b""
    assert emitter.flush() == b""


def test_emitter_flush_before_the_end_is_an_error() -> None:
    emitter = StreamEmitter(META)
    emitter.feed(TextDelta("par"))
    raw = emitter.flush()
    assert data_lines(raw) == [
        {
            "error": {
                "message": "the stream ended before the answer was complete",
                "type": "upstream_error",
                "code": 502,
            }
        }
    ]
    assert emitter.flush() == b""


def test_emitter_ignores_events_after_the_stop() -> None:
    emitter = StreamEmitter(META)
    emitter.feed(MessageStop("stop"))
    assert emitter.feed(TextDelta("late")) == b""
    assert emitter.feed(StreamError("late")) == b""
    assert emitter.flush() == b""


def test_emitter_escapes_meta() -> None:
    meta = ResponseMeta(id='a"b', model="m\n", created=5)
    line = data_lines(emit([TextDelta("x"), MessageStop("stop")], meta))[0]
    assert (line["id"], line["model"], line["created"]) == ('a"b', "m\n", 5)


LEGACY_META = dataclasses.replace(USAGE_META, legacy_functions=True)
TWO_CALLS: list[StreamEvent] = [
    MessageStart(),
    TextDelta("Checking."),
    ToolCallStart(0, "call_1", "get_weather"),
    ToolCallDelta(0, '{"city":'),
    ToolCallStart(1, "call_2", "get_time"),
    ToolCallDelta(1, "{}"),
    ToolCallDelta(0, '"Paris"}'),
    ToolCallEnd(0),
    ToolCallEnd(1),
    MessageStop("tool_calls", Usage(5, 6)),
]


def test_emitter_legacy_function_call() -> None:
    """A client that sent `functions` gets `delta.function_call`: the name, then argument
    fragments, finish "function_call"; the second call is not sent."""
    lines = data_lines(emit(TWO_CALLS, LEGACY_META))
    deltas = [(line["choices"][0]["delta"], line["choices"][0]["finish_reason"])
              for line in lines[:-2]]  # fmt: skip
    assert deltas == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Checking."}, None),
        ({"function_call": {"name": "get_weather", "arguments": ""}}, None),
        ({"function_call": {"arguments": '{"city":'}}, None),
        ({"function_call": {"arguments": '"Paris"}'}}, None),
        ({}, "function_call"),
    ]
    assert lines[-2]["usage"]["total_tokens"] == 11 and lines[-1] == "[DONE]"
    # Parsed back (louter reads legacy streams too): one call, the first.
    again = parse([emit(TWO_CALLS, LEGACY_META)])
    assert collect(again).tool_calls() == [
        ToolCall("call_louter_0", "get_weather", '{"city":"Paris"}')
    ]


def test_emitter_legacy_without_calls_is_a_plain_answer() -> None:
    events = [MessageStart(), TextDelta("Hi"), MessageStop("stop")]
    assert emit(events, LEGACY_META) == emit(events, USAGE_META)
    cut = [MessageStart(), ToolCallStart(0, "c", "f"), ToolCallEnd(0), MessageStop("length")]
    lines = data_lines(emit(cut, LEGACY_META))
    assert [line["choices"][0]["finish_reason"] for line in lines[:-1]] == [None, None, "length"]


def test_the_sdk_reads_emitted_legacy_streams() -> None:
    client = sdk_stream(emit(TWO_CALLS, LEGACY_META))
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    name, arguments, finishes = "", "", []
    for c in chunks:
        if not c.choices:
            continue
        call = c.choices[0].delta.function_call
        if call is not None:
            name += call.name or ""
            arguments += call.arguments or ""
        if c.choices[0].finish_reason:
            finishes.append(c.choices[0].finish_reason)
    assert (name, arguments, finishes) == ("get_weather", '{"city":"Paris"}', ["function_call"])
    assert all(c.choices[0].delta.tool_calls is None for c in chunks if c.choices)


# --------------------------------------------------------------------------- the SDK


def sdk_stream(raw: bytes) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=raw)

    return openai.OpenAI(
        api_key="k",
        base_url="http://louter.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )


MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("case", normal_cases())
def test_the_sdk_accepts_emitted_streams(case: str) -> None:
    events = parse([raw_of(case)])
    expected = collect(events)
    client = sdk_stream(emit(events))
    chunks = list(
        client.chat.completions.create(model="client-model", messages=MESSAGES, stream=True)
    )
    assert {(c.id, c.model, c.object) for c in chunks} == {
        (META.id, META.model, "chat.completion.chunk")
    }
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert text == expected.text()
    assert finishes == [expected.finish_reason]
    if expected.usage is not None:
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.prompt_tokens == expected.usage.input_tokens
        assert chunks[-1].usage.completion_tokens == expected.usage.output_tokens
    # The SDK's own accumulator (ChatCompletionStreamState) assembles the same answer.
    if expected.finish_reason == "length":  # the helper raises on a truncated answer
        with pytest.raises(openai.LengthFinishReasonError):
            sdk_final(client)
        return
    final = sdk_final(client)
    message = final.choices[0].message
    assert (message.content or "") == expected.text()
    assert final.choices[0].finish_reason == expected.finish_reason
    calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]
    assert calls == [(c.id, c.name, c.arguments) for c in expected.tool_calls()]


def sdk_final(client: openai.OpenAI) -> Any:
    with client.chat.completions.stream(model="client-model", messages=MESSAGES) as stream:
        for _ in stream:
            pass
        return stream.get_final_completion()


def test_the_sdk_raises_emitted_stream_errors() -> None:
    raw = emit([MessageStart(), TextDelta("par"), StreamError("the backend fell over", 503)])
    client = sdk_stream(raw)
    received: list[str] = []
    with pytest.raises(openai.APIError, match="the backend fell over"):
        for c in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            received.extend(choice.delta.content or "" for choice in c.choices)
    assert "".join(received) == "par"


# --------------------------------------------------------------------------- StreamAssembler


def assemble(*data: str) -> dict[str, Any]:
    assembler = StreamAssembler()
    for item in data:
        assembler.feed(SSEEvent(item))
    return assembler.result()


def test_assembler_tolerates_odd_shapes() -> None:
    result = assemble(
        orjson.dumps({"choices": "x"}).decode(),
        orjson.dumps({"choices": [None, {"delta": "x"}, {"delta": {"content": 5}}]}).decode(),
        chunk({"tool_calls": ["x"]}),
        chunk({"tool_calls": [{"index": "7", "id": 3, "function": "f"}]}),  # keyed 0: position
        chunk({"tool_calls": [{"index": 1, "function": {"name": "g", "arguments": {"a": 1}}}]}),
        chunk({"content": "ok", "reasoning": "r"}, "stop"),
    )
    assert result["content"] == "ok"
    assert result["reasoning_content"] == "r"
    assert result["tool_calls"] == [
        {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
        {"id": "", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
    ]


def test_assembler_done_and_bad_chunks() -> None:
    assembler = StreamAssembler()
    assembler.feed(SSEEvent(chunk({"content": "x"}, "stop")))
    assert not assembler.done
    with pytest.raises(ConversionError) as caught:
        assembler.feed(SSEEvent("not json"))
    assert caught.value.status_hint == 502
    assembler.feed(SSEEvent("upstream overloaded", "error"))
    assembler.feed(SSEEvent("[DONE]"))
    assert assembler.done
    result = assembler.result()
    assert (result["content"], result["error"]) == ("x", {"message": "upstream overloaded"})


def test_assembler_legacy_function_call() -> None:
    result = assemble(
        chunk({"role": "assistant", "function_call": {"name": "f", "arguments": ""}}),
        chunk({"function_call": {"arguments": "{}"}}),
        chunk({}, "function_call"),
        "[DONE]",
    )
    assert result["tool_calls"] == [
        {"id": "", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]
    assert (result["finish_reason"], result["done"]) == ("function_call", True)
