"""OpenAI legacy Completions (`POST /v1/completions`), the fifth dialect.

The text-completion API that OpenAI (`gpt-3.5-turbo-instruct`), vLLM, llama-server and
older providers serve: a `prompt` in, a `text` out. Both directions, as for every
dialect:

    a Completions client    parse_request -> neutral -> emit_response / StreamEmitter
    a Completions backend   emit_request (the conversation as one transcript prompt)
                            -> parse_response / StreamParser -> neutral

Modules: `request` (requests, both directions), `transcript` (a conversation as one
prompt and back), `response` (whole answers, usage and text readers), `stream_parser`,
`stream_emitter`, `wire` (finish reasons, usage, error envelope and event, paths and
headers).
"""

from __future__ import annotations

from louter.convert.completions import serve, wire
from louter.convert.completions.request import emit_request, parse_request
from louter.convert.completions.response import emit_response, parse_response, text_of, usage_of
from louter.convert.completions.stream_emitter import StreamEmitter
from louter.convert.completions.stream_parser import StreamParser
from louter.convert.completions.transcript import read_prompt, render_prompt
from louter.convert.completions.wire import PATH, error_body, error_event, error_message
from louter.convert.record import Dialect, body_parser
from louter.convert.sse import STREAM_HEADERS

__all__ = [
    "DIALECT",
    "PATH",
    "StreamEmitter",
    "StreamParser",
    "emit_request",
    "emit_response",
    "error_body",
    "error_event",
    "error_message",
    "parse_request",
    "parse_response",
    "read_prompt",
    "render_prompt",
    "text_of",
    "usage_of",
]

DIALECT = Dialect(
    name="completions",
    title="Completions",
    parse_request=body_parser(parse_request),
    emit_request=emit_request,
    parse_response=parse_response,
    emit_response=emit_response,
    stream_parser=StreamParser,
    stream_emitter=StreamEmitter,
    drops=wire.DROPS,
    error_body=error_body,
    error_message=error_message,
    error_event=error_event,
    key_headers=wire.KEY_HEADERS,
    key_query=None,
    stream_headers=STREAM_HEADERS,
    upstream_path=wire.upstream_path,
    upstream_headers=wire.UPSTREAM_HEADERS,
    auth_headers=wire.auth_headers,
    key_env=wire.KEY_ENV,
    usage_of=usage_of,
    text_of=text_of,
    count_request=None,  # the Completions API has no counting endpoint
    count_response=None,
    read_count=None,
    tool_call_json=wire.tool_call_json,
    serve_paths=serve.PATHS,
    serve=serve.serve,
    serve_count=None,
    ratelimit=wire.RATELIMIT,
)
