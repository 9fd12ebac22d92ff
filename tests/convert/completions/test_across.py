"""Completions <-> every other dialect through the neutral model, at the converter level
(the proxy-level tests, through real HTTP, are in tests/proxy/).

    a Completions backend's answer -> neutral -> dialect D's client answer
        -> D's backend parser -> neutral -> a Completions client's answer
    the same for streams, and a Completions client's request -> D's backend request.

Every other dialect must carry the text, the finish reason and the usage across.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import pytest

from louter.convert import completions
from louter.convert.collect import StreamCollector
from louter.convert.dialect import DIALECTS, Dialect
from louter.convert.model import MessageStop, Response, StreamEvent, Usage
from louter.convert.sse import SSEDecoder
from tests.convert.completions.golden import FIXTURES, META, USAGE_META, ids

OTHERS = sorted(name for name in DIALECTS if name != "completions")
ANSWERS = ["llama-length", "llama-transcript-stop", "openai-instruct", "content-filter"]
STREAMS = ["llama-usage", "llama-transcript-stop", "openai-usage", "utf8", "no-usage"]


def backend_answer(case: str) -> Response:
    case_data = orjson.loads((FIXTURES / "responses" / f"{case}.json").read_bytes())
    return completions.parse_response(case_data["backend"], ids)


def read_stream(raw: bytes, parser_of: Dialect | None = None) -> list[StreamEvent]:
    decoder = SSEDecoder()
    parser = parser_of.stream_parser(ids) if parser_of else completions.StreamParser(ids)
    events = [e for sse in decoder.feed(raw) + decoder.flush() for e in parser.feed(sse)]
    return events + parser.flush()


def write_stream(events: Iterable[StreamEvent], dialect: Dialect | None = None) -> bytes:
    make = dialect.stream_emitter if dialect else completions.StreamEmitter
    emitter = make(USAGE_META)
    return b"".join(emitter.feed(event) for event in events) + emitter.flush()


def tokens(usage: Usage | None) -> tuple[int, int] | None:
    return None if usage is None else (usage.input_tokens, usage.output_tokens)


def collect(events: Iterable[StreamEvent]) -> Response:
    collector = StreamCollector()
    for event in events:
        collector.feed(event)
    return collector.result()


def test_every_other_dialect_is_crossed() -> None:
    assert OTHERS == ["anthropic", "gemini", "openai", "responses"]


@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.parametrize("case", ANSWERS)
def test_answers_cross_every_dialect_and_back(other: str, case: str) -> None:
    dialect = DIALECTS[other]
    original = backend_answer(case)
    there = dialect.parse_response(dialect.emit_response(original, META), ids)
    assert there.text() == original.text()
    assert tokens(there.usage) == tokens(original.usage)
    back = completions.emit_response(there, META)
    assert back["choices"][0]["text"] == original.text()
    assert back["choices"][0]["finish_reason"] == original.finish_reason


@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.parametrize("case", STREAMS)
def test_streams_cross_every_dialect_and_back(other: str, case: str) -> None:
    dialect = DIALECTS[other]
    events = read_stream((FIXTURES / "streams" / f"{case}.sse").read_bytes())
    there = read_stream(write_stream(events, dialect), dialect)
    expected = collect(events)
    assert isinstance(there[-1], MessageStop)
    assert there[-1].finish_reason == expected.finish_reason
    back = read_stream(write_stream(there))
    answer = collect(back)
    assert answer.text() == expected.text()
    assert answer.finish_reason == expected.finish_reason
    if expected.usage is not None:
        assert tokens(answer.usage) == tokens(expected.usage)


@pytest.mark.parametrize("other", OTHERS)
def test_a_completions_request_reaches_every_backend(other: str) -> None:
    request = completions.parse_request(
        {"model": "m", "prompt": "Write a haiku", "max_tokens": 30, "stop": "END", "stream": True}
    )
    body = orjson.dumps(DIALECTS[other].emit_request(request, "backend-model")).decode()
    assert "Write a haiku" in body
    assert ("END" in body) is (other != "responses")  # the Responses API has no stop


def test_usage_survives_with_cached_tokens_where_dialects_carry_them() -> None:
    answer = backend_answer("llama-length")
    assert answer.usage == Usage(5, 8, cached_tokens=0)
