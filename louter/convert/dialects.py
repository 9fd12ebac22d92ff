"""The dialect table: each wire API's converters bundled under its name.

The proxy looks a backend's dialect up here and calls the same functions whatever it is
(dict dispatch, no provider ladders). Front doors call their own module's
`parse_request` directly: its arguments differ by dialect (Gemini's model is in the path).

Each dialect also says how a server of it reads one request (`serve_paths`, `serve`,
`serve_count`, `count_response`): which path suffixes are its generate and count
endpoints, the neutral request with the model and stream flag read where that dialect
puts them, and the answer's shape (id prefix, usage chunk, legacy `function_call`,
Responses tool kinds, Gemini's SSE or JSON-array stream). The mock backend answers every
dialect through these alone (`louter.mock.responder`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from louter.convert import anthropic, gemini, openai, openai_stream, responses
from louter.convert.model import IdFactory, Request, Response, ResponseMeta, StreamEvent
from louter.convert.sse import SSEEvent


class StreamParser(Protocol):
    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...
    def flush(self) -> list[StreamEvent]: ...


class StreamEmitter(Protocol):
    def feed(self, event: StreamEvent) -> bytes: ...
    def flush(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Served:
    """One request as a server of its dialect reads it, and how its answer is shaped."""

    request: Request  # model and stream flag read where the dialect puts them
    id_prefix: str  # before the server's response id: "msg_", "resp_", ""
    emit_response: Callable[[Response, ResponseMeta], dict[str, Any]]
    stream_emitter: Callable[[ResponseMeta], StreamEmitter]
    include_usage: bool = False  # the stream ends with usage (OpenAI asks, Gemini always)
    legacy_functions: bool = False  # an OpenAI client of legacy `functions`
    stream_type: bytes = b"text/event-stream"  # content type of a streamed answer


GENERATE, COUNT = "generate", "count"  # the kinds of endpoint in `Dialect.serve_paths`


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    emit_request: Callable[[Request, str], dict[str, Any]]
    parse_response: Callable[[Mapping[str, Any], IdFactory], Response]
    emit_response: Callable[[Response, ResponseMeta], dict[str, Any]]
    stream_parser: Callable[[IdFactory], StreamParser]
    stream_emitter: Callable[[ResponseMeta], StreamEmitter]
    error_body: Callable[[int, str], dict[str, Any]]
    error_message: Callable[[bytes], str]
    # as a server: endpoint path suffixes (query excluded) -> GENERATE or COUNT, in the
    # order they are tried; (path, body) -> the request; a count body -> its request
    serve_paths: tuple[tuple[str, str], ...]
    serve: Callable[[str, Mapping[str, Any]], Served]
    serve_count: Callable[[str, Mapping[str, Any]], Request] | None
    count_response: Callable[[int], dict[str, Any]] | None  # tokens -> the count answer
    # `Request` settings this dialect's requests cannot carry: dropped, and noted in the log
    drops: tuple[str, ...] = ()

    def dropped(self, request: Request) -> list[str]:
        """The settings of `request` that `emit_request` leaves out for want of a field."""
        return [name for name in self.drops if getattr(request, name) is not None]


PENALTIES = ("presence_penalty", "frequency_penalty")  # OpenAI and Gemini only


def _serve_openai(path: str, body: Mapping[str, Any]) -> Served:
    request = openai.parse_request(body)
    return Served(
        request=request,
        id_prefix="",
        emit_response=openai.emit_response,
        stream_emitter=openai_stream.StreamEmitter,
        include_usage=request.include_usage,
        legacy_functions=openai.legacy_functions(body),
    )


def gemini_target(path: str) -> tuple[str, str, bool]:
    """`/v1beta/models/{model}:{action}?alt=sse` -> (model, action, SSE wanted)."""
    base, _, query = path.partition("?")
    model, _, action = base.split("/models/", 1)[-1].rpartition(":")
    return model, action, "alt=sse" in query


def _serve_gemini(path: str, body: Mapping[str, Any]) -> Served:
    model, action, sse = gemini_target(path)
    stream = action == "streamGenerateContent"
    return Served(
        request=gemini.parse_request(body, model=model, stream=stream),
        id_prefix="",
        emit_response=gemini.emit_response,
        stream_emitter=lambda meta: gemini.StreamEmitter(meta, sse=sse),
        include_usage=True,
        stream_type=b"text/event-stream" if sse else b"application/json",
    )


def _count_gemini(path: str, body: Mapping[str, Any]) -> Request:
    return gemini.parse_count_request(body, model=gemini_target(path)[0])


def _serve_anthropic(path: str, body: Mapping[str, Any]) -> Served:
    return Served(
        request=anthropic.parse_request(body),
        id_prefix="msg_",
        emit_response=anthropic.emit_response,
        stream_emitter=anthropic.StreamEmitter,
    )


def _count_anthropic(path: str, body: Mapping[str, Any]) -> Request:
    return anthropic.parse_request({"max_tokens": 1, **body})  # count bodies have none


def _serve_responses(path: str, body: Mapping[str, Any]) -> Served:
    kinds = responses.tool_kinds(body)
    return Served(
        request=responses.parse_request(body),
        id_prefix="resp_",
        emit_response=lambda response, meta: responses.emit_response(response, meta, kinds),
        stream_emitter=lambda meta: responses.StreamEmitter(meta, kinds=kinds),
    )


OPENAI = Dialect(
    name="openai",
    emit_request=openai.emit_request,
    parse_response=openai.parse_response,
    emit_response=openai.emit_response,
    stream_parser=openai_stream.StreamParser,
    stream_emitter=openai_stream.StreamEmitter,
    error_body=openai.error_body,
    error_message=openai.error_message,
    serve_paths=(("/chat/completions", GENERATE),),
    serve=_serve_openai,
    serve_count=None,
    count_response=None,
)

GEMINI = Dialect(
    name="gemini",
    emit_request=gemini.emit_request,
    parse_response=gemini.parse_response,
    emit_response=gemini.emit_response,
    stream_parser=gemini.StreamParser,
    stream_emitter=gemini.StreamEmitter,
    error_body=gemini.error_body,
    error_message=gemini.error_message,
    serve_paths=(
        (":generateContent", GENERATE),
        (":streamGenerateContent", GENERATE),
        (":countTokens", COUNT),
    ),
    serve=_serve_gemini,
    serve_count=_count_gemini,
    count_response=gemini.emit_count_response,
)

ANTHROPIC = Dialect(
    name="anthropic",
    emit_request=anthropic.emit_request,
    parse_response=anthropic.parse_response,
    emit_response=anthropic.emit_response,
    stream_parser=anthropic.StreamParser,
    stream_emitter=anthropic.StreamEmitter,
    error_body=anthropic.error_body,
    error_message=anthropic.error_message,
    serve_paths=(("/v1/messages", GENERATE), ("/v1/messages/count_tokens", COUNT)),
    serve=_serve_anthropic,
    serve_count=_count_anthropic,
    count_response=anthropic.emit_count_response,
    drops=PENALTIES,
)

RESPONSES = Dialect(
    name="responses",
    emit_request=responses.emit_request,
    parse_response=responses.parse_response,
    emit_response=responses.emit_response,
    stream_parser=responses.StreamParser,
    stream_emitter=responses.StreamEmitter,
    error_body=responses.error_body,
    error_message=responses.error_message,
    serve_paths=(("/v1/responses", GENERATE),),
    serve=_serve_responses,
    serve_count=None,
    count_response=None,
    drops=PENALTIES,
)

DIALECTS: Mapping[str, Dialect] = {
    "openai": OPENAI,
    "gemini": GEMINI,
    "anthropic": ANTHROPIC,
    "responses": RESPONSES,
}
