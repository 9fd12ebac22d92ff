"""generateContent as a server reads it (`Dialect.serve`, for the mock backend)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from louter.convert.gemini.request import parse_count_request, parse_request
from louter.convert.gemini.response import emit_response
from louter.convert.gemini.stream_emitter import StreamEmitter
from louter.convert.model import Request
from louter.convert.record import COUNT, GENERATE, Headers, Served
from louter.convert.sse import STREAM_HEADERS

PATHS = ((":generateContent", GENERATE), (":streamGenerateContent", GENERATE),
         (":countTokens", COUNT))  # fmt: skip
_JSON_ARRAY: Headers = ((b"content-type", b"application/json"),)  # a stream without ?alt=sse


def target(path: str) -> tuple[str, str, bool]:
    """`/v1beta/models/{model}:{action}?alt=sse` -> (model, action, SSE wanted)."""
    base, _, query = path.partition("?")
    model, _, action = base.split("/models/", 1)[-1].rpartition(":")
    return model, action, "alt=sse" in query


def serve(path: str, body: Mapping[str, Any]) -> Served:
    """The model and the stream flag are in the path; usage is always sent; a stream is
    SSE with `?alt=sse`, else one JSON array."""
    model, action, sse = target(path)
    stream = action == "streamGenerateContent"
    return Served(
        request=parse_request(body, model=model, stream=stream),
        id_prefix="",
        emit_response=emit_response,
        stream_emitter=lambda meta: StreamEmitter(meta, sse=sse),
        stream_headers=STREAM_HEADERS if sse else _JSON_ARRAY,
        include_usage=True,
        legacy_functions=False,
    )


def serve_count(path: str, body: Mapping[str, Any]) -> Request:
    return parse_count_request(body, model=target(path)[0])
