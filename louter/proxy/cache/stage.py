"""The response cache as a pipeline stage (after the processors, design §12).

`on_request` reads the request's controls, computes the key for the first candidate
backend (`call.candidates`: the door then tries the same list) and, on a hit, answers
with the stored neutral answer (the door sends it in the client's dialect, whole or as a
real stream: `louter/proxy/local.py`). On a miss a recorder (`Stage.record`) gets the
complete answer: a same-dialect answer still passes through as bytes, its neutral form
read once at the end from what is parsed for the log anyway (`louter/proxy/recording.py`);
`after` stores it once the exchange is over, under the key of the backend that answered,
if it is complete and sound (status 200, a normal finish, tool calls with JSON-object
arguments, no tool-call text left unparsed, not empty, within `max_entry_bytes`).

Controls (`x-louter-cache` wins over the config; `no-store` over everything):

    x-louter-cache: use | bypass | refresh      refresh = do not read, store the answer
    Cache-Control: no-store                     neither read nor store
    Cache-Control: no-cache                     refresh
    Cache-Control: max-age=N                    serve only an entry at most N seconds old

Answers carry `x-louter-cache: HIT | MISS | BYPASS` (and `age` on a hit). A store that
does not answer means BYPASS, never a failed request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from louter.convert.model import Response, arguments_object
from louter.errors import ConversionError, LouterError
from louter.proxy.bridge import TEXT_CALL_CHECKS, needs_tool_stage
from louter.proxy.cache.codec import decode, encode
from louter.proxy.cache.key import cache_key
from louter.proxy.pipeline import Call, Stage
from louter.proxy.store.types import StoreError

if TYPE_CHECKING:
    from louter.config import Backend, CacheConfig
    from louter.proxy.cache.entries import Entries
    from louter.proxy.routing import Router

USE, BYPASS, REFRESH = "use", "bypass", "refresh"
MODES = (USE, BYPASS, REFRESH)
HEADER = "x-louter-cache"
STORED_FINISHES = frozenset({"stop", "length", "tool_calls", "content_filter"})


def controls(headers: dict[str, str], enabled: bool) -> tuple[str, float | None]:
    """(mode, max_age) from the request's headers; 400 for an unknown x-louter-cache."""
    mode = USE if enabled else BYPASS
    asked = headers.get(HEADER)
    if asked is not None:
        mode = asked.strip().lower()
        if mode not in MODES:
            raise LouterError(
                f"{HEADER} must be one of {', '.join(MODES)}, got {asked[:40]!r}",
                status_hint=400,
                code="invalid_request",
            )
    max_age = None
    for directive in headers.get("cache-control", "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "no-store":
            return BYPASS, None
        if name == "no-cache" and mode == USE:
            mode = REFRESH
        elif name == "max-age" and value.strip().isdigit():
            max_age = float(value.strip())
    return mode, max_age


class CacheCounts:
    """The cache's metrics; `collect` is called by `Metrics` when scraped."""

    __slots__ = ("hits", "misses", "bypasses", "stored", "entries")

    def __init__(self, entries: Entries) -> None:
        self.hits = 0
        self.misses = 0
        self.bypasses = 0
        self.stored = 0
        self.entries = entries

    def collect(self) -> Iterator[Metric]:
        yield _counter("cache_hits", "Requests answered from the response cache", self.hits)
        yield _counter("cache_misses", "Cache lookups that went upstream", self.misses)
        yield _counter("cache_bypasses", "Requests that did not use the cache", self.bypasses)
        size = self.entries.stats()["size_bytes"]
        if size is not None:
            yield GaugeMetricFamily("cache_bytes", "Bytes held by the in-process cache", size)


def _counter(name: str, doc: str, value: int) -> Metric:
    family = CounterMetricFamily(name, doc)
    family.add_metric([], value)
    return family


@dataclass(slots=True)
class _Pending:
    """A miss being answered: its key for the first candidate, and what it recorded."""

    key: str
    backend: str
    recorder: _Recorder


class ResponseCache(Stage):
    def __init__(
        self,
        config: CacheConfig,
        entries: Entries,
        router: Router,
        *,
        auth_on: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.entries = entries
        self.counts = CacheCounts(entries)
        self._router = router
        self._auth_on = auth_on
        self._clock = clock
        self._pending: dict[int, _Pending] = {}  # id(call) -> its miss (calls in flight)

    # ------------------------------------------------------------------ the hooks

    async def on_request(self, call: Call) -> Response | None:
        if call.kind != "generate":
            return None
        mode, max_age = controls(call.http.headers, self.config.enabled)
        if mode == BYPASS:
            self._mark(call, b"BYPASS")
            return None
        route = call.candidates(self._router)[0]
        key = self._key(call, route)
        if mode == USE:
            try:
                raw = await self.entries.get(key)
            except StoreError:
                self._mark(call, b"BYPASS")
                return None
            found = decode(raw) if raw is not None else None
            age = None if found is None else max(0.0, self._clock() - found[1])
            if found is not None and age is not None and (max_age is None or age <= max_age):
                return self._hit(call, found[0], age)
        self.counts.misses += 1
        self._mark(call, b"MISS")
        recorder = _Recorder(self.config.max_entry_bytes)
        self._pending[id(call)] = _Pending(key, route.backend.name, recorder)
        return None

    def record(self, call: Call) -> _Recorder | None:
        pending = self._pending.get(id(call))
        return None if pending is None else pending.recorder

    async def after(self, call: Call, status: int) -> None:
        pending = self._pending.pop(id(call), None)
        if pending is None or status != 200:
            return
        answer = pending.recorder.recorded
        name = call.exchange.backend
        backend = next((r.backend for r in call.routes or () if r.backend.name == name), None)
        if answer is None or name is None or backend is None or not _sound(answer, call, backend):
            return
        try:
            key = pending.key if name == pending.backend else self._key_for(call, name)
            value = encode(answer, self._clock())
            if len(value) <= self.config.max_entry_bytes:
                await self.entries.set(key, value, self.config.ttl_seconds)
                self.counts.stored += 1
        except (StoreError, LouterError):
            return  # not stored: the next request is a miss

    # ------------------------------------------------------------------ pieces

    def _key(self, call: Call, route: Any) -> str:
        return cache_key(call, route, shared=self.config.shared, auth_on=self._auth_on)

    def _key_for(self, call: Call, backend: str) -> str:
        route = next(r for r in call.routes or () if r.backend.name == backend)
        return self._key(call, route)

    def _mark(self, call: Call, state: bytes) -> None:
        if state == b"BYPASS":
            self.counts.bypasses += 1
        exchange = call.exchange
        exchange.reply_headers = (*exchange.reply_headers, (HEADER.encode(), state))

    def _hit(self, call: Call, answer: Response, age: float) -> Response:
        self.counts.hits += 1
        exchange = call.exchange
        seconds = str(int(age)).encode()
        exchange.reply_headers = (
            *exchange.reply_headers,
            (HEADER.encode(), b"HIT"),
            (b"age", seconds),
        )
        exchange.usage = (0, 0)  # nothing was generated: rate limits settle to no tokens
        call.marks = {"cached": True, "cache_age_s": round(age, 3)}
        return answer

    async def health(self) -> dict[str, Any]:
        """For `/health/cache`: the configuration, size, entries and hit ratio."""
        counts = self.counts
        lookups = counts.hits + counts.misses
        return {
            "enabled": True,
            "default": USE if self.config.enabled else BYPASS,
            "storage": self.entries.kind,
            "shared": self.config.shared,
            "ttl_seconds": self.config.ttl_seconds,
            "max_bytes": self.config.max_bytes if self.entries.kind == "memory" else None,
            **await self.entries.count(),
            "counted": "exact" if self.entries.kind == "memory" else "estimate",
            "hits": counts.hits,
            "misses": counts.misses,
            "bypasses": counts.bypasses,
            "stored": counts.stored,
            "hit_ratio": round(counts.hits / lookups, 4) if lookups else None,
        }


class _Recorder:
    """Keeps the complete answer of one miss (`recorded`), if it gets one: not for an
    answer that failed, broke off or has more than `limit` characters."""

    __slots__ = ("limit", "recorded")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.recorded: Response | None = None

    def answer(self, response: Response) -> None:
        self.recorded = response


def _sound(answer: Response, call: Call, backend: Backend) -> bool:
    """Whether `answer` may be stored: a normal finish, something said, every tool call
    named with JSON-object arguments, no call left as text by the tool stage."""
    if answer.finish_reason not in STORED_FINISHES or not answer.parts:
        return False
    calls = answer.tool_calls()
    if answer.finish_reason == "tool_calls" and not calls:
        return False
    for tool_call in calls:
        if not tool_call.name:
            return False
        try:
            arguments_object(tool_call.arguments, tool_call.name)
        except ConversionError:
            return False
    return not _call_left_as_text(answer, call, backend)


def _call_left_as_text(answer: Response, call: Call, backend: Backend) -> bool:
    """Whether the tool stage ran on `answer` and left text in it that looks like a
    call it could not parse: Qwen XML (an opener left), or JSON (the text starts with
    `{`/`[` or has a ```` ```json ```` fence, and names `"name"` and one of the tools; a
    JSON answer that names no tool is an answer). The request is read only then."""
    from louter.proxy.doors import DOORS  # noqa: PLC0415 - the doors import the pipeline

    if not needs_tool_stage(backend, DOORS[call.dialect].has_tools(call.body)):
        return False
    text = answer.text()
    if not TEXT_CALL_CHECKS[backend.tool_format](text):
        return False
    if backend.tool_format == "xml":
        return True
    return '"name"' in text and any(f'"{tool.name}"' in text for tool in call.request.tools)
