"""The Gemini front door (design §5 "Gemini"), under both `/v1beta/` and `/v1/`:

    POST models/{model}:generateContent
    POST models/{model}:streamGenerateContent   (`alt=sse` -> SSE; else one JSON array)
    POST models/{model}:countTokens             (local estimate unless the backend is Gemini)
    GET  models, GET models/{model}

Model ids may contain `:`; the action is split off at the last one. The key comes from
`x-goog-api-key` or `?key=`. A Gemini (or mock) backend gets the body unchanged with the
backend's model name in the path; any other backend goes through the neutral model.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import unquote

import orjson

from louter.convert import gemini
from louter.convert.dialect import DIALECTS
from louter.convert.escape import header_value
from louter.convert.model import ResponseMeta
from louter.errors import LouterError
from louter.http.message import HeaderList, Request, Responder
from louter.http.target import check_model
from louter.proxy.attempts import Plan, run
from louter.proxy.bridge import ClientSide, backend_dialect, conversation, needs_tool_stage
from louter.proxy.context import ProxyContext
from louter.proxy.counting import answer_count
from louter.proxy.exchange import Exchange
from louter.proxy.openai_door import parse_body
from louter.proxy.passthrough import Forward
from louter.proxy.routing import Route
from louter.proxy.taps import DialectTap
from louter.proxy.usage import LazyRequest

PREFIXES = ("/v1beta/models/", "/v1/models/")
ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")
_SSE: HeaderList = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_ARRAY: HeaderList = [(b"content-type", b"application/json")]


def split_target(path: str) -> tuple[str, str | None]:
    """`/v1beta/models/gpt-oss:20b:generateContent` -> ("gpt-oss:20b", "generateContent");
    without an action (`models/{m}`) the action is None. The model (percent-decoded) must
    be a safe name (`check_model`): a 400 otherwise."""
    rest = unquote(next(path[len(p) :] for p in PREFIXES if path.startswith(p)))
    model, sep, action = rest.rpartition(":")
    if sep and action in ACTIONS:
        return check_model(model), action
    return check_model(rest), None


def client_key(request: Request) -> str | None:
    key = request.headers.get("x-goog-api-key")
    if key:
        return key
    key = request.query.get("key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


async def model_action(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    """Every `models/...` path: dispatch on the action and the method."""
    model, action = split_target(request.path)
    if action is None:
        if request.method != "GET":
            raise LouterError(f"unknown action in {request.path}", status_hint=404)
        await get_model(ctx, exchange, model, responder)
        return
    if request.method != "POST":
        message = f"{action} needs POST, not {request.method}"
        raise LouterError(message, status_hint=405, headers=((b"allow", b"POST"),))
    exchange.model = model
    body = parse_body(exchange, request)
    exchange.model = model
    await _ACTIONS[action](ctx, exchange, request, responder, model, body)


async def _generate(
    ctx: ProxyContext,
    exchange: Exchange,
    request: Request,
    responder: Responder,
    model: str,
    body: dict[str, Any],
    *,
    stream: bool = False,
) -> None:
    sse = stream and request.query.get("alt") == "sse"
    has_tools = bool(body.get("tools"))
    action = ("streamGenerateContent" + ("?alt=sse" if sse else "")) if stream else None
    meta = ResponseMeta(
        id=exchange.request_id, model=model, created=int(ctx.clock()), include_usage=True
    )
    client = ClientSide(
        dialect=DIALECTS["gemini"],
        meta=meta,
        emitter=lambda: gemini.StreamEmitter(meta, sse=sse),
        stream_headers=_SSE if sse else _ARRAY,
        key=client_key(request),
    )

    parsed = LazyRequest(lambda: gemini.parse_request(body, model=model, stream=stream))

    def plan(route: Route) -> Plan:
        same = backend_dialect(route.backend, "gemini") == "gemini"
        if same and not needs_tool_stage(route.backend, has_tools):
            return _forward(ctx, request, route, action, stream=stream)
        return conversation(ctx, parsed(), route, client, body=body if same else None)

    await run(ctx, exchange, responder, ctx.router.candidates(model), plan, parsed.estimate)


async def _stream(
    ctx: ProxyContext,
    exchange: Exchange,
    request: Request,
    responder: Responder,
    model: str,
    body: dict[str, Any],
) -> None:
    await _generate(ctx, exchange, request, responder, model, body, stream=True)


async def _count(
    ctx: ProxyContext,
    exchange: Exchange,
    request: Request,
    responder: Responder,
    model: str,
    body: dict[str, Any],
) -> None:
    routes = ctx.router.candidates(model)
    if backend_dialect(routes[0].backend, "gemini") == "gemini":
        gemini_routes = [r for r in routes if backend_dialect(r.backend, "gemini") == "gemini"]
        plan = functools.partial(_forward, ctx, request, action="countTokens")
        await run(ctx, exchange, responder, gemini_routes, plan, _no_tokens)
        return
    route = routes[0]
    parsed = gemini.parse_count_request(body, model=model)
    await answer_count(ctx, exchange, parsed, route, gemini.emit_count_response, responder)


def _no_tokens() -> int:
    return 0


def _forward(
    ctx: ProxyContext,
    request: Request,
    route: Route,
    action: str | None,
    *,
    stream: bool = False,
) -> Plan:
    """Same dialect: the body as sent, the backend's model name in the path."""
    upstream = ctx.upstreams[route.backend.name]
    path = gemini.model_path(route.model, action)
    headers = list(upstream.headers)
    key = client_key(request)
    if key and not route.backend.api_key:
        headers.append((b"x-goog-api-key", header_value(key, "x-goog-api-key")))
    sse = "alt=sse" in (action or "")
    return Forward(
        route,
        "gemini",
        path,
        headers,
        request.body,
        make_tap=lambda: DialectTap("gemini", sse=sse),
        error_event=_stream_error,
        stream=stream,
    )


def _stream_error(message: str) -> bytes:
    return b"data: " + orjson.dumps(gemini.error_body(502, message)) + b"\r\n\r\n"


_ACTIONS = {"generateContent": _generate, "streamGenerateContent": _stream, "countTokens": _count}


async def list_models(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    names = [model for model, _ in ctx.router.client_models()]
    await responder.send_json(200, gemini.model_list(names))


async def get_model(
    ctx: ProxyContext, exchange: Exchange, model: str, responder: Responder
) -> None:
    # Every name is served (unknown ones by the default backend), so every name exists.
    await responder.send_json(200, gemini.model_entry(model))
