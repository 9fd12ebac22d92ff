"""Every dialect in `DIALECTS` has every capability: each field of its `Dialect` record is
set and each callable works on a small sample (round trips through the dialect's own
writer and reader, so a fact that is missing or wired to the wrong dialect fails here)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from louter.convert.collect import StreamCollector
from louter.convert.dialect import DIALECTS, Dialect
from louter.convert.model import (
    Message,
    MessageStart,
    MessageStop,
    Request,
    Response,
    ResponseMeta,
    StreamError,
    Text,
    TextDelta,
    ToolCall,
    Usage,
)
from louter.convert.probe.model import Ask, User
from louter.convert.sse import SSEDecoder
from louter.errors import LouterError
from louter.probes.wire import WIRES

# the count fields: all three set, or (an API without a count endpoint) all three None
COUNT_FIELDS = ("count_request", "count_response", "read_count", "serve_count")
# fields a dialect may leave None for want of the thing itself
MAY_BE_NONE = {"key_query", "ratelimit", *COUNT_FIELDS}  # ratelimit: Gemini has none

DIALECT_NAMES = sorted(DIALECTS)
META = ResponseMeta(id="answer-1", model="m", created=1_700_000_000, include_usage=True)


def _ids(n: int) -> str:
    return f"call_{n}"


def _request() -> Request:
    return Request(model="m", messages=(Message("user", (Text("hello there"),)),), max_tokens=9)


def _response() -> Response:
    return Response("answer-1", "m", (Text("hi back"),), "stop", Usage(7, 3))


@pytest.fixture(params=DIALECT_NAMES)
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return DIALECTS[request.param]


def test_the_table_is_keyed_by_name() -> None:
    assert {"openai", "gemini", "anthropic", "responses"} <= set(DIALECTS)
    assert all(name == d.name for name, d in DIALECTS.items())


def test_the_record_has_no_defaults() -> None:
    for field in dataclasses.fields(Dialect):
        assert field.default is dataclasses.MISSING, field.name
        assert field.default_factory is dataclasses.MISSING, field.name


def test_every_field_is_set(dialect: Dialect) -> None:
    for field in dataclasses.fields(Dialect):
        value = getattr(dialect, field.name)
        if field.name in MAY_BE_NONE:
            continue
        assert value is not None, f"{dialect.name} lacks {field.name}"
    counts = [getattr(dialect, name) is None for name in COUNT_FIELDS]
    assert all(counts) or not any(counts), f"{dialect.name}: count fields half set"


def test_requests_round_trip(dialect: Dialect) -> None:
    body = dialect.emit_request(_request(), "backend-model")
    assert isinstance(body, dict)
    back = dialect.parse_request(body, model="backend-model", stream=False)
    assert [m.text() for m in back.messages] == ["hello there"]
    assert back.max_tokens == 9


def test_whole_answers_round_trip_with_usage_and_text(dialect: Dialect) -> None:
    body = dialect.emit_response(_response(), META)
    back = dialect.parse_response(body, _ids)
    assert back.text() == "hi back"
    usage = dialect.usage_of(body)
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (7, 3)
    assert dialect.text_of(body) == "hi back"
    assert dialect.usage_of({}) is None


def _parse_stream(dialect: Dialect, raw: bytes) -> StreamCollector:
    parser = dialect.stream_parser(_ids)
    collector = StreamCollector()
    decoder = SSEDecoder()
    for sse in [*decoder.feed(raw), *decoder.flush()]:
        for event in parser.feed(sse):
            collector.feed(event)
    for event in parser.flush():
        collector.feed(event)
    return collector


def test_streams_round_trip(dialect: Dialect) -> None:
    emitter = dialect.stream_emitter(META)
    raw = emitter.prelude()
    for event in (TextDelta("hi "), TextDelta("back"), MessageStop("stop", Usage(7, 3))):
        raw += emitter.feed(event)
    raw += emitter.flush()
    collector = _parse_stream(dialect, raw)
    assert collector.error is None
    assert collector.result().text() == "hi back"


def test_the_prelude_opens_the_stream_once(dialect: Dialect) -> None:
    emitter = dialect.stream_emitter(META)
    opening = emitter.prelude()
    assert emitter.feed(MessageStart()) == b""  # already open: nothing twice
    raw = opening + emitter.feed(TextDelta("x")) + emitter.feed(MessageStop("stop"))
    assert _parse_stream(dialect, raw + emitter.flush()).result().text() == "x"


def test_errors_round_trip(dialect: Dialect) -> None:
    body = dialect.error_body(429, "slow down")
    assert isinstance(body, dict)
    assert dialect.error_message(orjson.dumps(body)) == "slow down"
    assert dialect.error_message(b"plain words") == "plain words"


def test_the_in_stream_error_event_reads_back_as_an_error(dialect: Dialect) -> None:
    raw = dialect.stream_emitter(META).prelude() + dialect.error_event("it broke")
    parser = dialect.stream_parser(_ids)
    events = [e for sse in SSEDecoder().feed(raw) for e in parser.feed(sse)]
    errors = [e for e in events if isinstance(e, StreamError)]
    assert errors and "it broke" in errors[0].message


def test_the_wire(dialect: Dialect) -> None:
    assert dialect.key_headers and all(h == h.lower() for h in dialect.key_headers)
    assert dialect.key_query in (None, "key")
    assert (b"content-type", b"text/event-stream") in dialect.stream_headers
    assert (b"content-type", b"application/json") in dialect.upstream_headers
    for stream in (False, True):
        path = dialect.upstream_path("org/model", stream)
        assert path.startswith("/") and "org/model" not in path
    headers = dialect.auth_headers("sk-1")
    assert headers and all(b"sk-1" in value for _, value in headers)
    with pytest.raises(LouterError):
        dialect.auth_headers("sk\n1")
    assert dialect.key_env and dialect.key_env.endswith("_API_KEY")


def test_counting(dialect: Dialect) -> None:
    if dialect.count_request is None:  # no count endpoint in this API
        assert dialect.count_response is None and dialect.read_count is None
        return
    assert dialect.count_response is not None and dialect.read_count is not None
    body = dialect.emit_request(_request(), "m")
    body.pop("max_tokens", None)
    counted = dialect.count_request(body, model="m")
    assert [m.text() for m in counted.messages] == ["hello there"]
    assert dialect.read_count(dialect.count_response(42)) == 42


def test_the_probe_wire(dialect: Dialect) -> None:
    wire = WIRES[dialect.name]
    assert wire is not None and wire.name == dialect.name
    call = wire.write(Ask(turns=(User("hi"),)), "m")
    assert call.method == "POST" and call.path.startswith("/")
    name, value = wire.key_header("sk-1")
    assert name.lower() in dialect.key_headers and "sk-1" in value


def test_a_tool_call_as_json(dialect: Dialect) -> None:
    rendered = orjson.dumps(dialect.tool_call_json(ToolCall("call_7", "get_weather", '{"a":1}')))
    assert b"get_weather" in rendered and (b'"a":1' in rendered or b'\\"a\\":1' in rendered)
