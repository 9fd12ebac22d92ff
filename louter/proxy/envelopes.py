"""Error bodies in each front door's own dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(status: int, message: str) -> dict[str, Any]:
    kind = OPENAI_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


ENVELOPES: dict[str, Callable[[int, str], dict[str, Any]]] = {"openai": openai_error}


def error_body(dialect: str, status: int, message: str) -> dict[str, Any]:
    return ENVELOPES[dialect](status, message)
