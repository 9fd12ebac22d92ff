"""OpenAI Responses API (`/v1/responses`): bodies and streams <-> the neutral model.

The dialect surface of `louter.convert.model`: this package's `__all__` and `DIALECT`.

    request         parse_request: a client's body -> Request; emit_request: Request ->
                    a Responses backend's body
    tools           tool_kinds: which neutral tools are custom / namespaced
    items           output items as the stream writer builds them
    response        parse_response, emit_response, usage_of
    stream_parser   StreamParser: backend SSE -> neutral events
    stream_emitter  StreamEmitter: neutral events -> client SSE (and whole answers)
    wire            tool kinds, statuses, usage, ids, errors, paths and keys
    probe           the probes' Responses wire (test-runner, diagnostic)

Custom and namespace tools have no neutral form: `parse_request` flattens them into
function tools, and `tool_kinds(body)` tells the emitters how to write the calls back
(`StreamEmitter(meta, kinds=...)`, `emit_response(response, meta, kinds=...)`; both
default to "every call is a plain function call", so the two-argument forms fit the
generic dialect table). Louter keeps no state: `previous_response_id` is a 400.

Decisions (whole answers; requests and streams document theirs)
- `parse_response`: output items `message` (`output_text`, `refusal`), `function_call`,
  `custom_tool_call`, `reasoning`; any other item (a hosted tool's call) raises
  ConversionError(502) rather than vanish. `status` completed / incomplete gives the
  finish reason (see `wire.finish_of`); a failed response raises
  ConversionError(502) with its error message, as does any other status. A call
  without a `call_id` gets one from the IdFactory.
- `emit_response` is the stream writer run over the answer's events, so a whole answer
  is exactly the `response` of the stream's `response.completed` (items, ids, usage,
  `status: "incomplete"` for length / content_filter). A finish "error" raises
  ConversionError(502), so the door answers with an error status and envelope: a
  `status: "failed"` object with HTTP 200 would reach SDK callers as a normal response.
- `error_body` is OpenAI's `{"error": {message, type, param, code}}`; `error_message`
  reads `error.message` (or `message`, `detail`), else the trimmed raw text.
"""

from __future__ import annotations

from louter.convert.openai.wire import RATELIMIT, bearer_auth
from louter.convert.record import PENALTIES, Dialect, body_parser, text_reader
from louter.convert.responses import serve, wire
from louter.convert.responses.request import emit_request, parse_request
from louter.convert.responses.response import emit_response, parse_response, usage_of
from louter.convert.responses.stream_emitter import StreamEmitter
from louter.convert.responses.stream_parser import StreamParser
from louter.convert.responses.tools import tool_kinds
from louter.convert.responses.wire import (
    FUNCTIONS,
    NAMESPACE_SEPARATOR,
    ToolKinds,
    WireTool,
    error_body,
    error_event,
    error_message,
)
from louter.convert.sse import STREAM_HEADERS

__all__ = [
    "DIALECT",
    "FUNCTIONS",
    "NAMESPACE_SEPARATOR",
    "StreamEmitter",
    "StreamParser",
    "ToolKinds",
    "WireTool",
    "emit_request",
    "emit_response",
    "error_body",
    "error_event",
    "error_message",
    "parse_request",
    "parse_response",
    "tool_kinds",
]

DIALECT = Dialect(
    name="responses",
    title="Responses",
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
    auth_headers=bearer_auth,
    usage_of=usage_of,
    text_of=text_reader(parse_response),
    count_request=None,  # louter's Responses door has no counting endpoint
    count_response=None,
    read_count=None,
    tool_call_json=wire.tool_call_json,
    serve_paths=serve.PATHS,
    serve=serve.serve,
    serve_count=None,
    ratelimit=RATELIMIT,
)
