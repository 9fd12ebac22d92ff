"""OpenAI Chat Completions requests and responses <-> the neutral model (design §5).

Messages are dispatched on `role`, never on shape: `content` may be a string, a list of
parts or null, and an assistant message may carry `tool_calls` without content. Legacy
`functions` / `function_call` requests and `role: "function"` messages are mapped to
tools. `developer` messages are system messages. Streams: `stream_parser`, `stream_emitter`.

`presence_penalty` / `frequency_penalty` are read and sent (Gemini has them too).
Dropped when converting (no Chat Completions equivalent): Gemini/Anthropic thinking
budgets and `top_k` (the OpenAI API rejects unknown parameters), reasoning and
signatures in the history (Chat Completions takes no reasoning input). `reasoning_effort`
is sent only when asked as such (`Request.effort_source`: a Chat Completions client's own,
or an operator's override), not when derived from another dialect's thinking settings
(Claude Code and Codex ask an effort with every request; models that do not reason
reject the field). Not sent: `json_schema.strict`.

Answers: `refusal` text is the answer's text; a legacy `function_call` is a tool call;
calls without an id get one from the id factory; a missing or unknown finish reason is
"error", which `emit_response` refuses (ConversionError 502), never a stop.

Legacy clients (`functions` declared, no `tools`: `legacy_functions`) get legacy answers:
`message.function_call` and finish reason "function_call" (`ResponseMeta.legacy_functions`).
That form holds one call, so such a request asks the backend for one
(`parallel_tool_calls = False` unless the client said otherwise); should a backend answer
several anyway (Gemini has no such switch), the first is answered and the others dropped,
named by `legacy_dropped` for the log.
"""

from __future__ import annotations

from louter.convert.openai import serve, wire
from louter.convert.openai.request import emit_request, legacy_functions, parse_request
from louter.convert.openai.response import (
    emit_response,
    emit_usage,
    legacy_dropped,
    map_finish,
    parse_response,
    parse_usage,
    usage_of,
)
from louter.convert.openai.stream_emitter import StreamEmitter
from louter.convert.openai.stream_parser import StreamAssembler, StreamParser
from louter.convert.openai.wire import error_body, error_event, error_message
from louter.convert.record import Dialect, body_parser, text_reader
from louter.convert.sse import STREAM_HEADERS

__all__ = [
    "DIALECT",
    "StreamAssembler",
    "StreamEmitter",
    "StreamParser",
    "emit_request",
    "emit_response",
    "emit_usage",
    "error_body",
    "error_event",
    "error_message",
    "legacy_dropped",
    "legacy_functions",
    "map_finish",
    "parse_request",
    "parse_response",
    "parse_usage",
]

DIALECT = Dialect(
    name="openai",
    title="OpenAI",
    parse_request=body_parser(parse_request),
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
    key_query=None,
    auth_headers=wire.bearer_auth,
    usage_of=usage_of,
    text_of=text_reader(parse_response),
    count_request=None,  # Chat Completions has no counting endpoint
    count_response=None,
    read_count=None,
    tool_call_json=wire.tool_call_json,
    serve_paths=serve.PATHS,
    serve=serve.serve,
    serve_count=None,
    ratelimit=wire.RATELIMIT,
)
