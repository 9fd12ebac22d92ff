"""Per-request state: the request id, timings, and journal entries of one exchange.

Overhead accounting: every wait on an upstream (a response head, a body read, each
stream chunk, a retry's backoff) adds to `upstream_wait`; the rest of the elapsed time
is louter's own (`overhead`, the `x-louter-overhead-ms` header, `louter_overhead_seconds`).
"""

from __future__ import annotations

import itertools
import os
import time
from typing import TYPE_CHECKING, Any

from louter.http.message import HttpRequest
from louter.proxy.journal import Journal, redact_headers, redact_target

if TYPE_CHECKING:
    from louter.http.upstream import UpstreamResponse
    from louter.proxy.pipeline import Call


class RequestIds:
    """Unique, cheap request ids: a random per-process prefix plus a counter."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._counter):08x}"


class Exchange:
    """One client request through louter; writes its journal entries."""

    __slots__ = (
        "request_id",
        "started",
        "endpoint",
        "format",
        "backend",
        "backend_format",
        "model",
        "label",
        "upstream_wait",
        "attempts",
        "logging",
        "call",
        "_journal",
        "_lines",
    )

    def __init__(self, journal: Journal, request_id: str, endpoint: str, dialect: str) -> None:
        self.request_id = request_id
        self.started = time.perf_counter()
        self.endpoint = endpoint
        self.format = dialect
        self.backend: str | None = None
        self.backend_format: str | None = None
        self.model: str | None = None
        self.label = endpoint  # metrics label; the app sets it with model names as {model}
        self.upstream_wait = 0.0  # seconds spent waiting on upstreams (heads, bodies, backoff)
        self.attempts = 0  # upstream requests made
        self.logging = journal.active  # entries are written (else `log` does nothing)
        self.call: Call | None = None  # set when the request went through pipeline stages
        self._journal = journal
        self._lines: list[bytes] = []  # encoded entries not written yet, in pieces

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)

    def overhead(self) -> float:
        """Seconds spent inside louter so far: elapsed time minus upstream waiting."""
        return time.perf_counter() - self.started - self.upstream_wait

    async def read_body(self, response: UpstreamResponse) -> bytes:
        """An upstream answer's whole body; the time it takes counts as upstream wait."""
        started = time.perf_counter()
        try:
            return await response.read()
        finally:
            self.upstream_wait += time.perf_counter() - started

    def overhead_header(self) -> tuple[bytes, bytes]:
        return (b"x-louter-overhead-ms", b"%.3f" % (self.overhead() * 1000))

    def log(
        self,
        direction: str,
        *,
        status: int | None = None,
        payload: Any = None,
        raw_payload: bytes | None = None,
        dialect: str | None = None,
        **extra: Any,
    ) -> None:
        """Record one entry. Entries are written together when the answer is complete
        (`client_response`), after a stream's first chunk, and when the request ends (`flush`)."""
        if not self.logging:
            return
        entry: dict[str, Any] = {
            "request_id": self.request_id,
            "direction": direction,
            "format": dialect or self.format,
            "endpoint": self.endpoint,
            "backend": self.backend,
            "model": self.model,
            "status": status,
            "latency_ms": None if direction.endswith("request") else self.elapsed_ms(),
        }
        if extra:
            entry.update(extra)
        pieces = self._journal.encode(entry, payload=payload, raw_payload=raw_payload)
        if pieces is not None:
            self._lines += pieces
            if direction == "client_response":
                self.flush()

    def flush(self) -> None:
        """Write the entries recorded so far (one system call)."""
        if self._lines:
            self._journal.write_lines(self._lines)
            self._lines = []

    def log_client_request(self, request: HttpRequest, *, valid_json: bool) -> None:
        """The client's request: redacted headers and target, the body as sent."""
        if not self.logging:
            return
        body = request.body
        self.log(
            "client_request",
            raw_payload=(body or None) if valid_json else None,
            payload=None if valid_json else body.decode("utf-8", "replace"),
            method=request.method,
            path=redact_target(request.target.decode("latin-1")),
            headers=redact_headers(request.headers),
        )
