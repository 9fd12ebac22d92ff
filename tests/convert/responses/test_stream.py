"""OpenAI Responses streams: StreamParser over recorded and hand-made streams (re-chunked
every way), StreamEmitter golden files, event-order checks and playbooks, emitter ->
parser round trips, and the official SDK (and Codex's needs) on emitted streams.

`LOUTER_REGEN=1 pytest tests/convert/responses/test_stream.py` rewrites the expected files.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx2
import openai
import orjson
import pytest

from louter.convert.collect import StreamCollector
from louter.convert.model import (
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
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from louter.convert.responses.response import parse_response
from louter.convert.responses.stream_emitter import StreamEmitter
from louter.convert.responses.stream_parser import StreamParser
from louter.convert.responses.wire import ToolKinds
from louter.convert.sse import SSEDecoder, SSEEvent
from louter.errors import ConversionError
from tests.convert.responses.test_convert import (
    FIXTURES,
    KINDS,
    META,
    REGEN,
    fixture_body,
    golden,
    ids,
    to_json,
)

STREAMS = FIXTURES / "streams"
WHOLE = sorted(p.stem for p in (FIXTURES / "responses").glob("*.json") if ".expected" not in p.name)


def stream_cases() -> list[str]:
    return sorted(path.stem for path in STREAMS.glob("*.sse") if ".emitted" not in path.name)


def raw_of(name: str) -> bytes:
    return (STREAMS / f"{name}.sse").read_bytes()


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


def emit(events: list[StreamEvent], kinds: ToolKinds = KINDS, meta: ResponseMeta = META) -> bytes:
    emitter = StreamEmitter(meta, kinds)
    return b"".join(emitter.feed(event) for event in events) + emitter.flush()


def wire(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """SSE bytes -> (event line, JSON payload) pairs."""
    decoder = SSEDecoder()
    return [(e.event, orjson.loads(e.data)) for e in decoder.feed(raw) + decoder.flush()]


def payloads(raw: bytes) -> list[dict[str, Any]]:
    return [payload for _, payload in wire(raw)]


def sse(kind: str, **payload: Any) -> SSEEvent:
    return SSEEvent(orjson.dumps({"type": kind, **payload}).decode(), kind)


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


def collect(events: list[StreamEvent]) -> Response:
    collector = StreamCollector()
    for event in events:
        collector.feed(event)
    return collector.result()


CREATED = sse("response.created", response={"id": "resp_1", "model": "m", "status": "in_progress"})


def added(index: int, **item: Any) -> SSEEvent:
    return sse("response.output_item.added", output_index=index, item=item)


def done(index: int, **item: Any) -> SSEEvent:
    return sse("response.output_item.done", output_index=index, item=item)


def completed(**response: Any) -> SSEEvent:
    return sse("response.completed", response={"id": "resp_1", "status": "completed", **response})


# --------------------------------------------------------------------------- parser: fixtures


@pytest.mark.parametrize("name", stream_cases())
def test_stream_golden(name: str) -> None:
    golden(STREAMS / f"{name}.expected.json", to_json(parse([raw_of(name)])))


@pytest.mark.parametrize("name", stream_cases())
def test_rechunking_gives_identical_events(name: str) -> None:
    raw = raw_of(name)
    whole = parse([raw])
    assert parse([raw[i : i + 1] for i in range(len(raw))]) == whole
    for cut in range(1, len(raw)):
        assert parse([raw[:cut], raw[cut:]]) == whole, f"split at byte {cut}"


@pytest.mark.parametrize("name", ["stub-tool", "reasoning-parallel"])
def test_crlf_and_data_only_streams_parse_alike(name: str) -> None:
    raw = raw_of(name)
    crlf = raw.replace(b"\n", b"\r\n")
    data_only = b"\n".join(line for line in raw.split(b"\n") if not line.startswith(b"event:"))
    assert parse([crlf]) == parse([data_only]) == parse([raw])


def merged(response: Response) -> Response:
    """A stream gives a reasoning item's opaque data as its own delta after the text; the
    collector keeps it as a separate part. Merge such pairs as a whole answer has them."""
    parts: list[Part] = []
    for part in response.parts:
        last = parts[-1] if parts else None
        if (
            isinstance(part, Reasoning)
            and not part.text
            and isinstance(last, Reasoning)
            and last.redacted is None
            and last.signature is None
        ):
            parts[-1] = Reasoning(last.text, part.signature, part.redacted)
        else:
            parts.append(part)
    return dataclasses.replace(response, parts=tuple(parts))


@pytest.mark.parametrize("name", WHOLE)
def test_collected_stream_equals_whole_response(name: str) -> None:
    collected = merged(collect(parse([raw_of(name)])))
    assert collected == parse_response(fixture_body("responses", name), ids)


# --------------------------------------------------------------------------- parser: tables


def test_parser_playbook() -> None:
    assert run(
        CREATED,
        sse("response.in_progress", response={"id": "resp_1"}),
        added(0, type="reasoning", summary=[]),
        sse("response.reasoning_text.delta", output_index=0, content_index=0, delta="raw"),
        sse("response.reasoning_text.delta", output_index=0, content_index=0, delta=""),
        sse("response.reasoning_summary_text.delta", output_index=0, summary_index=0, delta="sum"),
        done(0, type="reasoning", summary=[], encrypted_content="louter-signature:s"),
        added(1, type="message", content=[]),
        sse("response.content_part.added", output_index=1, content_index=0, part={}),
        sse("response.refusal.delta", output_index=1, content_index=0, delta="no"),
        sse("response.output_text.annotation.added", output_index=1, annotation={}),
        sse("response.refusal.done", output_index=1, refusal="no"),
        done(1, type="message", content=[]),
        added(2, type="function_call", name="f", namespace="ns", arguments='{"a"'),
        sse("response.function_call_arguments.delta", output_index=2, delta=""),
        sse("response.function_call_arguments.delta", output_index=2, delta=":1}"),
        sse("response.function_call_arguments.done", output_index=2, arguments='{"a":1}'),
        added(3, type="custom_tool_call", call_id="c", name="p", input=""),
        sse("keepalive"),
        completed(usage={"input_tokens": 1, "output_tokens": 2}),
    ) == [
        MessageStart("resp_1", "m"),
        ReasoningDelta("raw"),
        ReasoningDelta("\n\nsum"),
        ReasoningDelta(signature="s"),
        TextDelta("no"),
        ToolCallStart(0, "call_louter_0", "ns__f"),
        ToolCallDelta(0, '{"a"'),
        ToolCallDelta(0, ":1}"),
        ToolCallStart(1, "c", "p"),
        ToolCallDelta(1, '{"input":"'),
        ToolCallEnd(0),  # still open at response.completed
        ToolCallDelta(1, '"}'),
        ToolCallEnd(1),
        MessageStop("tool_calls", Usage(1, 2)),
    ]


def test_parser_takes_what_no_delta_carried_from_done_events() -> None:
    assert run(
        CREATED,
        added(0, type="message"),
        sse("response.output_text.done", output_index=0, text="whole"),
        sse("response.output_text.done", output_index=0, text="again"),
        done(0, type="message", content=[{"type": "output_text", "text": "whole"}]),
        added(1, type="message"),
        sse("response.output_text.done", output_index=1, text=""),
        done(1, type="message", content=[]),
        added(2, type="reasoning"),
        done(2, type="reasoning", summary=[]),
        added(3, type="function_call", name="f"),
        sse("response.function_call_arguments.done", output_index=3, arguments="{}"),
        done(3, type="function_call", name="f", arguments="{}"),
    ) == [
        MessageStart("resp_1", "m"),
        TextDelta("whole"),
        ToolCallStart(0, "call_louter_0", "f"),
        ToolCallDelta(0, "{}"),
        ToolCallEnd(0),
    ]


def test_parser_starts_without_response_created() -> None:
    assert run(
        added(0, type="message"), sse("response.output_text.delta", output_index=0, delta="x")
    ) == [
        MessageStart(),
        TextDelta("x"),
    ]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            completed(status="incomplete", incomplete_details={"reason": "content_filter"}),
            MessageStop("content_filter"),
        ),  # fmt: skip
        (sse("response.incomplete", response={}), MessageStop("length")),
        (
            sse("response.failed", response={"error": {"code": "server_error", "message": "down"}}),
            StreamError("down"),
        ),  # fmt: skip
        (sse("response.failed", response={}), StreamError("the upstream response failed")),
        (sse("error", code="rate_limit_exceeded", message="slow"), StreamError("slow", 429)),
        (sse("error", code="context_length_exceeded", message="long"), StreamError("long", 400)),
        (sse("error", code=503, message="busy"), StreamError("busy", 503)),
        (
            SSEEvent('{"error": {"message": "llama", "code": 500}}', "error"),
            StreamError("llama", 500),
        ),
        (SSEEvent('{"error": "plain"}', "error"), StreamError("the upstream reported an error")),
    ],
)
def test_endings(event: SSEEvent, expected: StreamEvent) -> None:
    assert run(CREATED, event) == [MessageStart("resp_1", "m"), expected]


def test_stream_error_of_a_non_object() -> None:
    parser = StreamParser(ids)
    assert parser.feed(sse("response.failed", response={"error": "gone"}))[-1] == StreamError(
        "gone"
    )


def test_flush() -> None:
    parser = StreamParser(ids)
    assert parser.flush() == [
        MessageStart(),
        StreamError("upstream stream ended before response.completed"),
    ]
    assert parser.flush() == []
    parser = StreamParser(ids)
    parser.feed(CREATED)
    parser.feed(completed())
    assert parser.flush() == []


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([SSEEvent("not json")], "event data is not JSON"),
        ([SSEEvent("[1]")], "not a JSON object"),
        ([SSEEvent("{}")], "an event has no type"),
        ([CREATED, completed(), CREATED], "'response.created' event after the end"),
        ([CREATED, added(0, type="web_search_call")], "output item type 'web_search_call'"),
        ([CREATED, added(0, type="message"), added(0, type="message")], "added twice"),
        (
            [CREATED, sse("response.output_text.delta", output_index=0, delta="x")],
            "which is not open",
        ),
        ([CREATED, sse("response.output_text.delta", delta="x")], "output item None"),
        (
            [
                CREATED,
                added(0, type="message"),
                sse("response.function_call_arguments.delta", output_index=0),
            ],
            "inside a message item",
        ),
        ([CREATED, done(0, type="message")], "which is not open"),
        ([CREATED, sse("response.output_item.added", item={})], "output_index is missing"),
        ([CREATED, sse("response.output_item.added", output_index=0)], "item is missing"),
        ([CREATED, added(0, type="function_call")], "item.name is missing"),
        ([CREATED, sse("response.completed")], "response is missing"),
        ([CREATED, completed(status="in_progress")], "status 'in_progress'"),
    ],
)
def test_parser_rejects_malformed_input(events: list[SSEEvent], problem: str) -> None:
    assert problem in upstream_error(*events)


# --------------------------------------------------------------------------- emitter: golden, shape


@pytest.mark.parametrize("name", stream_cases())
def test_emitter_golden(name: str) -> None:
    out = emit(parse([raw_of(name)]))
    path = STREAMS / f"{name}.emitted.sse"
    if REGEN:
        path.write_bytes(out)
    assert out == path.read_bytes()


def check_shape(raw: bytes) -> list[dict[str, Any]]:
    """The invariants Codex and the SDK rely on; returns the payloads."""
    pairs = wire(raw)
    events = [payload for _, payload in pairs]
    assert all(line == payload["type"] for line, payload in pairs)  # `event:` = `type`
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    last = events[-1]
    assert last["type"] in ("response.completed", "response.failed")
    assert sum(e["type"] in ("response.completed", "response.failed") for e in events) == 1
    open_item: int | None = None
    open_id = ""
    finished: list[dict[str, Any]] = []
    for event in events[2:-1]:
        index = event.get("output_index")
        if event["type"] == "response.output_item.added":
            assert open_item is None and index == len(finished)
            open_item, open_id = index, event["item"]["id"]
        elif event["type"] == "response.output_item.done":
            assert index == open_item and event["item"]["id"] == open_id
            finished.append(event["item"])
            open_item = None
        else:  # an item's own events come only between its added and done
            assert (index, event["item_id"]) == (open_item, open_id), event
    assert open_item is None  # every item added is done
    assert last["response"]["output"] == finished
    assert len({item["id"] for item in finished}) == len(finished)
    return events


@pytest.mark.parametrize("name", stream_cases())
def test_emitted_stream_shape(name: str) -> None:
    events = check_shape(emit(parse([raw_of(name)])))
    final = events[-1]["response"]
    expected = collect(parse([raw_of(name)]))
    if expected.usage is not None:
        assert final["usage"]["input_tokens"] == expected.usage.input_tokens
        assert final["usage"]["total_tokens"] == expected.usage.total_tokens
    if expected.finish_reason == "error":
        assert final["status"] == "failed" and final["error"]["message"]
    else:
        assert events[-1]["type"] == "response.completed"


def normalise(events: list[StreamEvent]) -> list[StreamEvent]:
    """What an emit -> parse round trip keeps: the ids and model of META, usage details
    as written (0 when unknown), argument fragments joined per call, opaque reasoning
    data apart from its text."""
    out: list[StreamEvent] = []
    for event in events:
        if isinstance(event, MessageStart):
            event = MessageStart(META.id, META.model)
        elif isinstance(event, MessageStop) and event.usage is not None:
            usage = event.usage
            usage = dataclasses.replace(
                usage,
                cached_tokens=usage.cached_tokens or 0,
                reasoning_tokens=usage.reasoning_tokens or 0,
            )
            event = MessageStop(event.finish_reason, usage)
        elif isinstance(event, UsageUpdate):
            continue
        elif (
            isinstance(event, ReasoningDelta) and event.text and (event.signature or event.redacted)
        ):
            out += [ReasoningDelta(event.text), ReasoningDelta("", event.signature, event.redacted)]
            continue
        elif isinstance(event, ToolCallDelta) and out and isinstance(out[-1], ToolCallDelta):
            out[-1] = ToolCallDelta(event.index, out[-1].arguments + event.arguments)
            continue
        out.append(event)
    return out


@pytest.mark.parametrize("name", stream_cases())
def test_emitter_parser_round_trip(name: str) -> None:
    events = parse([raw_of(name)])
    again = parse([emit(events)])
    if isinstance(events[-1], StreamError):  # a failure keeps its message, not its status
        assert again[-1] == StreamError(
            events[-1].message, 502 if events[-1].status != 429 else 429
        )
        # ... and the emitter closes the open item first (`output_item.done`, incomplete)
        events = [e for e in events[:-1] if not isinstance(e, ToolCallEnd)]
        again = [e for e in again[:-1] if not isinstance(e, ToolCallEnd)]
    assert normalise(again) == normalise(events)


# --------------------------------------------------------------------------- emitter: playbooks


def types(raw: bytes) -> list[str]:
    return [payload["type"] for payload in payloads(raw)]


def test_emitter_text_call_text() -> None:
    raw = emit(
        [
            MessageStart("up", "up-model"),
            MessageStart(),  # the proxy's prelude sends one too
            TextDelta("a"),
            TextDelta(""),
            ToolCallStart(0, "c0", "f"),
            ToolCallDelta(0, ""),
            ToolCallDelta(0, "{}"),
            TextDelta("b"),
            ToolCallEnd(0),  # late: the call was closed by the text
            UsageUpdate(Usage(3, 4)),
            MessageStop("tool_calls"),
        ],
        kinds=ToolKinds(),
    )
    assert types(raw) == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]  # fmt: skip
    final = check_shape(raw)[-1]["response"]
    assert [item["id"] for item in final["output"]] == [
        "msg_louter01_0",
        "fc_louter01_1",
        "msg_louter01_2",
    ]
    assert final["usage"]["total_tokens"] == 7 and final["model"] == META.model


def test_emitter_reasoning_items() -> None:
    raw = emit(
        [
            ReasoningDelta("a"),
            ReasoningDelta("b", signature="s"),  # signs and closes the item
            ReasoningDelta("c"),
            ReasoningDelta(redacted="r"),  # closes the open item with its data
            ReasoningDelta(redacted="only"),  # a whole item of its own
            ReasoningDelta(""),
            MessageStop("stop"),
        ]
    )
    final = check_shape(raw)[-1]["response"]
    assert final["output"] == [
        {
            "type": "reasoning",
            "id": "rs_louter01_0",
            "summary": [{"type": "summary_text", "text": "ab"}],
            "encrypted_content": "louter-signature:s",
        },  # fmt: skip
        {
            "type": "reasoning",
            "id": "rs_louter01_1",
            "summary": [{"type": "summary_text", "text": "c"}],
            "encrypted_content": "r",
        },  # fmt: skip
        {"type": "reasoning", "id": "rs_louter01_2", "summary": [], "encrypted_content": "only"},
    ]
    assert types(raw).count("response.reasoning_summary_text.delta") == 3
    assert types(raw).count("response.reasoning_summary_part.added") == 2


def test_emitter_custom_and_namespaced_calls() -> None:
    raw = emit(
        [
            ToolCallStart(0, "c0", "apply_patch"),
            ToolCallDelta(0, '{"input":"*** Begin'),
            ToolCallDelta(0, ' Patch\\n"}'),
            ToolCallEnd(0),
            ToolCallStart(1, "c1", "multi_agent_v1__spawn_agent"),
            ToolCallDelta(1, '{"message":"x"}'),
            ToolCallStart(2, "c2", "apply_patch"),
            ToolCallEnd(2),
            MessageStop("tool_calls"),
        ]
    )
    events = check_shape(raw)
    custom = [e for e in events if e["type"].startswith("response.custom_tool_call_input")]
    assert [(e["type"], e.get("delta", e.get("input"))) for e in custom] == [
        ("response.custom_tool_call_input.delta", "*** Begin Patch\n"),
        ("response.custom_tool_call_input.done", "*** Begin Patch\n"),
        ("response.custom_tool_call_input.done", ""),
    ]
    first, second, third = events[-1]["response"]["output"]
    assert first == {
        "type": "custom_tool_call",
        "id": "ctc_louter01_0",
        "status": "completed",
        "call_id": "c0",
        "name": "apply_patch",
        "input": "*** Begin Patch\n",
    }
    assert (second["name"], second["namespace"], second["arguments"]) == (
        "spawn_agent", "multi_agent_v1", '{"message":"x"}'
    )  # fmt: skip
    assert third["input"] == ""


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        ("stop", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
    ],  # fmt: skip
)
def test_emitter_finish_table(finish: str, status: str, reason: str | None) -> None:
    events = check_shape(emit([TextDelta("x"), MessageStop(finish, Usage(1, 1))]))
    final = events[-1]
    assert final["type"] == "response.completed"  # what Codex and the SDK accept
    assert final["response"]["status"] == status
    assert final["response"]["incomplete_details"] == ({"reason": reason} if reason else None)
    item_status = "completed" if status == "completed" else "incomplete"
    assert final["response"]["output"][0]["status"] == item_status


@pytest.mark.parametrize(
    ("events", "message", "code"),
    [
        ([TextDelta("par"), StreamError("fell over", 503)], "fell over", "server_error"),
        ([StreamError("slow down", 429)], "slow down", "rate_limit_exceeded"),
        (
            [TextDelta("x"), MessageStop("error")],
            "upstream ended the response with an error",
            "server_error",
        ),
        (
            [ToolCallStart(0, "c", "f")],
            "upstream stream ended without a stop event",
            "server_error",
        ),
        ([], "upstream stream ended without a stop event", "server_error"),
    ],
)
def test_emitter_failures(events: list[StreamEvent], message: str, code: str) -> None:
    raw = emit([UsageUpdate(Usage(2, 0)), *events] if events else events)
    final = check_shape(raw)[-1]
    assert final["type"] == "response.failed"
    response = final["response"]
    assert response["status"] == "failed"
    assert response["error"] == {"code": code, "message": message}
    assert all(item["status"] == "incomplete" for item in response["output"] if "status" in item)
    assert "response.completed" not in types(raw)


def test_emitter_after_the_end() -> None:
    emitter = StreamEmitter(META)
    emitter.feed(MessageStop("stop"))
    assert emitter.feed(StreamError("late")) == b""
    assert emitter.flush() == b""
    with pytest.raises(ConversionError, match="TextDelta after the end"):
        emitter.feed(TextDelta("late"))


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([ToolCallDelta(0, "{}")], "which was never started"),
        ([ToolCallStart(0, "c", "f"), TextDelta("x"), ToolCallDelta(0, "{}")], "which was closed"),
    ],
)
def test_emitter_rejects_arguments_without_an_open_call(
    events: list[StreamEvent], problem: str
) -> None:
    emitter = StreamEmitter(META)
    with pytest.raises(ConversionError, match=problem) as info:
        for event in events:
            emitter.feed(event)
    assert info.value.status_hint == 502


def test_emitter_bytes_are_event_lines() -> None:
    raw = emit([TextDelta("a\nb")])
    for block in raw.split(b"\n\n")[:-1]:
        kind, data = block.split(b"\n")
        assert kind.startswith(b"event: response.") and data.startswith(b"data: {")


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
    return [
        name for name in stream_cases() if collect(parse([raw_of(name)])).finish_reason != "error"
    ]


@pytest.mark.parametrize("name", normal_cases())
def test_the_sdk_accepts_emitted_streams(name: str) -> None:
    expected = collect(parse([raw_of(name)]))
    client = sdk_stream(emit(parse([raw_of(name)])))
    stream = list(client.responses.create(model="client-model", input="hi", stream=True))
    assert [e.sequence_number for e in stream] == list(range(len(stream)))
    text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    assert text == expected.text()
    assert stream[-1].type == "response.completed"
    done = [e.item for e in stream if e.type == "response.output_item.done"]
    assert stream[-1].response.output == done
    with client.responses.stream(model="client-model", input="hi") as helper:
        final = helper.get_final_response()
    assert (final.id, final.model) == (META.id, META.model)
    assert final.output_text == expected.text()
    calls = [i.call_id for i in final.output if i.type in ("function_call", "custom_tool_call")]
    assert calls == [call.id for call in expected.tool_calls()]
    if expected.usage is not None:
        assert final.usage is not None and final.usage.output_tokens == expected.usage.output_tokens


def test_the_sdk_sees_failed_streams() -> None:
    client = sdk_stream(emit([TextDelta("par"), StreamError("the backend fell over", 503)]))
    stream = list(client.responses.create(model="client-model", input="hi", stream=True))
    assert stream[-1].type == "response.failed"
    assert stream[-1].response.error is not None
    assert stream[-1].response.error.message == "the backend fell over"
    with pytest.raises(RuntimeError, match="response.completed"):
        with client.responses.stream(model="client-model", input="hi") as helper:
            helper.get_final_response()


def test_codex_reads_calls_from_output_item_done() -> None:
    """Codex takes function and custom calls only from `response.output_item.done`."""
    raw = emit(parse([raw_of("custom-tool")]))
    items = [p["item"] for p in payloads(raw) if p["type"] == "response.output_item.done"]
    assert items[0]["type"] == "custom_tool_call"
    assert items[0]["input"].startswith("*** Begin Patch\n*** Add File: hello.txt\n")
