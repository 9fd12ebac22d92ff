"""OpenAI Chat Completions as a client sees it and a backend is addressed: paths, key
headers, the in-stream error event and the usage reader of a whole answer (pure)."""

from __future__ import annotations

import orjson

from louter.convert.escape import header_value

__all__ = [
    "KEY_ENV",
    "KEY_HEADERS",
    "PATH",
    "UPSTREAM_HEADERS",
    "bearer_auth",
    "error_event",
    "upstream_path",
]

PATH = "/v1/chat/completions"
KEY_HEADERS = ("authorization",)  # a Bearer token
KEY_ENV = "OPENAI_API_KEY"
UPSTREAM_HEADERS = ((b"content-type", b"application/json"),)


def upstream_path(model: str, stream: bool) -> str:
    return PATH


def bearer_auth(key: str) -> tuple[tuple[bytes, bytes], ...]:
    """A backend key as `Authorization: Bearer` (OpenAI and Responses)."""
    return ((b"authorization", b"Bearer " + header_value(key, "authorization")),)


def error_event(message: str, status: int = 502) -> bytes:
    """The in-stream error event of an OpenAI stream."""
    payload = {"error": {"message": message, "type": "upstream_error", "code": status}}
    return b"data: " + orjson.dumps(payload) + b"\n\n"
