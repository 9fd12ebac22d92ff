"""The application: routes requests to front-door handlers and renders errors.

`build_context` assembles everything a handler needs once; `make_handler` returns the
function the HTTP server calls per request; `serve` runs both on a port.
"""

from __future__ import annotations

import socket
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import trio

from louter.config import Config, Rate, Server
from louter.convert.dialect import DIALECTS
from louter.errors import ConversionError, LouterError, UpstreamError
from louter.http.deadlines import Deadlines
from louter.http.drain import Drain
from louter.http.message import HttpRequest, Responder
from louter.http.server import Limits
from louter.http.server import serve as serve_http
from louter.prices import build_catalog
from louter.proxy.accounting.build import accounting_stages, build_accounting
from louter.proxy.auth import ANY, HEADERS, Gate
from louter.proxy.cache import build_cache
from louter.proxy.condense import condense
from louter.proxy.context import ProxyContext
from louter.proxy.discovery import Discovery
from louter.proxy.doors import (
    DOORS,
    count,
    gemini,
    gemini_model_action,
    gemini_models,
    list_models,
    model_path,
    speaking,
)
from louter.proxy.doors import generate as door
from louter.proxy.exchange import Budgets, Exchange, RequestIds
from louter.proxy.health_api import backend_health, providers
from louter.proxy.health_api import cache as cache_health
from louter.proxy.inflight import BodyBudget
from louter.proxy.journal import Entry, Journal
from louter.proxy.known import UnknownModels
from louter.proxy.metrics import Metrics, StoreMetrics, content_type
from louter.proxy.model_api import PREFIX, get_catalog_model, list_catalog, search_catalog
from louter.proxy.paths import with_aliases, with_prefix_aliases
from louter.proxy.pipeline import Stage
from louter.proxy.routing import Router
from louter.proxy.scrub import Scrubber
from louter.proxy.served import Served
from louter.proxy.sessions import build_sessions, tag
from louter.proxy.shared_breakers import SharedBreakers
from louter.proxy.stages import build_pipeline, limit_stages, loop_guards, processor_stages
from louter.proxy.store import build_store
from louter.proxy.upstreams import open_upstreams

if TYPE_CHECKING:
    from louter.proxy.accounting.record import Pricing

HandlerFn = Callable[[ProxyContext, Exchange, HttpRequest, Responder], Awaitable[None]]
OPEN = ""  # `Endpoint.key_from`: no key needed, even with auth on


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    handler: HandlerFn
    dialect: str
    # With auth on, where the client's key is read: "" = nowhere (open: /health, /metrics),
    # None = the dialect's places, ANY = every dialect's (paths all clients use)
    key_from: str | None = None


async def health(
    ctx: ProxyContext, exchange: Exchange, request: HttpRequest, responder: Responder
) -> None:
    """Each backend's breaker state; 503 when no backend a request can reach is usable.
    A worker of `--workers N` answers for the whole group (louter/group/)."""
    if ctx.group is not None:
        status, body = await ctx.group.health()
    else:
        status, body = health_body(ctx)
    if ctx.sessions is not None:
        body["routes"] = await _runtime_routes(ctx)
    await responder.send_json(status, body)


def health_body(ctx: ProxyContext) -> tuple[int, dict[str, Any]]:
    """This process's `/health`: its status code and body."""
    router = ctx.router
    wall, now = ctx.clock(), router.clock()
    backends = {b.name: backend_health(b, router.breakers[b.name], wall, now, ctx.scrub)
                for b in ctx.config.backends}  # fmt: skip
    usable = any(router.breakers[name].usable() for name in router.routed())
    return 200 if usable else 503, {
        "status": "ok" if usable else "unavailable",
        "default": router.default.name,
        "backends": backends,
    }


async def _runtime_routes(ctx: ProxyContext) -> dict[str, list[str]]:
    """The routes set with `!/route-*` (they take precedence over the config's mapping)."""
    assert ctx.sessions is not None
    if not ctx.sessions.commands:
        return {}
    await ctx.sessions.ready()
    return await ctx.sessions.routes.read()


async def metrics(
    ctx: ProxyContext, exchange: Exchange, request: HttpRequest, responder: Responder
) -> None:
    """Prometheus text format; 404 with `enable_metrics = false`."""
    if ctx.metrics is None:
        raise LouterError("metrics are disabled (enable_metrics = false)", status_hint=404)
    body = ctx.metrics.render() if ctx.group is None else await ctx.group.metrics()
    await responder.send(200, [(b"content-type", content_type())], body)


def usage(name: str) -> HandlerFn:
    """A `/v2/usage` or `/v2/audit` handler of `proxy/accounting/api.py`, imported on its
    first request (a louter without `[usage]` never loads it; those paths answer 404)."""

    async def handle(
        ctx: ProxyContext, exchange: Exchange, request: HttpRequest, responder: Responder
    ) -> None:
        from louter.proxy.accounting import api  # noqa: PLC0415 - only when asked

        await getattr(api, name)(ctx, exchange, request, responder)

    return handle


ROUTES: Mapping[str, Endpoint] = {
    "/v1/chat/completions": Endpoint("POST", door(DOORS["openai"]), "openai"),
    "/chat/completions": Endpoint("POST", door(DOORS["openai"]), "openai"),
    "/v1/models": Endpoint("GET", list_models, "openai", ANY),
    "/v1beta/models": Endpoint("GET", gemini_models, "gemini"),
    "/v1/messages": Endpoint("POST", door(DOORS["anthropic"]), "anthropic"),
    "/v1/messages/count_tokens": Endpoint("POST", count(DOORS["anthropic"]), "anthropic"),
    "/v1/responses": Endpoint("POST", door(DOORS["responses"]), "responses"),
    "/responses": Endpoint("POST", door(DOORS["responses"]), "responses"),
    "/v1/completions": Endpoint("POST", door(DOORS["completions"]), "completions"),
    "/completions": Endpoint("POST", door(DOORS["completions"]), "completions"),
    "/v2/usage/stats": Endpoint("GET", usage("usage_stats"), "openai", HEADERS),
    "/v2/usage/recent": Endpoint("GET", usage("usage_recent"), "openai", HEADERS),
    "/v2/usage/me": Endpoint("GET", usage("usage_me"), "openai", HEADERS),
    "/v2/audit/logs": Endpoint("GET", usage("audit_logs"), "openai", HEADERS),
    "/health": Endpoint("GET", health, "openai", OPEN),
    "/metrics": Endpoint("GET", metrics, "openai", OPEN),
    "/health/providers": Endpoint("GET", providers, "openai", OPEN),
    "/health/cache": Endpoint("GET", cache_health, "openai", OPEN),
    "/api/models": Endpoint("GET", list_catalog, "openai", ANY),
    "/api/models/search": Endpoint("GET", search_catalog, "openai", ANY),
    "/api/condense": Endpoint("POST", condense, "openai", ANY),
}
ROUTES = with_aliases(ROUTES)  # the seeds' /v2/... paths
# Paths with a parameter (`models/{model}:{action}`): the handler checks the method.
PREFIX_ROUTES: tuple[tuple[str, Endpoint], ...] = (
    ("/v1beta/models/", Endpoint("*", gemini_model_action, "gemini")),
    ("/v1/models/", Endpoint("*", model_path, "gemini", ANY)),
    (PREFIX, Endpoint("GET", get_catalog_model, "openai", ANY)),
)
PREFIX_ROUTES = with_prefix_aliases(PREFIX_ROUTES)


def match(path: str) -> Endpoint | None:
    return resolve(path)[0]


def resolve(path: str) -> tuple[Endpoint | None, str]:
    """The endpoint for `path`, and its metrics label: the path itself, with a model
    name replaced by `{model}` (labels must not grow with the names clients send)."""
    endpoint = ROUTES.get(path)
    if endpoint is not None:
        return endpoint, path
    for prefix, found in PREFIX_ROUTES:
        if path.startswith(prefix):
            _, sep, action = path[len(prefix) :].rpartition(":")
            suffix = ":" + action if sep and action in gemini.ACTIONS else ""
            return found, prefix + "{model}" + suffix
    return None, "unmatched"


def dialect_for_path(path: str) -> str:
    """The error dialect for a path no endpoint matched."""
    if path.startswith("/v1beta/"):
        return "gemini"
    if path.startswith("/v1/responses"):
        return "responses"
    return "anthropic" if path.startswith("/v1/messages") else "openai"


def protocol_error_body(target: bytes | None, status: int, message: str) -> bytes:
    """The server's protocol errors (400, 413, 431, 501, 503) in the envelope of the
    dialect the request's path belongs to; OpenAI's while the path is not known."""
    dialect = "openai"
    if target is not None:
        path = target.split(b"?", 1)[0].decode("latin-1")
        endpoint = match(path)
        dialect = endpoint.dialect if endpoint else dialect_for_path(path)
    return orjson.dumps(DIALECTS[dialect].error_body(status, message))


def server_limits(server: Server) -> Limits:
    """The inbound limits `[server]` configures (the others keep their defaults)."""
    return Limits(
        header_timeout=server.header_timeout_seconds,
        request_timeout=server.request_timeout_seconds,
        idle_timeout=server.idle_timeout_seconds,
        max_connections=server.max_connections,
    )


def make_handler(ctx: ProxyContext) -> Callable[[HttpRequest, Responder], Awaitable[None]]:
    metrics = ctx.metrics
    budgets = Budgets.of(ctx.config.performance)
    bodies = BodyBudget(ctx.config.performance.max_inflight_body_bytes)

    async def handle(request: HttpRequest, responder: Responder) -> None:
        path = request.path
        endpoint, label = resolve(path)
        exchange = Exchange(
            ctx.journal,
            ctx.ids.next(),
            path,
            endpoint.dialect if endpoint else dialect_for_path(path),
            budgets,
        )
        size = len(request.body)  # the doors may drop the body once parsed
        exchange.offload = size > budgets.offload
        exchange.label = label
        responder.stamp = exchange.overhead_header
        if metrics is not None:
            metrics.in_flight.inc()
        try:
            if bodies.claim(size):
                try:
                    await _dispatch(ctx, endpoint, exchange, request, responder)
                finally:
                    bodies.release(size)
            else:
                await _refuse(ctx, exchange, responder, bodies.refusal(size))
        except trio.Cancelled:
            if responder.client_gone:
                _client_left(ctx, exchange)
            else:
                exchange.log("error", status=503, error=CANCELLED)
            raise
        finally:
            if exchange.call is not None and ctx.pipeline.finishing:  # after-exchange hooks
                if ctx.pipeline.shield_after:
                    await _after(ctx, exchange, responder.status or 499)
                else:  # none of them can wait: no cancel scope (and no call to make one)
                    await ctx.pipeline.after(exchange.call, responder.status or 499)
            exchange.flush()
            if metrics is not None:
                _observe(metrics, exchange, request.method, responder.status or 499)
            exchange.call = None  # Call -> Exchange -> Call: free the request's data now

    return handle


async def _after(ctx: ProxyContext, exchange: Exchange, status: int) -> None:
    """The pipeline's after-exchange hooks, shielded unless none of them can wait."""
    assert exchange.call is not None
    if not ctx.pipeline.shield_after:
        await ctx.pipeline.after(exchange.call, status)
        return
    with trio.CancelScope(shield=True):
        await ctx.pipeline.after(exchange.call, status)


async def _dispatch(
    ctx: ProxyContext,
    endpoint: Endpoint | None,
    exchange: Exchange,
    request: HttpRequest,
    responder: Responder,
) -> None:
    try:
        if ctx.sessions is not None:  # every answer names its session (x-session-id)
            tag(exchange, request, responder)
        if endpoint is None:
            raise LouterError(f"unknown path {request.path}", status_hint=404)
        if endpoint.method not in ("*", request.method):
            await _method_not_allowed(exchange, endpoint, request, responder)
            _count_error(ctx, exchange, "bad_request")
            return
        if endpoint.key_from == ANY and request.method == "GET":  # any SDK's model lookups
            exchange.format = speaking(request)  # refusals in the asking client's dialect
        if ctx.gate is not None and endpoint.key_from != OPEN:
            where = endpoint.key_from or endpoint.dialect
            ctx.gate.admit(request, where, exchange, responder.peer())
            if ctx.sessions is not None and exchange.key is not None:
                tag(exchange, request, responder)  # a key names a session without a header
        await endpoint.handler(ctx, exchange, request, responder)
    except LouterError as exc:
        _count_error(ctx, exchange, error_kind(exc))
        message = ctx.scrub(exc.message, exchange.backend)
        await _fail(exchange, responder, exc.status_hint, message, exc)
    except Exception as exc:  # noqa: BLE001 - one bad request must not kill the server
        _count_error(ctx, exchange, "internal")
        trace = ctx.scrub(traceback.format_exc(), exchange.backend)
        message = ctx.scrub(f"internal error: {exc!r}", exchange.backend)
        await _fail(exchange, responder, 500, message, exc, trace=trace)


async def _refuse(
    ctx: ProxyContext, exchange: Exchange, responder: Responder, message: str
) -> None:
    """Too many request bodies in flight: a 503 in the client's dialect, nothing read."""
    _count_error(ctx, exchange, "overloaded")
    await _fail(exchange, responder, 503, message, LouterError(message, status_hint=503))


def _observe(metrics: Metrics, exchange: Exchange, method: str, status: int) -> None:
    metrics.in_flight.dec()
    metrics.request(exchange.label, method, status, time.perf_counter() - exchange.started)
    metrics.overhead.observe(exchange.overhead())


CANCELLED = "cancelled before the answer was complete (louter stopped, or the client stalled)"


def _client_left(ctx: ProxyContext, exchange: Exchange) -> None:
    exchange.log("error", status=499, error="client disconnected before the answer")
    _count_error(ctx, exchange, "client_disconnect")


def _count_error(ctx: ProxyContext, exchange: Exchange, kind: str) -> None:
    if ctx.metrics is not None:
        ctx.metrics.error(kind, exchange.label)


# errors_total{type}: LouterError subclass and status -> kind
_UPSTREAM_KINDS = {502: "upstream_unreachable", 503: "no_backend", 504: "upstream_timeout"}


def error_kind(exc: LouterError) -> str:
    if isinstance(exc, UpstreamError):
        return _UPSTREAM_KINDS.get(exc.status_hint, "upstream")
    if isinstance(exc, ConversionError) and exc.status_hint >= 500:
        return "bad_upstream_answer"
    if exc.status_hint == 404:
        return "not_found"
    return "bad_request" if exc.status_hint < 500 else "internal"


async def _method_not_allowed(
    exchange: Exchange, endpoint: Endpoint, request: HttpRequest, responder: Responder
) -> None:
    message = f"method {request.method} not allowed on {request.path}; use {endpoint.method}"
    body = DIALECTS[exchange.format].error_body(405, message)
    await responder.send_json(405, body, [(b"allow", endpoint.method.encode("ascii"))])


async def _fail(
    exchange: Exchange,
    responder: Responder,
    status: int,
    message: str,
    exc: Exception,
    trace: str | None = None,
) -> None:
    extra: dict[str, Any] = {"traceback": trace} if trace else {}
    own = exc.headers if isinstance(exc, LouterError) else ()
    if exchange.attempts:
        extra["attempts"] = exchange.attempts
    exchange.log("error", status=status, error=message, error_type=type(exc).__name__, **extra)
    if responder.started:
        return
    body = DIALECTS[exchange.format].error_body(status, message)
    if isinstance(exc, LouterError) and exc.code is not None:
        _set_code(body, exc.code)
    if isinstance(exc, LouterError):  # e.g. a 429's rate-limit details in the dialect
        body = exc.envelope(exchange.format, body)
    exchange.log("client_response", status=status, payload=body)
    headers = [(b"x-louter-request-id", exchange.request_id.encode("ascii")), *own]
    await responder.send_json(status, body, headers)


def _set_code(body: dict[str, Any], code: str) -> None:
    """An error's code, in envelopes with an empty `code` slot (OpenAI's and Responses';
    Gemini's `code` is the status, Anthropic's envelope has none)."""
    error = body.get("error")
    if isinstance(error, dict) and "code" in error and error["code"] is None:
        error["code"] = code


def build_context(
    config: Config,
    *,
    default_backend: str,
    log_file: Path | None = None,
    echo: Callable[[Entry], None] | None = None,
    echo_payloads: bool = False,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    log_options: Mapping[str, Any] | None = None,
    stages: Sequence[Stage] = (),
    warn: Callable[[str], None] | None = None,
    key_limits: Mapping[str, Rate] | None = None,
    pricing: Pricing | None = None,
) -> ProxyContext:
    """Everything handlers need. Raises `ConfigError` for an unknown default backend.

    `clock` is wall time (timestamps); `monotonic` drives the breakers' cool-downs.
    `log_options` go to the `Journal` (`report`, `max_bytes`, `backups`). The pipeline
    is the stages the config enables (`proxy/stages.py`), the rate limits (`[limits]`,
    and `key_limits`: a client key's name -> its `Rate`), then `stages`. `warn` hears
    about store episodes (a Redis outage and recovery)."""
    router = Router(config, default_backend, clock=monotonic)
    performance = config.performance
    journal = Journal(
        log_file,
        clock=clock,
        echo=echo,
        payloads=performance.log_requests,
        echo_payloads=echo_payloads,
        **(log_options or {}),
    )
    metrics = (
        Metrics([b.name for b in config.backends], router.breakers, journal.write_errors)
        if performance.enable_metrics
        else None
    )
    own = [t for b in config.backends for t in (b.timeout_seconds, b.connect_timeout_seconds) if t]
    timeouts = (performance.timeout_seconds, performance.stream_idle_timeout_seconds, *own)
    deadlines = Deadlines(min(timeouts))
    store_metrics = StoreMetrics() if metrics is not None and config.store is not None else None
    if metrics is not None:
        metrics.store = store_metrics
    store = build_store(config.store, metrics=store_metrics, warn=warn)
    if key_limits is None:
        key_limits = {  # a client key's own limits (none configured: no stage, no cost)
            k.name: Rate(k.rpm, k.tpm, k.max_concurrent)
            for k in config.auth.keys
            if config.auth.on and (k.rpm or k.tpm or k.max_concurrent)
        }
    limited, backend_limits = limit_stages(config.limits, store, metrics, key_limits)
    upstreams = open_upstreams(config, clock, deadlines)
    catalog = build_catalog(config)
    accounting = build_accounting(config, store, router, metrics, clock, pricing or catalog.price)
    discovery = (
        Discovery(upstreams, config.catalog, clock=monotonic, warn=warn, metrics=metrics)
        if config.catalog.discovery
        else None
    )
    served = Served(config, router, catalog, discovery)
    known = [UnknownModels(served)] if config.routing.unknown_models == "reject" else []
    cache = build_cache(config, store, router, clock)
    if metrics is not None and cache is not None:
        metrics.cache = cache.counts
    processing = (*processor_stages(config.processors, router), *([cache] if cache else []))
    scrub = Scrubber(config.backends)
    shared = None
    if config.store is not None:  # other louters share the store: and the breakers
        shared = SharedBreakers(router.breakers, store, wall=clock, scrub=scrub)
    sessions = build_sessions(config, store, router, metrics, warn, served)
    guards = loop_guards(config, metrics, lambda m: router.candidates(m)[0].backend.name)
    return ProxyContext(
        config,
        router,
        upstreams,
        journal,
        RequestIds(),
        clock,
        deadlines,
        metrics,
        scrub,
        build_pipeline(
            config,
            (*known, *limited, *accounting_stages(accounting), *processing, *guards, *stages),
            metrics,
            sessions.stages(),
        ),
        Gate(config.auth, clock, monotonic, metrics) if config.auth.on else None,
        store,
        backend_limits,
        catalog=catalog,
        served=served,
        cache=cache,
        shared_breakers=shared,
        accounting=accounting,
        sessions=sessions,
    )


def _background(ctx: ProxyContext) -> list[Callable[[], Awaitable[None]]]:
    """The tasks that run beside the server: the deadline watchdog, the stages' own, the
    model lists' refresher (with discovery) and the shared breakers' (with `[store]`)."""
    tasks = [ctx.deadlines.run, *ctx.pipeline.tasks()]
    discovery = ctx.served.discovery if ctx.served is not None else None
    if discovery is not None:
        tasks.append(discovery.run)
    if ctx.shared_breakers is not None:
        tasks.append(ctx.shared_breakers.run)
    return tasks


async def serve(
    ctx: ProxyContext,
    host: str,
    port: int,
    *,
    limits: Limits | None = None,
    drain: Drain | None = None,
    listeners: Sequence[socket.socket] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve louter on host:port until cancelled (or drained: `drain.start()`); the bound
    port is reported via task_status. `listeners`: sockets already listening (a worker)."""
    ctx.journal.batch_turns()  # one log write per loop turn; `close` below writes the rest
    try:
        await serve_http(
            make_handler(ctx),
            host,
            port,
            limits=limits or server_limits(ctx.config.server),
            error_body=protocol_error_body,
            background=_background(ctx),
            drain=drain,
            listeners=listeners,
            task_status=task_status,
        )
    finally:
        with trio.CancelScope(shield=True):
            for upstream in ctx.upstreams.values():
                await upstream.transport.aclose()
            if ctx.sessions is not None:
                await ctx.sessions.aclose()
            await ctx.store.aclose()
            ctx.journal.close()
            if ctx.accounting is not None:  # the usage file gets what is queued
                await trio.to_thread.run_sync(ctx.accounting.close)
