"""The OpenAI Responses front door (`POST /v1/responses`, JSON or SSE), for Codex and
`client.responses` (clients.md §2, §7).

A Responses (or mock) backend gets the body with only the model name changed; any other
backend goes through the neutral model. Custom and namespace tools are flattened into
function tools for chat backends and their calls mapped back (`responses.tool_kinds`).
A WebSocket upgrade (`GET /v1/responses`, Codex's first try) is refused by the HTTP
server with 426, after which Codex falls back to POST at once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from louter.convert import responses
from louter.convert.dialect import DIALECTS, Dialect
from louter.convert.model import Response, ResponseMeta
from louter.http.message import HeaderList, Request, Responder
from louter.proxy.attempts import Plan, run
from louter.proxy.bridge import ClientSide, backend_dialect, conversation, needs_tool_stage
from louter.proxy.context import ProxyContext
from louter.proxy.exchange import Exchange
from louter.proxy.openai_door import client_model, parse_body
from louter.proxy.passthrough import Forward
from louter.proxy.routing import Route
from louter.proxy.taps import DialectTap
from louter.proxy.usage import LazyRequest

_SSE: HeaderList = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def client_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def _model(exchange: Exchange, body: dict[str, Any]) -> str:
    exchange.model = model = client_model(body)
    return model


async def create(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    body = parse_body(exchange, request)
    model = _model(exchange, body)
    has_tools = bool(body.get("tools"))
    stream = bool(body.get("stream"))
    parsed = LazyRequest(lambda: responses.parse_request(body))
    kinds = responses.tool_kinds(body)

    def client() -> ClientSide:
        meta = ResponseMeta(
            id="resp_" + exchange.request_id.replace("-", ""),
            model=model,
            created=int(ctx.clock()),
        )
        return ClientSide(
            dialect=_with_kinds(DIALECTS["responses"], kinds),
            meta=meta,
            emitter=lambda: responses.StreamEmitter(meta, kinds=kinds),
            stream_headers=_SSE,
            key=client_key(request),
        )

    def plan(route: Route) -> Plan:
        same = backend_dialect(route.backend, "responses") == "responses"
        forwarded = {**body, "model": route.model}
        if same and not needs_tool_stage(route.backend, has_tools):
            return _forward(ctx, request, route, forwarded, stream=stream)
        return conversation(ctx, parsed(), route, client(), body=forwarded if same else None)

    await run(ctx, exchange, responder, ctx.router.candidates(model), plan, parsed.estimate)


def _with_kinds(dialect: Dialect, kinds: responses.ToolKinds) -> Dialect:
    """The Responses dialect whose whole answers map custom/namespace calls back."""

    def emit(response: Response, meta: ResponseMeta) -> dict[str, Any]:
        return responses.emit_response(response, meta, kinds=kinds)

    return dataclasses.replace(dialect, emit_response=emit)


def _forward(
    ctx: ProxyContext, request: Request, route: Route, body: dict[str, Any], *, stream: bool
) -> Plan:
    """Same dialect: the body with the backend's model name."""
    upstream = ctx.upstreams[route.backend.name]
    headers = list(upstream.headers)
    key = client_key(request)
    if key and not route.backend.api_key:
        headers.append((b"authorization", b"Bearer " + key.encode("latin-1")))
    return Forward(
        route,
        "responses",
        "/v1/responses",
        headers,
        orjson.dumps(body),
        make_tap=lambda: DialectTap("responses"),
        error_event=_error_event,
        stream=stream,
    )


def _error_event(message: str) -> bytes:
    payload = {"type": "error", "code": "server_error", "message": message, "param": None}
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"
