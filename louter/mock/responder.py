"""The mock's one responder: every dialect through the neutral model.

A request is read by its dialect's own parser (`Dialect.serve`, which knows where that
dialect puts the model and the stream flag), answered by the mock's rules (`engine`, over
`neutral.prompt_of`), and written by the dialect's own emitter, whole or streamed. Nothing
here names a dialect: the endpoints come from `DIALECTS` (`Dialect.serve_paths`), so a new
dialect needs nothing in `louter.mock`. Pure: ids and timestamps are arguments.

A streamed answer is one SSE event per body chunk (a Gemini JSON-array stream: one
emitter piece per chunk); text streams in `split_text` pieces, tool-call arguments in
`split_chars` fragments (`neutral.stream_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from louter.convert.dialect import DIALECTS, Dialect
from louter.convert.model import ResponseMeta
from louter.convert.record import COUNT, Served
from louter.errors import ConversionError
from louter.mock import engine
from louter.mock.neutral import prompt_of, response_of, stream_of

Headers = list[tuple[bytes, bytes]]

_JSON: Headers = [(b"content-type", b"application/json")]
_SSE_TYPE = b"text/event-stream"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A path suffix the mock answers, the dialect it belongs to and its kind."""

    suffix: str
    dialect: Dialect
    kind: str  # GENERATE or COUNT


@dataclass(frozen=True, slots=True)
class MockReply:
    status: int
    headers: Headers
    chunks: list[bytes]


def endpoints(dialects: Mapping[str, Dialect] = DIALECTS) -> tuple[Endpoint, ...]:
    """Every endpoint of every dialect, in the order they are tried."""
    return tuple(
        Endpoint(suffix, dialect, kind)
        for dialect in dialects.values()
        for suffix, kind in dialect.serve_paths
    )


def find(table: tuple[Endpoint, ...], path: str) -> Endpoint | None:
    """The endpoint whose suffix ends `path` (query excluded)."""
    base = path.partition("?")[0]
    return next((e for e in table if base.endswith(e.suffix)), None)


def respond(
    endpoint: Endpoint,
    path: str,
    body: Mapping[str, Any],
    *,
    response_id: str,
    created: int,
    tool_format: str = "json",
) -> MockReply:
    """The mock's answer to `body` at `path`, in the endpoint's dialect.

    Raises:
        ConversionError: the dialect's parser refused the request, or the mock's rules did
            (a forced tool that is not declared).
        ConfigError: unknown `tool_format`.
    """
    if endpoint.kind == COUNT:
        return _count(endpoint.dialect, path, body)
    served = endpoint.dialect.serve(path, body)
    answer = engine.answer(
        prompt_of(served.request), response_id=response_id, tool_format=tool_format
    )
    meta = _meta(served, answer, response_id, created)
    if not served.request.stream:
        response = response_of(answer, response_id=meta.id, model=meta.model)
        return MockReply(200, _JSON, [orjson.dumps(served.emit_response(response, meta))])
    emitter = served.stream_emitter(meta)
    events = stream_of(answer, response_id=meta.id, model=meta.model)
    pieces = [emitter.feed(event) for event in events]
    pieces.append(emitter.flush())
    headers = list(served.stream_headers)
    sse = (b"content-type", _SSE_TYPE) in headers
    chunks = [c for piece in pieces for c in (_events(piece) if sse else [piece]) if c]
    return MockReply(200, headers, chunks)


def error(endpoint: Endpoint | None, status: int, message: str) -> MockReply:
    """An error in the endpoint's dialect (no endpoint: a plain JSON error)."""
    if endpoint is None:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": status}}
    else:
        body = endpoint.dialect.error_body(status, message)
    return MockReply(status, _JSON, [orjson.dumps(body)])


def _meta(
    served: Served, answer: engine.MockAnswer, response_id: str, created: int
) -> ResponseMeta:
    return ResponseMeta(
        id=served.id_prefix + response_id,
        model=served.request.model,
        created=created,
        include_usage=served.include_usage,
        input_tokens=answer.prompt_tokens,
        legacy_functions=served.legacy_functions,
    )


def _count(dialect: Dialect, path: str, body: Mapping[str, Any]) -> MockReply:
    if dialect.serve_count is None or dialect.count_response is None:
        raise ConversionError(
            f"the {dialect.name} API has no token-count endpoint", status_hint=404
        )
    prompt = prompt_of(dialect.serve_count(path, body))
    return MockReply(200, _JSON, [orjson.dumps(dialect.count_response(prompt.prompt_tokens))])


def _events(blob: bytes) -> list[bytes]:
    """SSE bytes cut into their events (each keeps its blank-line terminator)."""
    return [event + b"\n\n" for event in blob.split(b"\n\n") if event]
