"""`log-parser pairs`: join each exchange's entries by `request_id`.

Concurrent requests interleave their entries in the log, so entries are collected per
`request_id` in a dict of open exchanges; an exchange is complete (and handed out, and
forgotten) when its `client_response` arrives, which the proxy writes last. What is still
open at the end (a client that left mid-stream, a log cut short) comes out of `flush()`
marked incomplete, in order of first appearance. Memory is bounded by the number of
exchanges in flight at once, capped at `max_open`: past it, the oldest open exchange is
handed out incomplete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from louter.logs.query import client_model
from louter.logs.tools import ToolUse, tool_use

Entry = dict[str, Any]

DEFAULT_MAX_OPEN = 100_000


@dataclass(frozen=True, slots=True)
class Pair:
    """The entries of one client request, in log order, split by role."""

    request_id: str
    client_request: Entry | None
    hops: tuple[Entry, ...]  # backend_request / backend_response entries
    errors: tuple[Entry, ...]
    client_response: Entry | None
    others: tuple[Entry, ...] = ()  # directions this version does not know

    @property
    def complete(self) -> bool:
        return self.client_response is not None

    def entries(self) -> Iterator[Entry]:
        """All entries; the request first, the response last."""
        if self.client_request is not None:
            yield self.client_request
        yield from self.hops
        yield from self.errors
        yield from self.others
        if self.client_response is not None:
            yield self.client_response

    def first(self) -> Entry:
        """The entry that best describes the exchange's start."""
        return next(self.entries())

    def tool_uses(self) -> Iterator[ToolUse]:
        for entry in self.entries():
            found = tool_use(entry.get("payload"))
            if found:
                yield found

    def has_tools(self) -> bool:
        return any(True for _ in self.tool_uses())

    def called(self) -> list[str]:
        """Names of the functions the model called in the answer the client got."""
        response = self.client_response
        found = tool_use(response.get("payload")) if response is not None else None
        return [call["function"]["name"] for call in found.calls] if found else []

    def model(self) -> Any:
        """The client's model name: from the response, else the request (for Gemini,
        whose body has none, its path), else the first hop that names one."""
        for entry in (self.client_response, self.client_request, *self.hops):
            model = client_model(entry) if entry is not None else None
            if model not in (None, ""):
                return model
        return None

    def declared(self) -> tuple[str, ...]:
        request = self.client_request
        return tool_use(request.get("payload")).declared if request is not None else ()


@dataclass(slots=True)
class _Open:
    client_request: Entry | None = None
    hops: list[Entry] = field(default_factory=list)
    errors: list[Entry] = field(default_factory=list)
    others: list[Entry] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        direction = entry.get("direction")
        if direction == "client_request" and self.client_request is None:
            self.client_request = entry
        elif direction in ("backend_request", "backend_response"):
            self.hops.append(entry)
        elif direction == "error":
            self.errors.append(entry)
        else:
            self.others.append(entry)

    def close(self, request_id: str, response: Entry | None) -> Pair:
        return Pair(
            request_id,
            self.client_request,
            tuple(self.hops),
            tuple(self.errors),
            response,
            tuple(self.others),
        )


class Pairer:
    """Entries in, complete exchanges out (`feed`), the rest at the end (`flush`)."""

    def __init__(self, max_open: int = DEFAULT_MAX_OPEN) -> None:
        self._open: dict[str, _Open] = {}  # insertion order = order of first appearance
        self._max_open = max_open

    def feed(self, entry: Entry) -> list[Pair]:
        request_id = str(entry.get("request_id") or "")
        if entry.get("direction") == "client_response":
            pending = self._open.pop(request_id, None) or _Open()
            return [pending.close(request_id, entry)]
        out: list[Pair] = []
        accumulator = self._open.get(request_id)
        if accumulator is None:
            if len(self._open) >= self._max_open:
                oldest = next(iter(self._open))
                out.append(self._open.pop(oldest).close(oldest, None))
            accumulator = self._open[request_id] = _Open()
        accumulator.add(entry)
        return out

    def flush(self) -> list[Pair]:
        out = [pending.close(request_id, None) for request_id, pending in self._open.items()]
        self._open.clear()
        return out


def pair_entries(entries: Iterable[Entry], max_open: int = DEFAULT_MAX_OPEN) -> Iterator[Pair]:
    """Every exchange of `entries`: complete ones as their response arrives, then the rest."""
    pairer = Pairer(max_open)
    for entry in entries:
        yield from pairer.feed(entry)
    yield from pairer.flush()


def select_pairs(
    exchanges: Iterable[Pair],
    matches: Callable[[Entry], bool],
    *,
    functions_only: bool = False,
) -> Iterator[Pair]:
    """Exchanges with at least one entry that `matches` (and, if asked, that use tools)."""
    for exchange in exchanges:
        if not any(matches(entry) for entry in exchange.entries()):
            continue
        if functions_only and not exchange.has_tools():
            continue
        yield exchange


def to_dict(exchange: Pair) -> dict[str, Any]:
    """The JSON shape of `log-parser pairs`: a summary, then the entries themselves.

    `request` and `response` repeat `client_request` and `client_response` under the
    names the original louter's tutorials query (`select(.request.endpoint | ...)`);
    without a client request entry (an unknown path), `request` is the first entry there
    is, so `.request.endpoint` is always there."""
    first = exchange.first()
    last = exchange.client_response or first
    backend = next((h.get("backend") for h in exchange.hops if h.get("backend")), None)
    return {
        "request_id": exchange.request_id,
        "timestamp": first.get("timestamp"),
        "endpoint": first.get("endpoint"),
        "format": first.get("format"),
        "backend": backend or last.get("backend"),
        "model": exchange.model(),
        "status": last.get("status") if exchange.complete else None,
        "latency_ms": last.get("latency_ms") if exchange.complete else None,
        "stream": bool(last.get("stream")),
        "complete": exchange.complete,
        "tools_declared": list(exchange.declared()),
        "tool_calls": exchange.called(),
        "client_request": exchange.client_request,
        "hops": list(exchange.hops),
        "errors": list(exchange.errors),
        "client_response": exchange.client_response,
        "request": first,
        "response": exchange.client_response,
    }
