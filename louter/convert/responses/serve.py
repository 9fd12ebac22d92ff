"""Responses as a server reads it (`Dialect.serve`, for the mock backend)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from louter.convert.record import GENERATE, Served
from louter.convert.responses.request import parse_request
from louter.convert.responses.response import emit_response
from louter.convert.responses.stream_emitter import StreamEmitter
from louter.convert.responses.tools import tool_kinds
from louter.convert.sse import STREAM_HEADERS

PATHS = (("/v1/responses", GENERATE),)


def serve(path: str, body: Mapping[str, Any]) -> Served:
    """The model and stream flag are in the body; response ids start with `resp_`; custom
    and namespaced tools are answered as the client declared them (`tool_kinds`)."""
    kinds = tool_kinds(body)
    return Served(
        request=parse_request(body),
        id_prefix="resp_",
        emit_response=lambda response, meta: emit_response(response, meta, kinds),
        stream_emitter=lambda meta: StreamEmitter(meta, kinds=kinds),
        stream_headers=STREAM_HEADERS,
        include_usage=False,
        legacy_functions=False,
    )
