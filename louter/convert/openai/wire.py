"""OpenAI Chat Completions as a client sees it and a backend is addressed: finish and
error vocabulary, the error envelope and in-stream error event, paths, key headers, a
tool call's JSON (pure)."""

from __future__ import annotations

from typing import Any

import orjson

from louter.convert.escape import header_value
from louter.convert.model import ToolCall
from louter.convert.ratelimit import DURATION, RateLimits

__all__ = [
    "message_of",
    "tool_call_json",
    "KEY_ENV",
    "KEY_HEADERS",
    "PATH",
    "RATELIMIT",
    "UPSTREAM_HEADERS",
    "bearer_auth",
    "error_event",
    "upstream_path",
]

PATH = "/v1/chat/completions"
KEY_HEADERS = ("authorization",)  # a Bearer token
KEY_ENV = "OPENAI_API_KEY"
UPSTREAM_HEADERS = ((b"content-type", b"application/json"),)
# x-ratelimit-{limit,remaining,reset}-{requests,tokens}; resets are durations ("6m0s")
RATELIMIT = RateLimits(
    {
        f"{scope}-{part}": f"x-ratelimit-{part}-{scope}".encode("ascii")
        for scope in ("requests", "tokens")
        for part in ("limit", "remaining", "reset")
    },
    DURATION,
)


def upstream_path(model: str, stream: bool) -> str:
    return PATH


def bearer_auth(key: str) -> tuple[tuple[bytes, bytes], ...]:
    """A backend key as `Authorization: Bearer` (OpenAI and Responses)."""
    return ((b"authorization", b"Bearer " + header_value(key, "authorization")),)


def error_event(message: str, status: int = 502) -> bytes:
    """The in-stream error event of an OpenAI stream."""
    payload = {"error": {"message": message, "type": "upstream_error", "code": status}}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


FINISH_IN = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


FINISH_OUT = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
              "content_filter": "content_filter"}  # fmt: skip


LEGACY_FINISH = {"tool_calls": "function_call"}  # for `legacy_functions` clients
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


# --------------------------------------------------------------------------- errors


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def error_message(body: bytes) -> str:
    """The message inside an upstream error body (any common envelope), else its text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:1000] or "(empty body)"
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if data.get(key) is not None:
                return message_of(data[key])
    return body.decode("utf-8", "replace").strip()[:1000]


def message_of(error: Any) -> str:
    if isinstance(error, dict):
        message = error.get("message") or error.get("msg")
        if isinstance(message, str):
            return message
        return orjson.dumps(error).decode()
    return str(error)


def tool_call_json(call: ToolCall) -> dict[str, Any]:
    """A tool call as an answer's `tool_calls` entry."""
    function = {"name": call.name, "arguments": call.arguments}
    return {"id": call.id, "type": "function", "function": function}
