"""The mock answers every dialect of `DIALECTS` through its one responder.

Nothing here names a dialect: each test walks `DIALECTS`, writes a neutral request with
the dialect's own `emit_request`, sends it to the mock transport at the dialect's
backend path, and reads the answer back with the dialect's own parser. A dialect added to
`DIALECTS` is tested here without a line in this file or in `louter/mock/`.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from louter.config import load_config
from louter.convert.dialect import DIALECTS, Dialect
from louter.convert.model import (
    Message,
    MessageStop,
    Request,
    Response,
    StreamEvent,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
)
from louter.convert.record import COUNT, GENERATE
from louter.convert.sse import SSEDecoder
from louter.errors import ConversionError
from louter.mock import responder
from louter.mock.transport import MockResponse, MockTransport

MODEL = "mock-model"
QUESTION = "Hello there"
ANSWER = f'Mock answer to: "{QUESTION}" (images: 0)'
WEATHER = Tool(
    "get_weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
NAMES = sorted(DIALECTS)


def ids(n: int) -> str:
    return f"id{n}"


def neutral(*, stream: bool = False, tools: tuple[Tool, ...] = ()) -> Request:
    return Request(
        model=MODEL,
        messages=(Message("user", (Text(QUESTION),)),),
        tools=tools,
        stream=stream,
        include_usage=stream,
    )


def transport() -> MockTransport:
    backend = next(b for b in load_config(None, {}).backends if b.protocol == "mock")
    return MockTransport(backend, clock=lambda: 1_700_000_000)


async def send(dialect: Dialect, request: Request) -> MockResponse:
    path = dialect.upstream_path(MODEL, request.stream)
    body = orjson.dumps(dialect.emit_request(request, MODEL))
    return await transport().request(path, [], body, first_byte_timeout=1.0)


async def whole(dialect: Dialect, request: Request) -> Response:
    response = await send(dialect, request)
    assert response.status == 200
    return dialect.parse_response(orjson.loads(await response.read()), ids)


async def streamed(dialect: Dialect, request: Request) -> list[StreamEvent]:
    response = await send(dialect, request)
    assert response.status == 200
    decoder, parser = SSEDecoder(), dialect.stream_parser(ids)
    events: list[StreamEvent] = []
    async for chunk in response.chunks():
        for sse in decoder.feed(chunk):
            events.extend(parser.feed(sse))
    for sse in decoder.flush():
        events.extend(parser.feed(sse))
    return events + parser.flush()


def test_every_dialect_has_a_generate_endpoint_the_mock_finds() -> None:
    table = responder.endpoints()
    for dialect in DIALECTS.values():
        for stream in (False, True):
            endpoint = responder.find(table, dialect.upstream_path(MODEL, stream))
            assert endpoint is not None, dialect.name
            assert (endpoint.dialect, endpoint.kind) == (dialect, GENERATE)


@pytest.mark.parametrize("name", NAMES)
async def test_whole_answer(name: str) -> None:
    answer = await whole(DIALECTS[name], neutral())
    assert answer.text() == ANSWER
    assert answer.finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (2, 7)


@pytest.mark.parametrize("name", NAMES)
async def test_streamed_answer(name: str) -> None:
    events = await streamed(DIALECTS[name], neutral(stream=True))
    pieces = [e.text for e in events if isinstance(e, TextDelta) and e.text]
    assert "".join(pieces) == ANSWER
    assert len(pieces) == 4  # split_text: four word-boundary pieces
    stop = events[-1]
    assert isinstance(stop, MessageStop) and stop.finish_reason == "stop"


@pytest.mark.parametrize("name", NAMES)
async def test_tool_call_whole_and_streamed(name: str) -> None:
    dialect = DIALECTS[name]
    try:
        dialect.emit_request(neutral(tools=(WEATHER,)), MODEL)
    except ConversionError as exc:  # an API without tools (Completions) refuses them
        assert exc.status_hint == 400 and "tools" in exc.message
        return
    answer = await whole(dialect, neutral(tools=(WEATHER,)))
    (call,) = answer.tool_calls()
    assert (call.name, call.arguments_object()) == ("get_weather", {"city": "mock-city"})
    assert answer.finish_reason == "tool_calls"
    events = await streamed(dialect, neutral(stream=True, tools=(WEATHER,)))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    fragments = [e.arguments for e in events if isinstance(e, ToolCallDelta)]
    assert [s.name for s in starts] == ["get_weather"]
    assert "".join(fragments) == '{"city":"mock-city"}'
    assert isinstance(events[-1], MessageStop) and events[-1].finish_reason == "tool_calls"
    assert not any(isinstance(part, ToolCall) and not part.id for part in answer.parts)


@pytest.mark.parametrize("name", NAMES)
async def test_bad_body_is_a_400_in_the_dialects_envelope(name: str) -> None:
    dialect = DIALECTS[name]
    path = DIALECTS[name].upstream_path(MODEL, False)
    response = await transport().request(path, [], b"[]", first_byte_timeout=1.0)
    assert response.status == 400
    expected = dialect.error_body(400, "request body must be a JSON object")
    assert orjson.loads(await response.read()) == expected


def _count_path(dialect: Dialect) -> str | None:
    """The backend's generate path with its generate suffix swapped for the count one."""
    path = dialect.upstream_path(MODEL, False)
    count = next((s for s, kind in dialect.serve_paths if kind == COUNT), None)
    generate = next(s for s, kind in dialect.serve_paths if kind == GENERATE and path.endswith(s))
    return None if count is None else path[: len(path) - len(generate)] + count


@pytest.mark.parametrize("name", NAMES)
async def test_token_count_where_the_dialect_has_one(name: str) -> None:
    dialect = DIALECTS[name]
    path = _count_path(dialect)
    if path is None:
        assert dialect.serve_count is None and dialect.count_response is None
        return
    body: dict[str, Any] = dialect.emit_request(neutral(), MODEL)
    response = await transport().request(path, [], orjson.dumps(body), first_byte_timeout=1.0)
    assert response.status == 200
    assert orjson.loads(await response.read()) == dialect.count_response(2)  # type: ignore[misc]


async def test_unknown_path_is_a_404() -> None:
    response = await transport().request("/v1/nothing", [], b"{}", first_byte_timeout=1.0)
    assert response.status == 404
    assert b"the mock backend has no endpoint /v1/nothing" in await response.read()
