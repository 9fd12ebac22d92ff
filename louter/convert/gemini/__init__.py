"""Gemini generateContent: wire shapes to and from louter's neutral model (design §5).

The dialect's public surface (the contract in `louter.convert.model`), spread over
modules of one responsibility each, where each decision is documented:

    request         parse_request, emit_request, parse_count_request: roles, system
                    instructions, call/response pairing, tools, toolConfig,
                    generationConfig, thinkingConfig
    response        parse_response, emit_response, emit_count_response, model_entry,
                    model_list, usage_of, read_count: finish reasons, usage
    stream_parser   StreamParser: chunk events, the final chunk
    stream_emitter  StreamEmitter: chunk events, framing (SSE or one JSON array)
    wire            paths, key headers, error_body, error_message, error_event
    parts           Part <-> neutral parts, functionResponse.response <-> ToolResult
    schema          Gemini schemas (upper-case types, nullable) -> JSON Schema
    fields          camelCase / snake_case keys, typed reads with error paths
    probe           the probes' Gemini wire (test-runner, diagnostic)

camelCase and snake_case keys are accepted everywhere, as Google's proto-JSON parser does.
"""

from __future__ import annotations

from louter.convert.gemini import serve, wire
from louter.convert.gemini.request import emit_request, parse_count_request, parse_request
from louter.convert.gemini.response import (
    emit_count_response,
    emit_response,
    model_entry,
    model_list,
    parse_response,
    read_count,
    usage_of,
)
from louter.convert.gemini.stream_emitter import StreamEmitter
from louter.convert.gemini.stream_parser import StreamParser
from louter.convert.gemini.wire import error_body, error_event, error_message, model_path
from louter.convert.record import Dialect, text_reader
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
    "model_entry",
    "model_list",
    "model_path",
    "parse_count_request",
    "parse_request",
    "parse_response",
]

DIALECT = Dialect(
    name="gemini",
    title="Gemini",
    parse_request=parse_request,
    emit_request=emit_request,
    parse_response=parse_response,
    emit_response=emit_response,
    stream_parser=StreamParser,
    stream_emitter=StreamEmitter,
    drops=(),
    error_body=wire.error_body,
    error_message=wire.error_message,
    error_event=wire.error_event,
    key_headers=wire.KEY_HEADERS,
    stream_headers=STREAM_HEADERS,
    upstream_path=wire.upstream_path,
    upstream_headers=wire.UPSTREAM_HEADERS,
    key_env=wire.KEY_ENV,
    key_query=wire.KEY_QUERY,
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
    ratelimit=None,  # none documented: the upstream's pass under their own names
)
