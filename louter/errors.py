"""The error tree. Every error louter raises on purpose is a `LouterError`.

    LouterError            base; .status_hint (default 500)
    ├── ConfigError        bad or unknown key, missing backend (CLI exit 2)
    ├── ConversionError    400 when the client's input is bad, 502 when upstream's output is
    └── UpstreamError      transport failure or a bad upstream status (502/504, or upstream's own)

The front doors render any `LouterError` as an error body in their own dialect.
"""

from __future__ import annotations

from typing import Any


class LouterError(Exception):
    """Base class; `status_hint` is the HTTP status a front door should answer with."""

    status_hint: int = 500
    headers: tuple[tuple[bytes, bytes], ...] = ()  # extra response headers (`allow`, ...)
    code: str | None = None  # the envelope's `code` where the dialect has one (OpenAI's)

    def __init__(
        self,
        message: str,
        *,
        status_hint: int | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_hint is not None:
            self.status_hint = status_hint
        if headers:
            self.headers = headers
        if code is not None:
            self.code = code

    def envelope(self, dialect: str, body: dict[str, Any]) -> dict[str, Any]:
        """The error body the client gets: `body` (its dialect's envelope for this error),
        with what this kind of error adds in that dialect (a 429's retry details)."""
        return body


class ConfigError(LouterError):
    """The configuration is invalid; the CLI exits with status 2."""


class ConversionError(LouterError):
    """A body could not be parsed or converted (400 for clients, 502 for upstreams)."""

    status_hint = 400


class UpstreamError(LouterError):
    """The upstream failed: transport error (502), timeout (504), or its own error status."""

    status_hint = 502
