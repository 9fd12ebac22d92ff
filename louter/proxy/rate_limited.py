"""The 429 every rate limit and budget answers with (`RateLimited`), apart from the limits
themselves (`limits.py`, imported only when `[limits]` is configured): the attempt loop
raises it for backends at their limits, the app renders it in the client's dialect."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from louter.errors import LouterError


class RateLimited(LouterError):
    """A 429 with `retry-after` (whole seconds, rounded up) and `retry-after-ms`; its
    error body gets the dialect's own rate-limit details (`envelope`)."""

    status_hint = 429

    def __init__(self, message: str, retry_after: float) -> None:
        seconds = max(1, int(-(-retry_after // 1)))
        headers = (
            (b"retry-after", str(seconds).encode()),
            (b"retry-after-ms", str(max(1, round(retry_after * 1000))).encode()),
        )
        super().__init__(message, headers=headers)
        self.retry_after = retry_after

    def envelope(self, dialect: str, body: dict[str, Any]) -> dict[str, Any]:
        """`body` (the dialect's error envelope) with its rate-limit details."""
        detail = DETAILS.get(dialect)
        return detail(body, self.retry_after) if detail is not None else body


def _openai_code(body: dict[str, Any], retry_after: float) -> dict[str, Any]:
    return {**body, "error": {**body["error"], "code": "rate_limit_exceeded"}}


def _retry_info(body: dict[str, Any], retry_after: float) -> dict[str, Any]:
    info = {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": f"{retry_after:.3f}s",
    }
    return {**body, "error": {**body["error"], "details": [info]}}


DETAILS: Mapping[str, Callable[[dict[str, Any], float], dict[str, Any]]] = {
    "openai": _openai_code,
    "responses": _openai_code,
    "gemini": _retry_info,
}


def too_many(message: str, retry_after: float) -> RateLimited:
    return RateLimited(message, retry_after)
