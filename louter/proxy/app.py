"""The application: routes requests to front-door handlers and renders errors.

`build_context` assembles everything a handler needs once; `make_handler` returns the
function the HTTP server calls per request; `serve` runs both on a port.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from louter.config import Config
from louter.convert.dialects import DIALECTS
from louter.errors import LouterError
from louter.http.message import Request, Responder
from louter.http.server import Limits
from louter.http.server import serve as serve_http
from louter.proxy import anthropic_door, gemini_door, openai_door
from louter.proxy.context import ProxyContext
from louter.proxy.exchange import Exchange, RequestIds
from louter.proxy.journal import Entry, Journal
from louter.proxy.routing import Router
from louter.proxy.upstreams import open_upstreams

HandlerFn = Callable[[ProxyContext, Exchange, Request, Responder], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    handler: HandlerFn
    dialect: str


async def health(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    backends = {
        b.name: {
            "protocol": b.protocol,
            "url": b.url or None,
            "models": sorted(b.model_mapping),
            "state": "healthy",
        }
        for b in ctx.config.backends
    }
    await responder.send_json(
        200, {"status": "ok", "default": ctx.router.default.name, "backends": backends}
    )


def _is_gemini_client(request: Request) -> bool:
    headers = request.headers
    return "x-goog-api-key" in headers or "x-goog-api-client" in headers or "key" in request.query


async def list_models(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    """`GET /v1/models` in the asking client's own shape (the Gemini SDK uses it too)."""
    if _is_gemini_client(request):
        exchange.format = "gemini"
        await gemini_door.list_models(ctx, exchange, request, responder)
        return
    if "anthropic-version" in request.headers:
        exchange.format = "anthropic"
        await anthropic_door.list_models(ctx, exchange, request, responder)
        return
    await openai_door.list_models(ctx, exchange, request, responder)


async def model_path(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    """`/v1/models/{...}`: Gemini actions, or one model in the OpenAI or Gemini shape."""
    if request.method == "GET" and not _is_gemini_client(request):
        exchange.format = "openai"
        model = request.path[len("/v1/models/") :]
        await openai_door.get_model(ctx, exchange, model, responder)
        return
    await gemini_door.model_action(ctx, exchange, request, responder)


ROUTES: Mapping[str, Endpoint] = {
    "/v1/chat/completions": Endpoint("POST", openai_door.chat_completions, "openai"),
    "/chat/completions": Endpoint("POST", openai_door.chat_completions, "openai"),
    "/v1/models": Endpoint("GET", list_models, "openai"),
    "/v1beta/models": Endpoint("GET", gemini_door.list_models, "gemini"),
    "/v1/messages": Endpoint("POST", anthropic_door.messages, "anthropic"),
    "/v1/messages/count_tokens": Endpoint("POST", anthropic_door.count_tokens, "anthropic"),
    "/health": Endpoint("GET", health, "openai"),
}
# Paths with a parameter (`models/{model}:{action}`): the handler checks the method.
PREFIX_ROUTES: tuple[tuple[str, Endpoint], ...] = (
    ("/v1beta/models/", Endpoint("*", gemini_door.model_action, "gemini")),
    ("/v1/models/", Endpoint("*", model_path, "gemini")),
)


def match(path: str) -> Endpoint | None:
    endpoint = ROUTES.get(path)
    if endpoint is not None:
        return endpoint
    return next((e for prefix, e in PREFIX_ROUTES if path.startswith(prefix)), None)


def dialect_for_path(path: str) -> str:
    """The error dialect for a path no endpoint matched."""
    if path.startswith("/v1beta/"):
        return "gemini"
    return "anthropic" if path.startswith("/v1/messages") else "openai"


def make_handler(ctx: ProxyContext) -> Callable[[Request, Responder], Awaitable[None]]:
    async def handle(request: Request, responder: Responder) -> None:
        path = request.path
        endpoint = match(path)
        exchange = Exchange(
            ctx.journal,
            ctx.ids.next(),
            path,
            endpoint.dialect if endpoint else dialect_for_path(path),
        )
        try:
            if endpoint is None:
                raise LouterError(f"unknown path {path}", status_hint=404)
            if endpoint.method not in ("*", request.method):
                await _method_not_allowed(exchange, endpoint, request, responder)
                return
            await endpoint.handler(ctx, exchange, request, responder)
        except LouterError as exc:
            await _fail(exchange, responder, exc.status_hint, exc.message, exc)
        except Exception as exc:  # noqa: BLE001 - one bad request must not kill the server
            await _fail(
                exchange,
                responder,
                500,
                f"internal error: {exc!r}",
                exc,
                trace=traceback.format_exc(),
            )

    return handle


async def _method_not_allowed(
    exchange: Exchange, endpoint: Endpoint, request: Request, responder: Responder
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
    exchange.log("error", status=status, error=message, error_type=type(exc).__name__, **extra)
    if responder.started:
        return
    body = DIALECTS[exchange.format].error_body(status, message)
    exchange.log("client_response", status=status, payload=body)
    headers = [(b"x-louter-request-id", exchange.request_id.encode("ascii"))]
    await responder.send_json(status, body, headers)


def build_context(
    config: Config,
    *,
    default_backend: str,
    log_file: Path | None = None,
    echo: Callable[[Entry], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> ProxyContext:
    """Everything handlers need. Raises `ConfigError` for an unknown default backend."""
    router = Router(config, default_backend)
    journal = Journal(log_file, clock=clock, echo=echo, payloads=config.performance.log_requests)
    return ProxyContext(config, router, open_upstreams(config, clock), journal, RequestIds(), clock)


async def serve(
    ctx: ProxyContext,
    host: str,
    port: int,
    *,
    limits: Limits | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve louter on host:port until cancelled; the bound port is reported via task_status."""
    try:
        await serve_http(make_handler(ctx), host, port, limits=limits, task_status=task_status)
    finally:
        with trio.CancelScope(shield=True):
            for upstream in ctx.upstreams.values():
                await upstream.transport.aclose()
            ctx.journal.close()
