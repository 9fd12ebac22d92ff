"""OpenAI legacy Completions wire vocabulary (`POST /v1/completions`).

https://platform.openai.com/docs/api-reference/completions, also served by vLLM,
llama-server and older providers. Small and pure: the finish reasons, the usage object,
the error envelope and its in-stream event, and how a backend is addressed.

The envelope is OpenAI's (`{"error": {"message", "type", "param", "code"}}`): the OpenAI
SDK raises it as an `APIError`, and in a stream a `data: {"error": ...}` event, which the
SDK raises too. A Completions answer has no field for tool calls or reasoning and three
finish reasons only (`stop`, `length`, `content_filter`).
"""

from __future__ import annotations

from typing import Any

import orjson

from louter.convert.escape import header_value
from louter.convert.model import ToolCall, Usage
from louter.convert.ratelimit import DURATION, RateLimits
from louter.convert.record import Headers

__all__ = [
    "DROPS",
    "FINISH_IN",
    "FINISH_OUT",
    "KEY_ENV",
    "KEY_HEADERS",
    "OBJECT",
    "PATH",
    "RATELIMIT",
    "UPSTREAM_HEADERS",
    "auth_headers",
    "emit_usage",
    "error_body",
    "error_event",
    "error_message",
    "map_finish",
    "message_of",
    "parse_usage",
    "tool_call_json",
    "upstream_path",
]

PATH = "/v1/completions"
OBJECT = "text_completion"

FINISH_IN = {"stop": "stop", "length": "length", "content_filter": "content_filter"}
FINISH_OUT = FINISH_IN  # the neutral names are the wire names; "tool_calls" has none

# `Request` settings a Completions backend cannot take: dropped, and noted in the log.
# (OpenAI's own API rejects unknown parameters, so `top_k` is not sent either.)
DROPS = ("top_k", "response_format", "reasoning_effort", "reasoning_budget")

KEY_HEADERS = ("authorization",)  # a client key comes as a Bearer token
KEY_ENV = "OPENAI_API_KEY"
UPSTREAM_HEADERS: Headers = ((b"content-type", b"application/json"),)
# OpenAI's headers, x-ratelimit-{limit,remaining,reset}-{requests,tokens}; resets are
# durations ("6m0s")
RATELIMIT = RateLimits(
    {
        f"{scope}-{part}": f"x-ratelimit-{part}-{scope}".encode("ascii")
        for scope in ("requests", "tokens")
        for part in ("limit", "remaining", "reset")
    },
    DURATION,
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_ERROR_LIMIT = 1000  # characters of a non-JSON upstream error body kept as its message


def upstream_path(model: str, stream: bool) -> str:
    """Where a Completions backend is asked, whatever the model or streaming."""
    return PATH


def auth_headers(key: str) -> Headers:
    """A backend key as `Authorization: Bearer` (LouterError 400 for a key that is not
    latin-1 or holds a control character)."""
    return ((b"authorization", b"Bearer " + header_value(key, "authorization")),)


# --------------------------------------------------------------------------- finish, usage


def map_finish(reason: Any) -> str:
    """A Completions finish_reason -> the neutral one; unknown or missing is "error"."""
    return FINISH_IN.get(reason, "error") if isinstance(reason, str) else "error"


def parse_usage(usage: Any) -> Usage | None:
    """A `usage` object -> `Usage` (None when absent); bad counts read as 0/None."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    return Usage(
        input_tokens=_count(usage.get("prompt_tokens")) or 0,
        output_tokens=_count(usage.get("completion_tokens")) or 0,
        cached_tokens=cached,
    )


def _count(value: Any) -> int | None:
    """A token count: a non-negative int (a whole float is tolerated), else None."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def emit_usage(usage: Usage | None) -> dict[str, Any] | None:
    """`Usage` -> the wire object (None stays None). Reasoning tokens have no field."""
    if usage is None:
        return None
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_tokens is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return out


# --------------------------------------------------------------------------- errors


def error_body(status: int, message: str) -> dict[str, Any]:
    """The client envelope for an error of HTTP `status`."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def error_event(message: str, status: int = 502) -> bytes:
    """The in-stream error event of a Completions stream (the OpenAI SDK raises it)."""
    payload = {"error": {"message": message, "type": "upstream_error", "code": status}}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_message(body: bytes) -> str:
    """The message inside an upstream error body (any common envelope), else its text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:_ERROR_LIMIT] or "(empty body)"
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            if data.get(key) is not None:
                return message_of(data[key])
    return body.decode("utf-8", "replace").strip()[:_ERROR_LIMIT]


def message_of(error: Any) -> str:
    """An `error` value (an object with a message, or anything else) as text."""
    if isinstance(error, dict):
        message = error.get("message") or error.get("msg")
        if isinstance(message, str):
            return message
        return orjson.dumps(error).decode()
    return str(error)


def tool_call_json(call: ToolCall) -> dict[str, Any]:
    """A tool call as a Completions model writes one, since the API has no field for it:
    the JSON text `{"name", "arguments"}` that louter's `tool_call_repair` reads back."""
    return {"name": call.name, "arguments": call.arguments_object()}
