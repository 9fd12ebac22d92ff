"""Per-request state: the request id, timings, and journal entries of one exchange.

Overhead accounting: every wait on an upstream (a response head, a body read, each
stream chunk, a retry's backoff) adds to `upstream_wait`; the rest of the elapsed time
is louter's own (`overhead`, the `x-louter-overhead-ms` header, `louter_overhead_seconds`).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from louter.config import Performance
from louter.errors import UpstreamError
from louter.http.message import HeaderList, HttpRequest
from louter.proxy.journal import Journal, redact_headers, redact_target

if TYPE_CHECKING:
    from louter.access import ClientKey
    from louter.http.upstream import UpstreamResponse
    from louter.proxy.accounting.stage import Meter
    from louter.proxy.pipeline import Call

T = TypeVar("T")


def content_length(headers: HeaderList) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _too_large(limit: int, seen: str) -> UpstreamError:
    return UpstreamError(
        f"upstream answer larger than max_response_bytes = {limit} ({seen})", status_hint=502
    )


async def _read_capped(response: UpstreamResponse, limit: int, idle_timeout: float) -> bytes:
    """A body of unknown length, refused once it passes `limit` bytes."""
    parts: list[bytes] = []
    size = 0
    async with aclosing(response.chunks()) as chunks:
        while True:
            with trio.move_on_after(idle_timeout) as scope:
                chunk = await anext(chunks, None)
            if scope.cancelled_caught:
                await response.aclose()
                raise UpstreamError(
                    f"no data for {idle_timeout:g}s in the middle of the answer", status_hint=504
                )
            if chunk is None:
                return parts[0] if len(parts) == 1 else b"".join(parts)
            size += len(chunk)
            if size > limit:
                await response.aclose()
                raise _too_large(limit, f"more than {limit} bytes received")
            parts.append(chunk)


class RequestIds:
    """Unique, cheap request ids: a random per-process prefix plus a counter."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._counter):08x}"


def _default(name: str) -> int:
    """The default of `[performance]`'s `name`."""
    value = Performance.__dataclass_fields__[name].default
    assert isinstance(value, int)
    return value


@dataclass(frozen=True, slots=True)
class Budgets:
    """Per-request size limits (from `[performance]`), built once per server."""

    max_response: int = _default("max_response_bytes")
    log_text: int = _default("log_max_text_chars")
    idle_timeout: float = 300.0  # silence allowed between two pieces of a body
    offload: int = _default("offload_bytes")

    @classmethod
    def of(cls, performance: Performance) -> Budgets:
        return cls(
            performance.max_response_bytes,
            performance.log_max_text_chars,
            performance.stream_idle_timeout_seconds,
            performance.offload_bytes,
        )


DEFAULT_BUDGETS = Budgets()
_REQUESTS = frozenset({"client_request", "backend_request"})  # entries without a latency


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
        "budgets",
        "offload",
        "call",
        "key",
        "usage",
        "reply_headers",
        "reply_head",
        "meter",
        "session",
        "commands",
        "_journal",
        "_lines",
    )

    def __init__(
        self,
        journal: Journal,
        request_id: str,
        endpoint: str,
        dialect: str,
        budgets: Budgets = DEFAULT_BUDGETS,
    ) -> None:
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
        self.budgets = budgets
        self.offload = False  # the request is large: its work runs `in_thread`
        self.call: Call | None = None  # set when the request went through pipeline stages
        self.key: ClientKey | None = None  # the client's louter key, once auth admitted it
        self.usage: tuple[int, int] | None = None  # (input, output) of a complete answer
        self.reply_headers: tuple[tuple[bytes, bytes], ...] = ()  # a stage's, on the answer
        self.reply_head = b""  # a stage's header lines, already encoded (the rate limits')
        self.meter: Meter | None = None  # usage accounting's, when configured
        self.session: str | None = None  # the session's id (`sessions/names.py`)
        self.commands: list[dict[str, str]] | None = None  # in-chat commands seen, outcomes
        self._journal = journal
        self._lines: list[bytes] = []  # encoded entries not written yet, in pieces

    def elapsed_ms(self) -> float:
        """Milliseconds since the request arrived, to the microsecond (as `round(x, 3)`,
        for half the instructions)."""
        return int((time.perf_counter() - self.started) * 1e6 + 0.5) / 1000

    def overhead(self) -> float:
        """Seconds spent inside louter so far: elapsed time minus upstream waiting."""
        return time.perf_counter() - self.started - self.upstream_wait

    async def read_body(self, response: UpstreamResponse) -> bytes:
        """An upstream answer's whole body; the time it takes counts as upstream wait.

        A body larger than `max_response_bytes` is not read: its connection is closed
        (never reused) and the answer is a 502 `UpstreamError` naming the limit. A body
        of announced length within the limit is read at once; one of unknown length
        (chunked, or ended by the close) piece by piece, counted as it comes."""
        started = time.perf_counter()
        limit = self.budgets.max_response
        try:
            length = content_length(response.headers)
            if length is not None and length <= limit:
                return await response.read()
            if length is not None:
                await response.aclose()
                raise _too_large(limit, f"{length} bytes announced")
            return await _read_capped(response, limit, self.budgets.idle_timeout)
        finally:
            self.upstream_wait += time.perf_counter() - started

    async def in_thread(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a worker thread, for a large request (`offload`: its callers run
        a small one's work inline, without a coroutine) so that parsing and converting it
        does not stall every other client. The thread takes the GIL in slices (orjson
        calls in one), so the event loop keeps running."""
        return await trio.to_thread.run_sync(work, *args)

    async def compute_for(self, size: int, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` on data of `size` bytes (an upstream answer): in a worker thread
        when it is larger than `offload_bytes`, as `in_thread`."""
        if size <= self.budgets.offload:
            return work(*args)
        return await trio.to_thread.run_sync(work, *args)

    def overhead_header(self) -> bytes:
        """The `x-louter-overhead-ms` header line (`Responder.stamp`)."""
        return b"x-louter-overhead-ms: %.3f\r\n" % (self.overhead() * 1000)

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
            "latency_ms": None if direction in _REQUESTS else self.elapsed_ms(),
        }
        if self.session is not None:
            entry["session"] = self.session
            if self.commands is not None:
                entry["commands"] = self.commands
        if extra:
            entry.update(extra)
        pieces = self._journal.line(entry, payload, raw_payload)
        if pieces is not None:
            self._lines += pieces
            if direction == "client_response":
                self.flush()

    def flush(self) -> None:
        """Hand the entries recorded so far to the journal (written together)."""
        if self._lines:
            self._journal.write_lines(self._lines)
            self._lines = []

    def log_client_request(self, request: HttpRequest, *, valid_json: bool) -> None:
        """The client's request: redacted headers and target, the body as sent."""
        if not self.logging:
            return
        body = request.body
        named: dict[str, Any] = {"key": self.key.name} if self.key is not None else {}
        self.log(
            "client_request",
            raw_payload=(body or None) if valid_json else None,
            payload=None if valid_json else body.decode("utf-8", "replace"),
            method=request.method,
            path=redact_target(request.target.decode("latin-1")),
            headers=redact_headers(request.headers),
            **named,
        )
