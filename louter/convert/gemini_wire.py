"""Gemini as a client sees it and a backend is addressed: model paths, key headers, the
in-stream error event, the usage reader of a whole answer and the countTokens answer
read back (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from louter.convert.escape import header_value, path_segment
from louter.convert.gemini_response import error_body, read_usage
from louter.convert.model import Usage

__all__ = [
    "KEY_ENV",
    "KEY_HEADERS",
    "KEY_QUERY",
    "UPSTREAM_HEADERS",
    "auth_headers",
    "error_event",
    "model_path",
    "read_count",
    "upstream_path",
    "usage_of",
]

KEY_HEADERS = ("x-goog-api-key", "authorization")  # then `?key=`
KEY_QUERY = "key"
KEY_ENV = "GEMINI_API_KEY"
UPSTREAM_HEADERS = ((b"content-type", b"application/json"),)


def model_path(model: str, action: str | None) -> str:
    """`/v1beta/models/{model}:{action}`, the model escaped as one path segment."""
    return f"/v1beta/models/{path_segment(model)}:{action or 'generateContent'}"


def upstream_path(model: str, stream: bool) -> str:
    return model_path(model, "streamGenerateContent?alt=sse" if stream else None)


def auth_headers(key: str) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"x-goog-api-key", header_value(key, "x-goog-api-key")),)


def error_event(message: str) -> bytes:
    """The in-stream error event of a Gemini SSE stream (its error envelope as data)."""
    return b"data: " + orjson.dumps(error_body(502, message)) + b"\r\n\r\n"


def usage_of(data: Mapping[str, Any]) -> Usage | None:
    return read_usage(data.get("usageMetadata"))


def read_count(data: Mapping[str, Any]) -> int:
    """A countTokens answer's `totalTokens` (0 when absent or not a count)."""
    total = data.get("totalTokens")
    return total if type(total) is int else 0
