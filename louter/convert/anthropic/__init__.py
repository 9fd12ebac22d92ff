"""Anthropic Messages: request and response bodies <-> louter's neutral model.

The dialect surface of `louter.convert.model`: this package's `__all__` and `DIALECT`.

    request         parse_request: a client's body -> Request; emit_request: Request ->
                    a backend's body; parse_count_request
    response        parse_response, emit_response, counts, model_list, usage_of
    stream_parser   StreamParser: backend SSE -> neutral events
    stream_emitter  StreamEmitter: neutral events -> client SSE
    wire            stop reasons, usage, error types, envelopes and events, paths, keys
    probe           the probes' Messages wire (test-runner, diagnostic)

Decisions (responses; requests and streams document theirs)
- `parse_response`: content blocks `text`, `tool_use`, `thinking`, `redacted_thinking`;
  any other block (server tools, citations-only blocks...) raises ConversionError(502)
  rather than vanish. A `tool_use` without an id gets one from the IdFactory.
- `emit_response`: a finish "error" raises ConversionError(502) so the proxy answers
  with an error body: a Messages response has no error stop reason and must never look
  like `end_turn`. `stop_sequence` is always null (the neutral model does not record
  which sequence matched). Reasoning without a signature becomes a `thinking` block
  with `signature: ""` (the SDK types require the key). Empty text parts are left out.
- `error_body` picks the error `type` from the status; `error_message` reads
  `error.message` (or a top-level `message`), else the trimmed raw text.
- `model_list` takes `created_at` as an argument (no clock); the default is the epoch.
"""

from __future__ import annotations

from louter.convert.anthropic import serve, wire
from louter.convert.anthropic.request import emit_request, parse_count_request, parse_request
from louter.convert.anthropic.response import (
    emit_count_response,
    emit_response,
    model_list,
    parse_response,
    read_count,
    usage_of,
)
from louter.convert.anthropic.stream_emitter import StreamEmitter
from louter.convert.anthropic.stream_parser import StreamParser
from louter.convert.anthropic.wire import error_body, error_event, error_message
from louter.convert.record import PENALTIES, Dialect, body_parser, text_reader
from louter.convert.sse import STREAM_HEADERS

__all__ = [
    "DIALECT",
    "StreamEmitter",
    "StreamParser",
    "emit_count_response",
    "emit_request",
    "emit_response",
    "error_body",
    "error_event",
    "error_message",
    "model_list",
    "parse_count_request",
    "parse_request",
    "parse_response",
]

DIALECT = Dialect(
    name="anthropic",
    title="Anthropic",
    parse_request=body_parser(parse_request),
    emit_request=emit_request,
    parse_response=parse_response,
    emit_response=emit_response,
    stream_parser=StreamParser,
    stream_emitter=StreamEmitter,
    drops=PENALTIES,
    error_body=wire.error_body,
    error_message=wire.error_message,
    error_event=wire.error_event,
    key_headers=wire.KEY_HEADERS,
    stream_headers=STREAM_HEADERS,
    upstream_path=wire.upstream_path,
    upstream_headers=wire.UPSTREAM_HEADERS,
    key_env=wire.KEY_ENV,
    key_query=None,
    auth_headers=wire.auth_headers,
    usage_of=usage_of,
    text_of=text_reader(parse_response),
    count_request=parse_count_request,
    count_response=emit_count_response,
    read_count=read_count,
    tool_call_json=wire.tool_call_json,
    serve_paths=serve.PATHS,
    serve=serve.serve,
    serve_count=serve.serve_count,
    ratelimit=wire.RATELIMIT,
)
