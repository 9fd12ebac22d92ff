"""Chat Completions as a server reads it (`Dialect.serve`, for the mock backend)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from louter.convert.openai.request import legacy_functions, parse_request
from louter.convert.openai.response import emit_response
from louter.convert.openai.stream_emitter import StreamEmitter
from louter.convert.record import GENERATE, Served
from louter.convert.sse import STREAM_HEADERS

PATHS = (("/chat/completions", GENERATE),)


def serve(path: str, body: Mapping[str, Any]) -> Served:
    """The model and stream flag are in the body; `stream_options.include_usage` asks for
    the usage chunk; legacy `functions` clients are answered with `function_call`."""
    request = parse_request(body)
    return Served(
        request=request,
        id_prefix="",
        emit_response=emit_response,
        stream_emitter=StreamEmitter,
        stream_headers=STREAM_HEADERS,
        include_usage=request.include_usage,
        legacy_functions=legacy_functions(body),
    )
