"""Health endpoints beside `/health`: `GET /health/providers` (each backend's breaker
state, last error, latency, model list) and `GET /health/cache` (the response cache's
own report when one exists, else `{"enabled": false}`).

No URL (an internal address) and no key ever appears: backends are named by config name
and errors are scrubbed.
"""

from __future__ import annotations

from typing import Any

from louter.config import Backend
from louter.http.message import HttpRequest, Responder
from louter.proxy.breaker import COOLING_DOWN, Breaker
from louter.proxy.context import ProxyContext
from louter.proxy.exchange import Exchange
from louter.proxy.journal import format_timestamp
from louter.proxy.metrics import Metrics
from louter.proxy.scrub import Scrubber


def backend_health(
    backend: Backend, breaker: Breaker, wall: float, now: float, scrub: Scrubber
) -> dict[str, Any]:
    """The protocol, mapped models and breaker state of one backend."""
    state, error = breaker.state, breaker.last_error
    failed_at = breaker.last_error_at
    return {
        "protocol": backend.protocol,
        "models": sorted(backend.model_mapping),
        "state": state,
        "cooling_down_until": (
            format_timestamp(wall + breaker.remaining()) if state == COOLING_DOWN else None
        ),
        "consecutive_failures": breaker.failures,
        "last_error": error if error is None else scrub(error, backend.name),
        "last_error_at": None if failed_at is None else format_timestamp(wall - (now - failed_at)),
    }


def latency(metrics: Metrics | None, backend: str) -> dict[str, Any]:
    """Mean upstream latency of the backend's answered (2xx) attempts, and how many there
    were; None when metrics are off or nothing was answered yet."""
    found = metrics.backends.get(backend) if metrics is not None else None
    if found is None:
        return {"latency_ms": None, "requests_ok": None}
    answered = [h for status, h in found.durations.items() if status.startswith("2")]
    count = sum(sum(h.counts) for h in answered)
    total = sum(h.sum for h in answered)
    return {"latency_ms": round(total / count * 1000, 3) if count else None, "requests_ok": count}


def _listing(ctx: ProxyContext, backend: str, wall: float, now: float) -> dict[str, Any] | None:
    """What discovery last found of the backend's model list (no read is started)."""
    discovery = ctx.served.discovery if ctx.served is not None else None
    listing = discovery.known(backend) if discovery is not None else None
    if listing is None or listing.everything:
        return None
    read_at = listing.fetched_at
    return {
        "count": None if listing.models is None else len(listing.models),
        "read_at": None if read_at is None else format_timestamp(wall - (now - read_at)),
        "error": None if listing.error is None else ctx.scrub(listing.error, backend),
    }


async def providers(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """`GET /health/providers` -> `{backend: {state, ...}}`, every configured backend."""
    router = ctx.router
    wall, now = ctx.clock(), router.clock()
    report = {}
    for backend in ctx.config.backends:
        entry = backend_health(backend, router.breakers[backend.name], wall, now, ctx.scrub)
        entry.update(latency(ctx.metrics, backend.name))
        entry["model_list"] = _listing(ctx, backend.name, wall, now)
        report[backend.name] = entry
    await responder.send_json(200, report)


async def cache(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """`GET /health/cache`: the cache's `health()` when one is configured."""
    report = {"enabled": False} if ctx.cache is None else await ctx.cache.health()
    await responder.send_json(200, report)
