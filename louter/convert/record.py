"""The `Dialect` record type: every per-dialect fact, as one frozen dataclass.

Each dialect package (`louter/convert/<dialect>/__init__.py`) builds its `DIALECT` from
this record; `louter/convert/dialect.py` collects them into `DIALECTS`. The record has no
field defaults, so a dialect that forgets a fact fails when it is built, and
`tests/convert/test_dialect.py` exercises every capability of every dialect.

As a server (`serve_paths`, `serve`, `serve_count`; each package's `serve.py`): which
path suffixes are the dialect's generate and count endpoints, and how one request is read
there (the model and stream flag where the dialect puts them) and answered (`Served`: id
prefix, usage chunk, legacy `function_call`, Responses tool kinds, Gemini's SSE or
JSON-array stream). The mock backend answers every dialect through these alone
(`louter.mock.responder`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from louter.convert.model import (
    IdFactory,
    Request,
    Response,
    ResponseMeta,
    StreamEvent,
    ToolCall,
    Usage,
)
from louter.convert.ratelimit import RateLimits
from louter.convert.sse import SSEEvent

__all__ = [
    "COUNT",
    "GENERATE",
    "PENALTIES",
    "Dialect",
    "Headers",
    "Served",
    "StreamEmitter",
    "StreamParser",
    "body_parser",
    "text_reader",
]

Headers = tuple[tuple[bytes, bytes], ...]
PENALTIES = ("presence_penalty", "frequency_penalty")  # OpenAI and Gemini only


class StreamParser(Protocol):
    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...
    def flush(self) -> list[StreamEvent]: ...


class StreamEmitter(Protocol):
    def feed(self, event: StreamEvent) -> bytes: ...
    def flush(self) -> bytes: ...
    def prelude(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Served:
    """One request as a server of its dialect reads it, and how its answer is shaped."""

    request: Request  # model and stream flag read where the dialect puts them
    id_prefix: str  # before the server's response id: "msg_", "resp_", ""
    emit_response: Callable[[Response, ResponseMeta], dict[str, Any]]
    stream_emitter: Callable[[ResponseMeta], StreamEmitter]
    stream_headers: Headers  # of a streamed answer
    include_usage: bool  # the stream ends with usage (OpenAI asks for it, Gemini always)
    legacy_functions: bool  # an OpenAI client of legacy `functions`


GENERATE, COUNT = "generate", "count"  # the kinds of endpoint in `Dialect.serve_paths`


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    title: str  # how reports and the console name it ("OpenAI", "Gemini", ...)
    # conversion
    parse_request: Callable[..., Request]  # (body, *, model, stream)
    emit_request: Callable[[Request, str], dict[str, Any]]  # (request, backend model)
    parse_response: Callable[[Mapping[str, Any], IdFactory], Response]
    emit_response: Callable[[Response, ResponseMeta], dict[str, Any]]
    stream_parser: Callable[[IdFactory], StreamParser]
    stream_emitter: Callable[[ResponseMeta], StreamEmitter]
    # `Request` settings this dialect's requests cannot carry: dropped, and noted in the log
    drops: tuple[str, ...]
    # errors
    error_body: Callable[[int, str], dict[str, Any]]  # the client envelope
    error_message: Callable[[bytes], str]  # an upstream error body -> its message
    error_event: Callable[[str], bytes]  # the in-stream error event (SSE bytes)
    # the wire, as a client sees it and as a backend is addressed
    key_headers: tuple[str, ...]  # where a client key may come, in order; "authorization"
    key_query: str | None  # means a Bearer token; Gemini also takes `?key=`
    stream_headers: Headers  # response headers of a streamed answer
    upstream_path: Callable[[str, bool], str]  # (backend model, stream) -> escaped path
    upstream_headers: Headers  # content type (+ anthropic-version)
    auth_headers: Callable[[str], Headers]  # a backend key -> its headers
    key_env: str | None  # the default environment variable of a backend's key
    # usage and counting
    usage_of: Callable[[Mapping[str, Any]], Usage | None]  # a whole answer's usage
    text_of: Callable[[Mapping[str, Any]], str]  # a whole answer's text, for estimates
    count_request: Callable[..., Request] | None  # count body -> Request (body, *, model)
    count_response: Callable[[int], dict[str, Any]] | None  # tokens -> the count answer
    read_count: Callable[[Mapping[str, Any]], int] | None  # a backend's count answer
    # a tool call as this dialect's JSON (xml-tool-parse --format)
    tool_call_json: Callable[[ToolCall], dict[str, Any]]
    # as a server (the mock): endpoint path suffixes (query excluded) -> GENERATE or
    # COUNT, in the order they are tried; (path, body) -> the request read at one, the
    # count request for a COUNT endpoint (None: the dialect has none)
    serve_paths: tuple[tuple[str, str], ...]
    serve: Callable[[str, Mapping[str, Any]], Served]
    serve_count: Callable[[str, Mapping[str, Any]], Request] | None
    # rate-limit response headers (`convert/ratelimit.py`); None: none of its own (the
    # upstream's pass under their own names)
    ratelimit: RateLimits | None

    def dropped(self, request: Request) -> list[str]:
        """The settings of `request` that `emit_request` leaves out for want of a field."""
        return [name for name in self.drops if getattr(request, name) is not None]


def text_reader(
    parse: Callable[[Mapping[str, Any], IdFactory], Response],
) -> Callable[[Mapping[str, Any]], str]:
    def text_of(data: Mapping[str, Any]) -> str:
        """The answer's text and tool-call arguments ("" when it does not parse)."""
        answer = parse(data, lambda n: f"call_{n}")
        return answer.text() + "".join(call.arguments for call in answer.tool_calls())

    return text_of


def body_parser(parse: Callable[[Mapping[str, Any]], Request]) -> Callable[..., Request]:
    """A parser whose model and stream flag are in the body itself."""

    def parse_request(body: Mapping[str, Any], *, model: str = "", stream: bool = False) -> Request:
        return parse(body)

    return parse_request
