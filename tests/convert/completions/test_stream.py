"""Completions streams <-> neutral stream events (louter.convert.completions.stream_parser
and .stream_emitter).

Stream goldens live in tests/fixtures/completions/streams/: `<case>.sse` holds the raw
bytes (recorded from llama-server, or hand-made in OpenAI's shape and for the traps) and
`<case>.json` the neutral events StreamParser must give for them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import httpx2
import openai
import orjson
import pytest

from louter.convert.collect import StreamCollector
from louter.convert.completions import StreamEmitter, StreamParser, error_event
from louter.convert.model import (
    FINISH_REASONS,
    MessageStart,
    MessageStop,
    ReasoningDelta,
    Response,
    ResponseMeta,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from louter.convert.sse import SSEDecoder, SSEEvent
from louter.errors import ConversionError
from tests.convert.completions.golden import (
    FIXTURES,
    META,
    REGEN,
    USAGE_META,
    ids,
    neutral_json,
    splits,
    sse_events,
)

STREAMS = FIXTURES / "streams"
CASES = sorted(path.stem for path in STREAMS.glob("*.sse"))


def raw_of(case: str) -> bytes:
    return (STREAMS / f"{case}.sse").read_bytes()


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
    return emitter.prelude() + b"".join(emitter.feed(e) for e in events) + emitter.flush()


def collect(events: Iterable[StreamEvent]) -> Response:
    collector = StreamCollector()
    for event in events:
        collector.feed(event)
    return collector.result()


def check_contract(events: list[StreamEvent]) -> None:
    """The stream contract of louter.convert.model (no tool calls in this dialect)."""
    assert isinstance(events[0], MessageStart)
    assert sum(isinstance(event, MessageStart) for event in events) == 1
    ends = [i for i, e in enumerate(events) if isinstance(e, MessageStop | StreamError)]
    assert ends == [len(events) - 1], "exactly one MessageStop/StreamError, last"
    for event in events[1:-1]:
        assert isinstance(event, TextDelta) and event.text
    last = events[-1]
    if isinstance(last, MessageStop):
        assert last.finish_reason in FINISH_REASONS


# --------------------------------------------------------------------------- StreamParser


def test_fixtures_exist() -> None:
    assert len(CASES) >= 12
    assert {"llama-usage", "llama-transcript-stop", "openai-usage"} <= set(CASES)
    for case in CASES:
        assert (STREAMS / f"{case}.json").exists(), case


@pytest.mark.parametrize("case", CASES)
def test_parser_golden(case: str) -> None:
    events = parse([raw_of(case)])
    expected = orjson.loads((STREAMS / f"{case}.json").read_bytes())
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
def test_emitted_streams_parse_back_to_the_same_events(case: str) -> None:
    """Round trip: a Completions client's stream, read by a Completions backend's parser,
    gives the same events (usage comes back when the client asked for it; an error keeps
    its message and status; an answer that ended with an error comes back as that error)."""
    events = parse([raw_of(case)])
    if events[-1] == MessageStop("error"):
        events[-1] = StreamError("the backend ended its answer with an error")
    again = parse([emit(events)])
    assert isinstance(again[0], MessageStart)
    if len(events) > 2:  # a chunk before the end names the client's id and model
        assert again[0] == MessageStart(USAGE_META.id, USAGE_META.model)
    assert again[1:] == events[1:]


def test_parser_rejects_a_chunk_that_is_not_json() -> None:
    parser = StreamParser(ids)
    with pytest.raises(ConversionError) as caught:
        parser.feed(SSEEvent("not json"))
    assert caught.value.status_hint == 502
    with pytest.raises(ConversionError):
        parser.feed(SSEEvent("[1]"))


def test_parser_is_done_after_the_end() -> None:
    parser = StreamParser(ids)
    assert parser.feed(SSEEvent("[DONE]")) == [MessageStart(), MessageStop("error")]
    assert parser.feed(SSEEvent('{"choices":[{"text":"late"}]}')) == []
    assert parser.flush() == []


def test_the_llama_stream_keeps_its_usage_after_the_finish() -> None:
    events = parse([raw_of("llama-usage")])
    assert collect(events).text() == " Paris.\n\nThe United"
    assert events[-1] == MessageStop("length", Usage(5, 6, cached_tokens=0))


# --------------------------------------------------------------------------- StreamEmitter


HELLO = [
    MessageStart("x", "backend"),
    ReasoningDelta("thinking"),
    TextDelta("Hel"),
    TextDelta(""),
    UsageUpdate(Usage(3, 1)),
    TextDelta("lo"),
    MessageStop("stop", Usage(3, 2)),
]


def chunks_of(raw: bytes) -> list[Any]:
    return [e.data if e.data == "[DONE]" else orjson.loads(e.data) for e in sse_events([raw])]


def test_the_emitted_stream_is_openais_shape() -> None:
    head = {"id": META.id, "object": "text_completion", "created": META.created}
    head["model"] = META.model

    def choice(text: str, finish: str | None = None) -> dict[str, Any]:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert chunks_of(emit(HELLO)) == [
        {**head, "choices": [choice("Hel")]},
        {**head, "choices": [choice("lo")]},
        {**head, "choices": [choice("", "stop")]},
        {**head, "choices": [], "usage": usage},
        "[DONE]",
    ]
    without_usage = chunks_of(emit(HELLO, META))
    assert without_usage[-2:] == [{**head, "choices": [choice("", "stop")]}, "[DONE]"]


def test_usage_from_an_update_when_the_stop_has_none() -> None:
    events = [MessageStart(), TextDelta("a"), UsageUpdate(Usage(1, 1)), MessageStop("length")]
    assert chunks_of(emit(events))[-2]["usage"]["total_tokens"] == 2


@pytest.mark.parametrize(
    ("events", "message", "status"),
    [
        ([MessageStart(), TextDelta("a"), StreamError("upstream fell over", 503)],
         "upstream fell over", 503),
        ([MessageStart(), TextDelta("a"), MessageStop("error")],
         "the backend ended its answer with an error", 502),
        ([MessageStart(), ToolCallStart(0, "c1", "ls"), ToolCallDelta(0, "{}"), ToolCallEnd(0),
          MessageStop("tool_calls")],
         "the backend answered with a tool call (ls), which a completions client cannot receive",
         502),
        ([MessageStart(), TextDelta("a")],
         "the stream ended before the answer was complete", 502),
    ],
)  # fmt: skip
def test_errors_end_the_stream_with_an_error_event(
    events: list[StreamEvent], message: str, status: int
) -> None:
    raw = emit(events)
    assert raw.endswith(error_event(message, status))
    assert b"[DONE]" not in raw
    assert raw.count(b'"error"') == 1


def test_the_emitter_is_done_after_the_end() -> None:
    emitter = StreamEmitter(META)
    assert emitter.feed(MessageStop("stop")).endswith(b"data: [DONE]\n\n")
    assert emitter.feed(TextDelta("late")) == b""
    assert emitter.flush() == b""


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


def normal_cases() -> list[str]:
    return [case for case in CASES if isinstance(parse([raw_of(case)])[-1], MessageStop)
            and parse([raw_of(case)])[-1].finish_reason != "error"]  # fmt: skip


@pytest.mark.parametrize("case", normal_cases())
def test_the_sdk_accepts_emitted_streams(case: str) -> None:
    events = parse([raw_of(case)])
    expected = collect(events)
    client = sdk_stream(emit(events))
    options: Any = {"include_usage": True}
    chunks = list(
        client.completions.create(model="m", prompt="x", stream=True, stream_options=options)
    )
    assert {(c.id, c.model, c.object) for c in chunks} == {(META.id, META.model, "text_completion")}
    assert "".join(c.choices[0].text for c in chunks if c.choices) == expected.text()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == expected.finish_reason
    assert set(finishes[:-1]) <= {None}
    if expected.usage is not None:
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.prompt_tokens == expected.usage.input_tokens
        assert chunks[-1].usage.completion_tokens == expected.usage.output_tokens


def test_the_sdk_raises_emitted_stream_errors() -> None:
    raw = emit([MessageStart(), TextDelta("par"), StreamError("the backend fell over", 503)])
    received: list[str] = []
    with pytest.raises(openai.APIError, match="the backend fell over"):
        for c in sdk_stream(raw).completions.create(model="m", prompt="x", stream=True):
            received.extend(choice.text for choice in c.choices)
    assert "".join(received) == "par"


def test_meta_ids_and_models_are_json_escaped() -> None:
    meta = dataclasses.replace(META, id='cmpl-"1"', model="a\\b")
    first = chunks_of(emit([MessageStart(), TextDelta("x"), MessageStop("stop")], meta))[0]
    assert (first["id"], first["model"]) == ('cmpl-"1"', "a\\b")
