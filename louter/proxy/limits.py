"""Rate limits (issue 18): `rpm`, `tpm` and `max_concurrent` per scope, counted in the
store (`louter/proxy/store`), so they are exact across every louter sharing one Redis.

Scopes on the client side (the pipeline stage `RateLimits`): `[limits.default]`, the
first `[limits.models."glob"]` matching the request's model, and the client key's own
limits (`keys`: key name -> `Rate`, from `[keys.NAME]`; the key is the one auth admitted
the request with). One `store.reserve` charges every bucket of a request (rpm: 1;
tpm: the input estimate plus `max_tokens`, or `default_output_tokens`)
or none; `max_concurrent` takes one lease in every capped scope (queueing up to
`queue_timeout_seconds`), taken before the buckets so a refused request spends nothing.
After the exchange the TPM buckets settle to the backend's real usage (`exchange.usage`,
streams included); a stream that died before reporting usage keeps its reservation; an
error answer gives its estimate back.

Backend scopes (`BackendLimits`, used by the attempt loop): `rpm` and `tpm` per backend;
a backend at its limit is skipped like one whose breaker is open.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from louter.config import LimitsConfig, Rate
from louter.errors import LouterError
from louter.proxy.pipeline import Call, Stage
from louter.proxy.store import Decision, Limit, Store

if TYPE_CHECKING:
    from louter.convert.model import Response
    from louter.proxy.metrics import Metrics

HeaderList = list[tuple[bytes, bytes]]
LEASE_SECONDS = 600.0  # a concurrency slot held by a crashed instance frees itself
FIRST_POLL = 0.005  # seconds between tries of a full `max_concurrent` (doubling)
LAST_POLL = 0.1
MATCHES_KEPT = 4096  # model names whose matching glob is remembered


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

    def costs(self, tokens: int) -> list[float]:
        return [tokens if kind == "tokens" else 1 for kind in self.kinds]

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


@dataclass(slots=True)
class _Held:
    buckets: _Buckets
    tokens: int  # the TPM estimate charged
    lease: str | None


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


class RateLimits(Stage):
    """The client-side limits as a pipeline stage (after auth, before routing)."""

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
        self._metrics = metrics
        keys = keys or {}
        self._keys = {n: Scope("key", f"key:{n}", rate, n) for n, rate in keys.items()}
        self._default = Scope("default", "default", config.default) if config.default else None
        self._models = [Scope("model", f"model:{g}", rate, g) for g, rate in config.models]
        self._globs = [glob for glob, _ in config.models]
        self._held: dict[int, _Held] = {}
        self._clock = clock
        # model name -> index of its first matching glob (-1: none); cleared when large
        self._matches: dict[str, int] = {}
        # (glob index, key name) -> the buckets of that combination (None: unlimited)
        self._plans: dict[tuple[int, str | None], _Buckets | None] = {}

    def _match(self, model: str) -> int:
        found = self._matches.get(model)
        if found is None:
            found = next(
                (i for i, glob in enumerate(self._globs) if fnmatch.fnmatchcase(model, glob)), -1
            )
            if len(self._matches) >= MATCHES_KEPT:
                self._matches.clear()
            self._matches[model] = found
        return found

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
        key = _key_name(call)
        at = (self._match(call.model), key if key in self._keys else None)
        if at not in self._plans:
            scopes = self._scopes(*at)
            self._plans[at] = plan_buckets(scopes) if scopes else None
        return self._plans[at]

    async def on_request(self, call: Call) -> Response | None:
        if call.kind != "generate":
            return None
        buckets = self._plan(call)
        if buckets is None:
            return None
        tokens = self._estimate(call) if buckets.tpm else 0
        lease = await self._acquire(buckets) if buckets.caps else None
        decision = None
        if buckets.keys:
            costs = buckets.costs(tokens)
            decision = await self._store.reserve(buckets.keys, costs, buckets.limits)
            if not decision.allowed:
                if lease is not None:
                    await self._store.release(buckets.caps, lease)
                scope = buckets.refused_scope(decision, costs)
                self._count(scope)
                raise too_many(
                    f"rate limit reached ({scope[0]}): retry in {decision.retry_after:.1f}s",
                    decision.retry_after,
                )
        self._held[id(call)] = _Held(buckets, tokens, lease)
        if decision is not None and call.dialect in HEADERS:
            call.exchange.reply_headers = tuple(self._headers(call.dialect, buckets, decision))
        return None

    async def after(self, call: Call, status: int) -> None:
        held = self._held.pop(id(call), None)
        if held is None:
            return
        buckets = held.buckets
        if held.lease is not None:
            await self._store.release(buckets.caps, held.lease)
        if not buckets.tpm:
            return
        usage = getattr(call.exchange, "usage", None)
        if usage is not None:
            delta = float(sum(usage) - held.tokens)
        elif status >= 400:
            delta = -float(held.tokens)  # an error answer: no tokens were spent upstream
        else:
            return  # a stream that died unsettled keeps its reservation
        if not delta:
            return
        for key, limit, kind in zip(buckets.keys, buckets.limits, buckets.kinds, strict=True):
            if kind == "tokens":
                await self._store.settle(key, limit, delta)

    def _estimate(self, call: Call) -> int:
        request = call.request
        output = request.max_tokens or self._config.default_output_tokens
        return call.lazy.estimate() + output

    async def _acquire(self, buckets: _Buckets) -> str:
        deadline = trio.current_time() + self._config.queue_timeout_seconds
        delay = FIRST_POLL
        while True:
            lease = await self._store.acquire(buckets.caps, buckets.cap_limits, LEASE_SECONDS)
            if lease is not None:
                return lease
            now = trio.current_time()
            if now >= deadline:
                self._count(buckets.cap_scope)
                raise too_many("too many concurrent requests: retry shortly", 1.0)
            await trio.sleep(min(delay, deadline - now))
            delay = min(delay * 2, LAST_POLL)

    def _count(self, scope: tuple[str, str]) -> None:
        if self._metrics is not None:
            self._metrics.rate_limited(*scope)

    def _headers(self, dialect: str, buckets: _Buckets, decision: Decision) -> HeaderList:
        write = HEADERS.get(dialect)
        if write is None:
            return []
        out: HeaderList = []
        for kind in ("requests", "tokens"):
            found = _tightest(buckets, decision, kind)
            if found is not None:
                out.extend(write(kind, *found, self._clock()))
        return out


def _tightest(buckets: _Buckets, decision: Decision, kind: str) -> tuple[int, int, float] | None:
    """(limit, remaining, reset seconds) of the `kind` bucket with the least left."""
    best: tuple[int, int, float] | None = None
    for i, bucket_kind in enumerate(buckets.kinds):
        if bucket_kind != kind:
            continue
        found = (int(buckets.limits[i].capacity), decision.remaining[i], decision.reset[i])
        if best is None or found[1] < best[1]:
            best = found
    return best


def _duration(seconds: float) -> str:
    """OpenAI's reset format: `6m0s`, `1.5s`, `20ms`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3g}s"
    return f"{int(minutes)}m{text}" if minutes else text


def _openai(kind: str, limit: int, remaining: int, reset: float, now: float) -> HeaderList:
    return [
        (b"x-ratelimit-limit-" + kind.encode(), str(limit).encode()),
        (b"x-ratelimit-remaining-" + kind.encode(), str(remaining).encode()),
        (b"x-ratelimit-reset-" + kind.encode(), _duration(reset).encode()),
    ]


def _anthropic(kind: str, limit: int, remaining: int, reset: float, now: float) -> HeaderList:
    stem = b"anthropic-ratelimit-" + kind.encode()
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + reset))
    return [
        (stem + b"-limit", str(limit).encode()),
        (stem + b"-remaining", str(remaining).encode()),
        (stem + b"-reset", at.encode()),
    ]


HEADERS: Mapping[str, Callable[[str, int, int, float, float], HeaderList]] = {
    "openai": _openai,
    "responses": _openai,
    "anthropic": _anthropic,
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
    if config is None and not keys:
        return (), None
    config = config or LimitsConfig()
    client = config.default is not None or config.models or keys
    stage = (RateLimits(config, store, metrics, keys),) if client else ()
    backends = BackendLimits(config.backends, store, metrics) if config.backends else None
    return stage, backends


def _key_name(call: Call) -> str | None:
    """The name of the client key auth admitted the request with (None: auth off)."""
    key = call.exchange.key
    return None if key is None else key.name
