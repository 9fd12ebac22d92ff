"""Completions as a server reads it (`Dialect.serve`, for the mock backend)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from louter.convert.completions.request import parse_request
from louter.convert.completions.response import emit_response
from louter.convert.completions.stream_emitter import StreamEmitter
from louter.convert.completions.wire import PATH
from louter.convert.record import GENERATE, Served
from louter.convert.sse import STREAM_HEADERS

PATHS = ((PATH, GENERATE),)


def serve(path: str, body: Mapping[str, Any]) -> Served:
    """The model and stream flag are in the body; `stream_options.include_usage` asks for
    the usage chunk. A prompt written as louter's transcript is read as its conversation,
    so the mock answers a chat client behind a completions backend as it answers any."""
    request = parse_request(body)
    return Served(
        request=request,
        id_prefix="cmpl-",
        emit_response=emit_response,
        stream_emitter=StreamEmitter,
        stream_headers=STREAM_HEADERS,
        include_usage=request.include_usage,
        legacy_functions=False,
    )
