"""Gemini as a client sees it and a backend is addressed: model paths, key headers, the
error envelope, message reader and in-stream error event, a tool call's JSON (pure)."""

from __future__ import annotations

from typing import Any

import orjson

from louter.convert.escape import header_value, path_segment
from louter.convert.model import ToolCall

__all__ = [
    "message_in",
    "tool_call_json",
    "KEY_ENV",
    "KEY_HEADERS",
    "KEY_QUERY",
    "UPSTREAM_HEADERS",
    "auth_headers",
    "error_event",
    "model_path",
    "upstream_path",
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


# --------------------------------------------------------------------------- errors

_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


_CLASS_STATUSES = {4: "INVALID_ARGUMENT", 5: "INTERNAL"}


def error_body(status: int, message: str) -> dict[str, Any]:
    """Gemini's error envelope: `{"error": {"code", "message", "status"}}`."""
    name = _STATUSES.get(status) or _CLASS_STATUSES.get(status // 100, "UNKNOWN")
    return {"error": {"code": status, "message": message, "status": name}}


def error_message(body: bytes) -> str:
    """The message inside an upstream error body: Gemini's envelope (also inside the JSON
    array of a non-SSE stream), `{"error": "text"}`, or `{"message": ...}`; otherwise the
    raw body, stripped and cut to 500 characters."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    message = message_in(value)
    if message:
        return message
    raw = body.decode("utf-8", "replace").strip()
    return raw if len(raw) <= 500 else raw[:500] + "..."


def message_in(value: Any) -> str | None:
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, dict):
        return None
    error = value.get("error", value)
    if isinstance(error, str):
        return error or None
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
    return None


def tool_call_json(call: ToolCall) -> dict[str, Any]:
    """A tool call as a `functionCall` part (without the id Google's API leaves out)."""
    return {"functionCall": {"name": call.name, "args": call.arguments_object()}}
