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

from louter.convert.completions.request import emit_request, parse_request
from louter.convert.completions.response import emit_response, parse_response, text_of, usage_of
from louter.convert.completions.stream_emitter import StreamEmitter
from louter.convert.completions.stream_parser import StreamParser
from louter.convert.completions.transcript import read_prompt, render_prompt
from louter.convert.completions.wire import (
    DROPS,
    KEY_ENV,
    KEY_HEADERS,
    PATH,
    STREAM_HEADERS,
    UPSTREAM_HEADERS,
    auth_headers,
    error_body,
    error_event,
    error_message,
    upstream_path,
)

__all__ = [
    "DROPS",
    "KEY_ENV",
    "KEY_HEADERS",
    "PATH",
    "STREAM_HEADERS",
    "UPSTREAM_HEADERS",
    "StreamEmitter",
    "StreamParser",
    "auth_headers",
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
    "upstream_path",
    "usage_of",
]
