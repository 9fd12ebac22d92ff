"""The `Dialect` record: every per-dialect fact in one place, and `DIALECTS` by name.

The proxy, the mock, the probes and the CLI look a dialect up here and call the same
functions whatever it is (dict dispatch, no provider ladders); every other per-dialect
table is derived from `DIALECTS`. The record has no field defaults, so a dialect that
forgets a fact fails when it is built, and `tests/convert/test_dialect.py` exercises
every capability of every dialect.

As a server (`serve_paths`, `serve`): which path suffixes are the dialect's generate and
count endpoints, and how one request is read there (the model and stream flag where the
dialect puts them) and answered (id prefix, usage chunk, legacy `function_call`,
Responses tool kinds, Gemini's SSE or JSON-array stream). The mock backend answers every
dialect through these alone (`louter.mock.responder`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from louter.convert import (
    anthropic,
    anthropic_probe,
    anthropic_request,
    anthropic_wire,
    gemini,
    gemini_probe,
    gemini_wire,
    openai,
    openai_probe,
    openai_stream,
    openai_wire,
    responses,
    responses_wire,
)
from louter.convert.model import IdFactory, Request, Response, ResponseMeta, StreamEvent, Usage
from louter.convert.probe.model import Wire
from louter.convert.sse import STREAM_HEADERS, SSEEvent

Headers = tuple[tuple[bytes, bytes], ...]


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
    # probes (test-runner, diagnostic)
    probe_wire: Wire | None  # None only until the dialect has a probe wire
    # as a server (the mock): endpoint path suffixes (query excluded) -> GENERATE or
    # COUNT, in the order they are tried; (path, body) -> the request read at one, the
    # count request for a COUNT endpoint (None: the dialect has none)
    serve_paths: tuple[tuple[str, str], ...]
    serve: Callable[[str, Mapping[str, Any]], Served]
    serve_count: Callable[[str, Mapping[str, Any]], Request] | None

    def dropped(self, request: Request) -> list[str]:
        """The settings of `request` that `emit_request` leaves out for want of a field."""
        return [name for name in self.drops if getattr(request, name) is not None]


PENALTIES = ("presence_penalty", "frequency_penalty")  # OpenAI and Gemini only


def _text_of(
    parse: Callable[[Mapping[str, Any], IdFactory], Response],
) -> Callable[[Mapping[str, Any]], str]:
    def text_of(data: Mapping[str, Any]) -> str:
        """The answer's text and tool-call arguments ("" when it does not parse)."""
        answer = parse(data, lambda n: f"call_{n}")
        return answer.text() + "".join(call.arguments for call in answer.tool_calls())

    return text_of


def _body_only(parse: Callable[[Mapping[str, Any]], Request]) -> Callable[..., Request]:
    """A parser whose model and stream flag are in the body itself."""

    def parse_request(body: Mapping[str, Any], *, model: str = "", stream: bool = False) -> Request:
        return parse(body)

    return parse_request


def _serve_openai(path: str, body: Mapping[str, Any]) -> Served:
    request = openai.parse_request(body)
    return Served(
        request=request,
        id_prefix="",
        emit_response=openai.emit_response,
        stream_emitter=openai_stream.StreamEmitter,
        stream_headers=STREAM_HEADERS,
        include_usage=request.include_usage,
        legacy_functions=openai.legacy_functions(body),
    )


_JSON_ARRAY: Headers = ((b"content-type", b"application/json"),)  # Gemini without ?alt=sse


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
        stream_headers=STREAM_HEADERS if sse else _JSON_ARRAY,
        include_usage=True,
        legacy_functions=False,
    )


def _count_gemini(path: str, body: Mapping[str, Any]) -> Request:
    return gemini.parse_count_request(body, model=gemini_target(path)[0])


def _serve_anthropic(path: str, body: Mapping[str, Any]) -> Served:
    return Served(
        request=anthropic.parse_request(body),
        id_prefix="msg_",
        emit_response=anthropic.emit_response,
        stream_emitter=anthropic.StreamEmitter,
        stream_headers=STREAM_HEADERS,
        include_usage=False,
        legacy_functions=False,
    )


def _count_anthropic(path: str, body: Mapping[str, Any]) -> Request:
    return anthropic_request.parse_count_request(body, model="")


def _serve_responses(path: str, body: Mapping[str, Any]) -> Served:
    kinds = responses.tool_kinds(body)
    return Served(
        request=responses.parse_request(body),
        id_prefix="resp_",
        emit_response=lambda response, meta: responses.emit_response(response, meta, kinds),
        stream_emitter=lambda meta: responses.StreamEmitter(meta, kinds=kinds),
        stream_headers=STREAM_HEADERS,
        include_usage=False,
        legacy_functions=False,
    )


def _openai_usage(data: Mapping[str, Any]) -> Usage | None:
    return openai.parse_usage(data.get("usage"))


OPENAI = Dialect(
    name="openai",
    parse_request=_body_only(openai.parse_request),
    emit_request=openai.emit_request,
    parse_response=openai.parse_response,
    emit_response=openai.emit_response,
    stream_parser=openai_stream.StreamParser,
    stream_emitter=openai_stream.StreamEmitter,
    drops=(),
    error_body=openai.error_body,
    error_message=openai.error_message,
    error_event=openai_wire.error_event,
    key_headers=openai_wire.KEY_HEADERS,
    key_query=None,
    stream_headers=STREAM_HEADERS,
    upstream_path=openai_wire.upstream_path,
    upstream_headers=openai_wire.UPSTREAM_HEADERS,
    auth_headers=openai_wire.bearer_auth,
    key_env=openai_wire.KEY_ENV,
    usage_of=_openai_usage,
    text_of=_text_of(openai.parse_response),
    count_request=None,  # Chat Completions has no counting endpoint
    count_response=None,
    read_count=None,
    probe_wire=openai_probe.WIRE,
    serve_paths=(("/chat/completions", GENERATE),),
    serve=_serve_openai,
    serve_count=None,
)

GEMINI = Dialect(
    name="gemini",
    parse_request=gemini.parse_request,
    emit_request=gemini.emit_request,
    parse_response=gemini.parse_response,
    emit_response=gemini.emit_response,
    stream_parser=gemini.StreamParser,
    stream_emitter=gemini.StreamEmitter,
    drops=(),
    error_body=gemini.error_body,
    error_message=gemini.error_message,
    error_event=gemini_wire.error_event,
    key_headers=gemini_wire.KEY_HEADERS,
    key_query=gemini_wire.KEY_QUERY,
    stream_headers=STREAM_HEADERS,
    upstream_path=gemini_wire.upstream_path,
    upstream_headers=gemini_wire.UPSTREAM_HEADERS,
    auth_headers=gemini_wire.auth_headers,
    key_env=gemini_wire.KEY_ENV,
    usage_of=gemini_wire.usage_of,
    text_of=_text_of(gemini.parse_response),
    count_request=gemini.parse_count_request,
    count_response=gemini.emit_count_response,
    read_count=gemini_wire.read_count,
    probe_wire=gemini_probe.WIRE,
    serve_paths=(
        (":generateContent", GENERATE),
        (":streamGenerateContent", GENERATE),
        (":countTokens", COUNT),
    ),
    serve=_serve_gemini,
    serve_count=_count_gemini,
)

ANTHROPIC = Dialect(
    name="anthropic",
    parse_request=_body_only(anthropic.parse_request),
    emit_request=anthropic.emit_request,
    parse_response=anthropic.parse_response,
    emit_response=anthropic.emit_response,
    stream_parser=anthropic.StreamParser,
    stream_emitter=anthropic.StreamEmitter,
    drops=PENALTIES,
    error_body=anthropic.error_body,
    error_message=anthropic.error_message,
    error_event=anthropic_wire.error_event,
    key_headers=anthropic_wire.KEY_HEADERS,
    key_query=None,
    stream_headers=STREAM_HEADERS,
    upstream_path=anthropic_wire.upstream_path,
    upstream_headers=anthropic_wire.UPSTREAM_HEADERS,
    auth_headers=anthropic_wire.auth_headers,
    key_env=anthropic_wire.KEY_ENV,
    usage_of=anthropic_wire.usage_of,
    text_of=_text_of(anthropic.parse_response),
    count_request=anthropic_request.parse_count_request,
    count_response=anthropic.emit_count_response,
    read_count=anthropic_wire.read_count,
    probe_wire=anthropic_probe.WIRE,
    serve_paths=(("/v1/messages", GENERATE), ("/v1/messages/count_tokens", COUNT)),
    serve=_serve_anthropic,
    serve_count=_count_anthropic,
)

RESPONSES = Dialect(
    name="responses",
    parse_request=_body_only(responses.parse_request),
    emit_request=responses.emit_request,
    parse_response=responses.parse_response,
    emit_response=responses.emit_response,
    stream_parser=responses.StreamParser,
    stream_emitter=responses.StreamEmitter,
    drops=PENALTIES,
    error_body=responses.error_body,
    error_message=responses.error_message,
    error_event=responses_wire.error_event,
    key_headers=responses_wire.KEY_HEADERS,
    key_query=None,
    stream_headers=STREAM_HEADERS,
    upstream_path=responses_wire.upstream_path,
    upstream_headers=responses_wire.UPSTREAM_HEADERS,
    auth_headers=openai_wire.bearer_auth,
    key_env=responses_wire.KEY_ENV,
    usage_of=responses_wire.usage_of,
    text_of=_text_of(responses.parse_response),
    count_request=None,  # louter's Responses door has no counting endpoint
    count_response=None,
    read_count=None,
    probe_wire=None,
    serve_paths=(("/v1/responses", GENERATE),),
    serve=_serve_responses,
    serve_count=None,
)

DIALECTS: Mapping[str, Dialect] = {d.name: d for d in (OPENAI, GEMINI, ANTHROPIC, RESPONSES)}
