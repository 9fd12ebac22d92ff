"""Rate limits (issue 18): `rpm`, `tpm` and `max_concurrent` per scope, counted in the
store (`louter/proxy/store`), so they are exact across every louter sharing one Redis.

Scopes on the client side (the pipeline stage `RateLimits`): `[limits.default]`, the
first `[limits.models."glob"]` matching the request's model, and the client key's own
limits (`keys`: key name -> `Rate`, from `[keys.NAME]`; the key is the one auth admitted
the request with). One `store.admit` (one Redis round trip) takes a slot in every
`max_concurrent` scope and charges every bucket of a request (rpm: 1; tpm: a quick
estimate of the body's input tokens, `estimate.py`, plus its output limit or
`default_output_tokens`), all or none: a refused request spends nothing. A full
`max_concurrent` queues up to `queue_timeout_seconds`; a slot is a lease of
`lease_seconds`, renewed while its exchange runs.
After the exchange the TPM buckets settle to the backend's real usage (`exchange.usage`,
streams included); a stream that died before reporting usage keeps its reservation; an
error answer gives its estimate back.

Backend scopes (`BackendLimits`, used by the attempt loop): `rpm` and `tpm` per backend;
a backend at its limit is skipped like one whose breaker is open.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from louter.config import LimitsConfig, Rate
from louter.proxy.estimate import OUTPUT_LIMITS, input_tokens, sized_input_tokens
from louter.proxy.pipeline import Call, Stage
from louter.proxy.rate_limited import too_many
from louter.proxy.store import Decision, Limit, MemoryStore, Store

if TYPE_CHECKING:
    from louter.convert.model import Response
    from louter.proxy.metrics import Metrics

HeaderList = list[tuple[bytes, bytes]]
MAX_PENDING = 4096  # store writes (settles, releases) waiting in the background task
PARTS = (b"limit", b"remaining", b"reset")
FIRST_POLL = 0.005  # seconds between tries of a full `max_concurrent` (doubling)
LAST_POLL = 0.1
MATCHES_KEPT = 4096  # (model name, key name) pairs whose buckets are remembered
_UNKNOWN = object()  # a (model, key) whose buckets are not looked up yet


@dataclass(frozen=True, slots=True)
class Scope:
    label: str  # metric label: default | model | key | backend
    id: str  # the store key's stem
    rate: Rate
    name: str = ""  # metric label: the glob, key or backend name (bounded by config)


@dataclass(frozen=True, slots=True)
class _Buckets:
    """The buckets and concurrency caps of one combination of scopes, built once (the
    stage keeps one per combination: bounded by the config)."""

    keys: tuple[str, ...]
    limits: tuple[Limit, ...]
    scopes: tuple[tuple[str, str], ...]  # metric labels (scope, name) per bucket
    kinds: tuple[str, ...]  # "requests" | "tokens" per bucket
    tpm: bool  # some bucket costs the token estimate
    caps: tuple[str, ...]  # concurrency keys (`max_concurrent`)
    cap_limits: tuple[int, ...]
    cap_scope: tuple[str, str]  # metric labels when no slot is free
    ones: tuple[float, ...] = field(init=False)  # the costs without a token estimate
    by_kind: tuple[tuple[str, tuple[int, ...]], ...] = field(init=False)  # kind -> buckets
    tokens_at: tuple[int, ...] = field(init=False)  # the TPM buckets
    single: tuple[int, ...] | None = field(init=False)  # per kind its one bucket, if so
    # per kind: its first bucket and the others (the header lines name the least left)
    groups: tuple[tuple[int, tuple[int, ...]], ...] = field(init=False)
    # dialect (with `single`) or (dialect, bucket per kind) -> the lines' formats (`_heads`)
    heads: dict[Any, tuple[bytes, bytes | None]] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ones", tuple(1.0 for _ in self.kinds))
        by_kind = tuple(
            (kind, tuple(i for i, k in enumerate(self.kinds) if k == kind))
            for kind in ("requests", "tokens")
        )
        object.__setattr__(self, "by_kind", tuple((k, at) for k, at in by_kind if at))
        object.__setattr__(self, "tokens_at", dict(by_kind)["tokens"])
        lone = all(len(at) == 1 for _, at in self.by_kind)
        object.__setattr__(self, "single", tuple(at[0] for _, at in self.by_kind) if lone else None)
        object.__setattr__(self, "groups", tuple((at[0], at[1:]) for _, at in self.by_kind))
        object.__setattr__(self, "heads", {})

    def costs(self, tokens: int) -> Sequence[float]:
        if not self.tpm:
            return self.ones
        costs = list(self.ones)
        for i in self.tokens_at:
            costs[i] = tokens
        return costs

    def refused_scope(self, decision: Decision, costs: Sequence[float]) -> tuple[str, str]:
        """The scope that could not pay (the first bucket short of its cost)."""
        for remaining, cost, scope in zip(decision.remaining, costs, self.scopes, strict=True):
            if remaining < cost:
                return scope
        return self.scopes[0]


def plan_buckets(scopes: Sequence[Scope]) -> _Buckets:
    buckets = [
        (f"{scope.id}:{kind}", Limit(capacity, 60.0), (scope.label, scope.name), kind)
        for scope in scopes
        for kind, capacity in (("requests", scope.rate.rpm), ("tokens", scope.rate.tpm))
        if capacity is not None
    ]
    capped = [s for s in scopes if s.rate.max_concurrent is not None]
    return _Buckets(
        tuple(b[0] for b in buckets),
        tuple(b[1] for b in buckets),
        tuple(b[2] for b in buckets),
        tuple(b[3] for b in buckets),
        any(b[3] == "tokens" for b in buckets),
        tuple(f"{s.id}:concurrent" for s in capped),
        tuple(s.rate.max_concurrent or 0 for s in capped),
        (capped[0].label, capped[0].name) if capped else ("", ""),
    )


# What a request holds until its exchange is over: (buckets, TPM estimate charged, lease)
_Held = tuple[_Buckets, int, "str | None"]


class RateLimits(Stage):
    """The client-side limits as a pipeline stage (after auth, before routing).

    Admission is one store call (`admit`: the concurrency slots and every bucket, all or
    none); with the in-process store it is a plain function call (no coroutine, no
    checkpoint), and so is the after-exchange settle, which then needs no shield. With a
    remote store the settle and the slot's release are spawned in the stage's background
    task (`run`), off the exchange's path, and the slots of long exchanges are renewed
    there every third of `lease_seconds`."""

    def __init__(
        self,
        config: LimitsConfig,
        store: Store,
        metrics: Metrics | None = None,
        keys: Mapping[str, Rate] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._local = store if isinstance(store, MemoryStore) else None
        self.after_awaits = self._local is None
        self._metrics = metrics
        keys = keys or {}
        self._keys = {n: Scope("key", f"key:{n}", rate, n) for n, rate in keys.items()}
        self._default = Scope("default", "default", config.default) if config.default else None
        self._models = [Scope("model", f"model:{g}", rate, g) for g, rate in config.models]
        self._globs = [glob for glob, _ in config.models]
        self._held: dict[int, _Held] = {}
        self._stamps = Stamps(clock)  # the reset times some dialects' headers give
        self._lease = config.lease_seconds
        # (glob index, key name) -> the buckets of that combination (None: unlimited)
        self._plans: dict[tuple[int, str | None], _Buckets | None] = {}
        # (model name, key name) -> its buckets, the last few (cleared when large)
        self._recent: dict[tuple[str, str | None], Any] = {}
        every = [self._default, *self._models, *self._keys.values()]
        capped = any(s is not None and s.rate.max_concurrent for s in every)
        settles = capped or any(s is not None and s.rate.tpm for s in every)
        self.run = self._background if capped or (settles and self._local is None) else None
        self._nursery: trio.Nursery | None = None  # the background task's, while it runs
        self._spawned = 0

    def _match(self, model: str) -> int:
        """The index of the first glob matching `model` (-1: none)."""
        globs = enumerate(self._globs)
        return next((i for i, glob in globs if fnmatch.fnmatchcase(model, glob)), -1)

    def scopes(self, call: Call) -> list[Scope]:
        """The scopes limiting `call`: the default, its model's, its key's."""
        return self._scopes(self._match(call.model), _key_name(call))

    def _scopes(self, model: int, key: str | None) -> list[Scope]:
        found = [self._default] if self._default is not None else []
        if model >= 0:
            found.append(self._models[model])
        scope = self._keys.get(key or "")
        if scope is not None:
            found.append(scope)
        return found

    def _plan(self, call: Call) -> _Buckets | None:
        key = call.exchange.key
        at = (call.model, None if key is None else key.name)
        found = self._recent.get(at, _UNKNOWN)
        if found is _UNKNOWN:  # a (model, key) not seen lately: match its glob
            if len(self._recent) >= MATCHES_KEPT:
                self._recent.clear()
            found = self._recent[at] = self._plan_of(self._match(at[0]), at[1])
        return found

    def _plan_of(self, model: int, key: str | None) -> _Buckets | None:
        at = (model, key if key in self._keys else None)
        try:
            return self._plans[at]
        except KeyError:
            scopes = self._scopes(*at)
            found = self._plans[at] = plan_buckets(scopes) if scopes else None
            return found

    async def on_request(self, call: Call) -> Response | None:
        if call.kind != "generate":
            return None
        buckets = self._plan(call)
        if buckets is None:
            return None
        if buckets.tpm:
            tokens = self._estimate(call)
            costs = buckets.costs(tokens)
        else:
            tokens, costs = 0, buckets.ones
        keys, limits = buckets.keys, buckets.limits
        caps, cap_limits = buckets.caps, buckets.cap_limits
        if self._local is not None:  # a plain call: no coroutine, no checkpoint
            decision = self._local.admit_now(keys, costs, limits, caps, cap_limits, self._lease)
        else:
            decision = await self._store.admit(keys, costs, limits, caps, cap_limits, self._lease)
        if decision.full:
            decision = await self._queue(buckets, costs)
        if not decision.allowed:
            scope = buckets.refused_scope(decision, costs)
            self._count(scope)
            raise too_many(
                f"rate limit reached ({scope[0]}): retry in {decision.retry_after:.1f}s",
                decision.retry_after,
            )
        lease = decision.lease
        if buckets.tpm or lease is not None:  # to settle or release afterwards
            self._held[id(call)] = (buckets, tokens, lease)
        style = HEADERS.get(call.dialect)
        if style is not None and keys:
            call.exchange.reply_head = style.lines(call.dialect, buckets, decision, self._stamps)
        return None

    async def _queue(self, buckets: _Buckets, costs: Sequence[float]) -> Decision:
        """Wait for a free slot (polling) up to `queue_timeout_seconds`; 429 after."""
        deadline = trio.current_time() + self._config.queue_timeout_seconds
        delay = FIRST_POLL
        while (now := trio.current_time()) < deadline:
            await trio.sleep(min(delay, deadline - now))
            delay = min(delay * 2, LAST_POLL)
            asked = (buckets.keys, costs, buckets.limits, buckets.caps, buckets.cap_limits)
            decision = await self._store.admit(*asked, self._lease)
            if not decision.full:
                return decision
        self._count(buckets.cap_scope)
        raise too_many("too many concurrent requests: retry shortly", 1.0)

    async def after(self, call: Call, status: int) -> None:
        held = self._held.pop(id(call), None)
        if held is None:
            return
        buckets, tokens, lease = held
        # The tokens to charge now: real usage minus the estimate; the estimate back for
        # an error answer; 0 for a stream that died unsettled (it keeps its reservation)
        delta = 0.0
        if buckets.tpm:
            usage = call.exchange.usage
            if usage is not None:
                delta = float(usage[0] + usage[1] - tokens)
            elif status >= 400:
                delta = -float(tokens)
        local = self._local
        if local is not None:
            if lease is not None:
                local.release_now(buckets.caps, lease)
            if delta:
                keys, limits = buckets.keys, buckets.limits
                for i in buckets.tokens_at:
                    local.settle_now(keys[i], limits[i], delta)
            return
        if lease is not None:
            await self._later(self._store.release, buckets.caps, lease)
        for i in buckets.tokens_at if delta else ():
            await self._later(self._store.settle, buckets.keys[i], buckets.limits[i], delta)

    async def _later(self, write: Callable[..., Awaitable[None]], *args: Any) -> None:
        """`write(*args)` in the background task (off the exchange's path), or here when
        it is not running or already holds `MAX_PENDING` writes."""
        if self._nursery is None or self._spawned >= MAX_PENDING:
            await write(*args)
            return
        self._spawned += 1
        self._nursery.start_soon(self._write, write, args)

    async def _write(self, write: Callable[..., Awaitable[None]], args: tuple[Any, ...]) -> None:
        try:
            await write(*args)
        finally:
            self._spawned -= 1

    async def _background(self) -> None:
        """Renew the slots of exchanges still running every third of a lease (so a long
        stream keeps its slot), and host the deferred writes."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                while True:
                    await trio.sleep(self._lease / 3)
                    self._renew(nursery)
            finally:
                self._nursery = None

    def _renew(self, nursery: trio.Nursery) -> None:
        for buckets, _, lease in list(self._held.values()):
            if lease is None:
                continue
            if self._local is not None:
                self._local.renew_now(buckets.caps, lease, self._lease)
            else:
                nursery.start_soon(self._store.renew, buckets.caps, lease, self._lease)

    def _estimate(self, call: Call) -> int:
        """The request's TPM estimate: its output limit (`estimate.OUTPUT_LIMITS`, else
        `default_output_tokens`) plus its input, from the body's length as sent when the
        request says it and is not compressed, else from a walk of the whole body."""
        body = call.body
        read = OUTPUT_LIMITS.get(call.dialect)
        output = read(body) if read is not None else None
        if type(output) is not int or output <= 0:
            output = self._config.default_output_tokens
        headers = call.http.headers
        size = headers.get("content-length")
        if size is None or not size.isdigit() or "content-encoding" in headers:
            return output + input_tokens(body)
        return output + sized_input_tokens(int(size), body)

    def _count(self, scope: tuple[str, str]) -> None:
        if self._metrics is not None:
            self._metrics.rate_limited(*scope)


class RequestsOnly(RateLimits):
    """`RateLimits` when no scope has `tpm` or `max_concurrent`: an exchange leaves
    nothing to settle or release, so the stage has no after-exchange hook (and the app
    calls none)."""

    after = Stage.after  # type: ignore[assignment]


def _duration(seconds: float, stamps: Stamps | None = None) -> bytes:
    """OpenAI's reset format: `6m0s`, `1.5s`, `20ms` (`stamps`: unused, the `HeaderStyle`
    signature)."""
    if seconds < 1:
        return b"%dms" % (seconds * 1000 + 0.5) if seconds > 0 else b"0ms"
    if seconds < 60:
        return b"%.3gs" % seconds
    minutes, rest = divmod(seconds, 60)
    return b"%dm%.3gs" % (minutes, rest)


def _anthropic_reset(seconds: float, stamps: Stamps) -> bytes:
    return stamps.after(seconds)


class Stamps:
    """Wall-clock times `seconds` from now as RFC 3339 UTC, to the second; the last few
    made are kept (the answers of a second share theirs). One per stage."""

    __slots__ = ("_clock", "_kept")
    KEPT = 64

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._kept: dict[int, bytes] = {}  # Unix second -> its text

    def after(self, seconds: float) -> bytes:
        second = int(self._clock() + seconds)
        found = self._kept.get(second)
        if found is None:
            if len(self._kept) >= self.KEPT:
                self._kept.clear()
            text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
            found = self._kept[second] = text.encode()
        return found


@dataclass(frozen=True, slots=True, eq=False)
class HeaderStyle:
    """A dialect's rate-limit headers: per kind its (limit, remaining, reset) names, and
    how it writes a reset (`seconds` from now). `millis`: the reset of every bucket is
    written `<n>ms` under a second (`_duration`'s format), which the lines' format then
    holds itself (no call per bucket for the common case)."""

    names: Mapping[str, tuple[bytes, bytes, bytes]]
    reset: Callable[[float, Stamps], bytes]
    millis: bool = False

    def lines(self, dialect: str, buckets: _Buckets, decision: Decision, stamps: Stamps) -> bytes:
        """The header lines, encoded (the door appends them to the head as they are): per
        kind, the bucket with the least left. One format per answer: the lines of each
        combination of buckets are made once, their limits written in."""
        remaining, reset = decision.remaining, decision.reset
        chosen = buckets.single
        if chosen is not None:  # one bucket per kind: one format per dialect
            heads = buckets.heads.get(dialect)
            if heads is None:
                heads = buckets.heads[dialect] = self._heads(buckets, chosen)
        else:  # per kind the bucket with the least left
            least = []
            for best, others in buckets.groups:
                for i in others:
                    if remaining[i] < remaining[best]:
                        best = i
                least.append(best)
            chosen = tuple(least)
            heads = buckets.heads.get((dialect, chosen))
            if heads is None:
                heads = buckets.heads[dialect, chosen] = self._heads(buckets, chosen)
        head, short = heads
        if len(chosen) == 2:
            first, second = chosen
            one, two = reset[first], reset[second]
            if short is not None and one < 1 and two < 1:  # whole ms, rounded, as `_duration`
                return short % (
                    remaining[first],
                    one * 1000 + 0.5,
                    remaining[second],
                    two * 1000 + 0.5,
                )
            write = self.reset
            return head % (
                remaining[first],
                write(one, stamps),
                remaining[second],
                write(two, stamps),
            )
        values: list[Any] = []
        for i in chosen:
            values += (remaining[i], self.reset(reset[i], stamps))
        return head % tuple(values)

    def _heads(self, buckets: _Buckets, chosen: tuple[int, ...]) -> tuple[bytes, bytes | None]:
        """The lines' formats: resets written by `reset`, and (`millis`) in whole ms."""
        out = b""
        for (kind, _), i in zip(buckets.by_kind, chosen, strict=True):
            limit, left, reset = self.names[kind]
            capacity = int(buckets.limits[i].capacity)
            out += b"%s: %d\r\n%s: %%d\r\n%s: %%s\r\n" % (limit, capacity, left, reset)
        return out, out.replace(b"%s\r\n", b"%dms\r\n") if self.millis else None


_KINDS = (("requests", b"requests"), ("tokens", b"tokens"))
_OPENAI = HeaderStyle(
    {
        kind: (b"x-ratelimit-limit-" + k, b"x-ratelimit-remaining-" + k, b"x-ratelimit-reset-" + k)
        for kind, k in _KINDS
    },
    _duration,
    millis=True,
)
_ANTHROPIC = HeaderStyle(
    {
        kind: tuple(b"anthropic-ratelimit-%s-%s" % (k, part) for part in PARTS)  # type: ignore[misc]
        for kind, k in _KINDS
    },
    _anthropic_reset,
)
HEADERS: Mapping[str, HeaderStyle] = {
    "openai": _OPENAI,
    "responses": _OPENAI,
    "anthropic": _ANTHROPIC,
}


class BackendLimits:
    """`[limits.backends.NAME]` (rpm, tpm): the attempt loop asks before each backend."""

    def __init__(self, rates: Mapping[str, Rate], store: Store, metrics: Metrics | None) -> None:
        self._plans = {
            name: plan_buckets([Scope("backend", f"backend:{name}", rate, name)])
            for name, rate in rates.items()
            if rate.rpm is not None or rate.tpm is not None
        }
        self._store = store
        self._metrics = metrics

    async def admit(self, backend: str, estimate: Callable[[], int]) -> float | None:
        """None when `backend` may take the request (its buckets charged), else the
        seconds until it could."""
        buckets = self._plans.get(backend)
        if buckets is None:
            return None
        costs = buckets.costs(estimate() if buckets.tpm else 0)
        decision = await self._store.reserve(buckets.keys, costs, buckets.limits)
        if decision.allowed:
            return None
        if self._metrics is not None:
            self._metrics.rate_limited("backend", backend)
        return decision.retry_after


def build_limits(
    config: LimitsConfig | None,
    store: Store,
    metrics: Metrics | None,
    keys: Mapping[str, Rate] | None = None,
) -> tuple[Sequence[Stage], BackendLimits | None]:
    """The limits stage (when any client-side scope is configured) and the backend
    limiter (when any backend is limited)."""
    config = config or LimitsConfig()
    client = config.default is not None or config.models or keys
    rates = [config.default, *(rate for _, rate in config.models), *(keys or {}).values()]
    settles = any(r is not None and (r.tpm or r.max_concurrent) for r in rates)
    kind = RateLimits if settles else RequestsOnly
    stage = (kind(config, store, metrics, keys),) if client else ()
    backends = BackendLimits(config.backends, store, metrics) if config.backends else None
    return stage, backends


def _key_name(call: Call) -> str | None:
    """The name of the client key auth admitted the request with (None: auth off)."""
    key = call.exchange.key
    return None if key is None else key.name
