"""The Anthropic Messages front door (design §5 "Anthropic Messages"):

    POST /v1/messages                 JSON or SSE (`?beta=true` accepted)
    POST /v1/messages/count_tokens    local estimate unless the backend speaks Anthropic
    GET  /v1/models                   Anthropic's list shape when `anthropic-version` is sent

The key comes from `x-api-key` or `Authorization: Bearer`; any `anthropic-version` date
is accepted. An Anthropic (or mock) backend gets the body with only the model name
changed, plus the client's `anthropic-version` and `anthropic-beta`; any other backend
goes through the neutral model.
"""

from __future__ import annotations

from typing import Any

import orjson

from louter.convert import anthropic
from louter.convert.anthropic import wire as anthropic_wire
from louter.convert.dialect import DIALECTS
from louter.convert.escape import header_value
from louter.convert.model import ResponseMeta
from louter.http.message import HeaderList, Request, Responder
from louter.proxy.attempts import Plan, run
from louter.proxy.bridge import ClientSide, backend_dialect, conversation, needs_tool_stage
from louter.proxy.context import ProxyContext
from louter.proxy.counting import answer_count
from louter.proxy.exchange import Exchange
from louter.proxy.openai_door import client_model, parse_body
from louter.proxy.passthrough import Forward
from louter.proxy.routing import Route
from louter.proxy.taps import DialectTap
from louter.proxy.usage import LazyRequest

_SSE: HeaderList = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
FORWARDED = ("anthropic-beta", "user-agent")


def client_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def _model(exchange: Exchange, body: dict[str, Any]) -> str:
    exchange.model = model = client_model(body)
    return model


async def messages(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    body = parse_body(exchange, request)
    model = _model(exchange, body)
    has_tools = bool(body.get("tools"))
    stream = bool(body.get("stream"))

    parsed = LazyRequest(lambda: anthropic.parse_request(body))

    def client() -> ClientSide:
        meta = ResponseMeta(
            id="msg_" + exchange.request_id.replace("-", ""),
            model=parsed().model,
            created=int(ctx.clock()),
            input_tokens=parsed.estimate(),
        )
        return ClientSide(
            dialect=DIALECTS["anthropic"],
            meta=meta,
            emitter=lambda: anthropic.StreamEmitter(meta),
            stream_headers=_SSE,
            key=client_key(request),
        )

    def plan(route: Route) -> Plan:
        same = backend_dialect(route.backend, "anthropic") == "anthropic"
        if same and not needs_tool_stage(route.backend, has_tools):
            return _forward(ctx, request, route, {**body, "model": route.model}, stream=stream)
        forwarded = {**body, "model": route.model} if same else None
        return conversation(ctx, parsed(), route, client(), body=forwarded)

    await run(ctx, exchange, responder, ctx.router.candidates(model), plan, parsed.estimate)


async def count_tokens(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    body = parse_body(exchange, request)
    routes = ctx.router.candidates(_model(exchange, body))
    if backend_dialect(routes[0].backend, "anthropic") == "anthropic":
        same = [r for r in routes if backend_dialect(r.backend, "anthropic") == "anthropic"]

        def plan(route: Route) -> Plan:
            return _forward(ctx, request, route, {**body, "model": route.model}, count=True)

        await run(ctx, exchange, responder, same, plan, _no_tokens)
        return
    route = routes[0]
    body.setdefault("max_tokens", 1)  # count_tokens bodies carry none
    parsed = anthropic.parse_request(body)
    await answer_count(ctx, exchange, parsed, route, anthropic.emit_count_response, responder)


def _no_tokens() -> int:
    return 0


def _forward(
    ctx: ProxyContext,
    request: Request,
    route: Route,
    body: dict[str, Any],
    *,
    stream: bool = False,
    count: bool = False,
) -> Plan:
    """Same dialect: the body with the backend's model name; the client's version/betas."""
    upstream = ctx.upstreams[route.backend.name]
    headers = _headers(request, upstream.headers, route.backend.api_key)
    return Forward(
        route,
        "anthropic",
        "/v1/messages/count_tokens" if count else "/v1/messages",
        headers,
        orjson.dumps(body),
        make_tap=lambda: DialectTap("anthropic"),
        error_event=_error_event,
        stream=stream,
    )


def _headers(request: Request, base: HeaderList, backend_key: str | None) -> HeaderList:
    version = request.headers.get("anthropic-version")
    headers = [(n, v) for n, v in base if not (version and n == b"anthropic-version")]
    if version:
        headers.append((b"anthropic-version", header_value(version, "anthropic-version")))
    elif not any(n == b"anthropic-version" for n, _ in headers):
        headers.append((b"anthropic-version", anthropic_wire.VERSION))
    for name in FORWARDED:
        value = request.headers.get(name)
        if value is not None:
            headers.append((name.encode("latin-1"), header_value(value, name)))
    key = client_key(request)
    if key and not backend_key:
        headers.append((b"x-api-key", header_value(key, "x-api-key")))
    return headers


def _error_event(message: str) -> bytes:
    payload = anthropic.error_body(502, message)
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


async def list_models(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    names = [model for model, _ in ctx.router.client_models()]
    await responder.send_json(200, anthropic.model_list(names))
