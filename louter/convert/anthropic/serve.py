"""Messages as a server reads it (`Dialect.serve`, for the mock backend)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from louter.convert.anthropic.request import parse_count_request, parse_request
from louter.convert.anthropic.response import emit_response
from louter.convert.anthropic.stream_emitter import StreamEmitter
from louter.convert.model import Request
from louter.convert.record import COUNT, GENERATE, Served
from louter.convert.sse import STREAM_HEADERS

PATHS = (("/v1/messages", GENERATE), ("/v1/messages/count_tokens", COUNT))


def serve(path: str, body: Mapping[str, Any]) -> Served:
    """The model and stream flag are in the body; message ids start with `msg_`."""
    return Served(
        request=parse_request(body),
        id_prefix="msg_",
        emit_response=emit_response,
        stream_emitter=StreamEmitter,
        stream_headers=STREAM_HEADERS,
        include_usage=False,
        legacy_functions=False,
    )


def serve_count(path: str, body: Mapping[str, Any]) -> Request:
    return parse_count_request(body, model="")  # the model is in the body
