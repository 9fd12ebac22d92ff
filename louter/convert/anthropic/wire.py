"""Anthropic Messages wire vocabulary shared by whole responses and streams: stop
reasons, usage and error types (https://docs.anthropic.com/en/api/messages,
https://docs.anthropic.com/en/api/errors).

Decisions
- Stop reasons map through explicit tables. `pause_turn` (a server-tool loop paused) maps
  to "stop": louter sends no server tools, and the turn's content is complete as given.
  An unknown or missing stop reason maps to "error": the API always sends one at the end,
  so its absence is a malformed answer, never reported as a normal stop. Both
  `stop_sequence` and `end_turn` become "stop"; "stop" goes back as `end_turn`.
- Usage: Anthropic's `input_tokens` excludes cache reads and cache writes; the neutral
  `input_tokens` includes both (OpenAI's `prompt_tokens` semantics) and `cached_tokens`
  holds the cache reads. Emitting subtracts the cache reads again; cache writes stay
  folded into `input_tokens` (lossy).
- Error types by HTTP status; an unknown 5xx is `api_error`, an unknown 4xx
  `invalid_request_error`; an unknown error type read back is status 502.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from louter.convert.escape import header_value
from louter.convert.model import ToolCall, Usage
from louter.convert.ratelimit import TIMESTAMP, RateLimits

__all__ = [
    "tool_call_json",
    "COUNT_PATH",
    "KEY_ENV",
    "KEY_HEADERS",
    "PATH",
    "RATELIMIT",
    "STATUS_BY_ERROR_TYPE",
    "UPSTREAM_HEADERS",
    "VERSION",
    "auth_headers",
    "emit_usage",
    "error_body",
    "error_event",
    "error_message",
    "error_type",
    "finish_reason",
    "parse_usage",
    "stop_reason",
    "upstream_path",
]

FINISH_BY_STOP_REASON: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


STOP_REASON_BY_FINISH: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


# https://docs.anthropic.com/en/api/errors
ERROR_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


STATUS_BY_ERROR_TYPE: dict[str, int] = {
    kind: status for status, kind in ERROR_TYPE_BY_STATUS.items()
}


def finish_reason(stop: object) -> str:
    """An Anthropic `stop_reason` -> a neutral finish reason ("error" when unknown or absent)."""
    return FINISH_BY_STOP_REASON.get(stop, "error") if isinstance(stop, str) else "error"


def stop_reason(finish: str) -> str | None:
    """A neutral finish reason -> an Anthropic `stop_reason`; None for "error"."""
    return STOP_REASON_BY_FINISH.get(finish)


def error_type(status: int) -> str:
    """The Anthropic error `type` for an HTTP status."""
    known = ERROR_TYPE_BY_STATUS.get(status)
    if known is not None:
        return known
    return "api_error" if status >= 500 else "invalid_request_error"


def _count(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_usage(raw: Mapping[str, Any]) -> Usage:
    """Anthropic `usage` -> Usage; the neutral input count includes cache reads and writes."""
    cache_read = _count(raw, "cache_read_input_tokens")
    cache_write = _count(raw, "cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=(_count(raw, "input_tokens") or 0) + (cache_read or 0) + cache_write,
        output_tokens=_count(raw, "output_tokens") or 0,
        cached_tokens=cache_read,
    )


def emit_usage(usage: Usage) -> dict[str, int]:
    """Usage -> Anthropic `usage` (`input_tokens` without the cache reads)."""
    cached = usage.cached_tokens
    out = {
        "input_tokens": max(usage.input_tokens - (cached or 0), 0),
        "output_tokens": usage.output_tokens,
    }
    if cached is not None:
        out["cache_read_input_tokens"] = cached
    return out


# --------------------------------------------------------------------------- the wire

PATH = "/v1/messages"
COUNT_PATH = "/v1/messages/count_tokens"
VERSION = b"2023-06-01"
KEY_HEADERS = ("x-api-key", "authorization")
KEY_ENV = "ANTHROPIC_API_KEY"
UPSTREAM_HEADERS = ((b"content-type", b"application/json"), (b"anthropic-version", VERSION))
# anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset};
# resets are RFC 3339 times
RATELIMIT = RateLimits(
    {
        f"{scope}-{part}": f"anthropic-ratelimit-{scope}-{part}".encode("ascii")
        for scope in ("requests", "tokens", "input-tokens", "output-tokens")
        for part in ("limit", "remaining", "reset")
    },
    TIMESTAMP,
)


def upstream_path(model: str, stream: bool) -> str:
    return PATH


def auth_headers(key: str) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"x-api-key", header_value(key, "x-api-key")),)


def error_event(message: str) -> bytes:
    """The in-stream `error` event of a Messages stream."""
    payload = {"type": "error", "error": {"type": error_type(502), "message": message}}
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


_ERROR_MESSAGE_LIMIT = 1000


# --------------------------------------------------------------------------- errors, lists


def error_body(status: int, message: str) -> dict[str, Any]:
    """The Anthropic error envelope for an HTTP status."""
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def error_message(body: bytes) -> str:
    """The message inside an upstream Anthropic error body, else its trimmed raw text."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        error = value.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(value.get("message"), str):
            return str(value["message"])
    return body.decode("utf-8", "replace").strip()[:_ERROR_MESSAGE_LIMIT]


def tool_call_json(call: ToolCall) -> dict[str, Any]:
    """A tool call as a `tool_use` content block."""
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments_object()}
