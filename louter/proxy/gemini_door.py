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

from typing import Any
from urllib.parse import unquote

import orjson

from louter.convert import gemini
from louter.convert.dialects import DIALECTS
from louter.convert.model import ResponseMeta
from louter.convert.tokens import estimate_tokens
from louter.errors import LouterError
from louter.http.message import HeaderList, Request, Responder
from louter.proxy.bridge import ClientSide, backend_dialect, converse, needs_tool_stage
from louter.proxy.context import ProxyContext
from louter.proxy.counting import count_with_backend
from louter.proxy.exchange import Exchange
from louter.proxy.openai_door import parse_body
from louter.proxy.passthrough import forward
from louter.proxy.taps import DialectTap

PREFIXES = ("/v1beta/models/", "/v1/models/")
ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")
_SSE: HeaderList = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_ARRAY: HeaderList = [(b"content-type", b"application/json")]


def split_target(path: str) -> tuple[str, str | None]:
    """`/v1beta/models/gpt-oss:20b:generateContent` -> ("gpt-oss:20b", "generateContent");
    without an action (`models/{m}`) the action is None."""
    rest = unquote(next(path[len(p) :] for p in PREFIXES if path.startswith(p)))
    model, sep, action = rest.rpartition(":")
    if sep and action in ACTIONS:
        return model, action
    return rest, None


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
        raise LouterError(f"{action} needs POST, not {request.method}", status_hint=405)
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
    route = ctx.router.route(model)
    sse = stream and request.query.get("alt") == "sse"
    same = backend_dialect(route.backend, "gemini") == "gemini"
    if same and not needs_tool_stage(route.backend, bool(body.get("tools"))):
        action = ("streamGenerateContent" + ("?alt=sse" if sse else "")) if stream else None
        await _passthrough(ctx, exchange, request, responder, route, body, action, stream=stream)
        return
    parsed = gemini.parse_request(body, model=model, stream=stream)
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
    await converse(ctx, exchange, parsed, route, client, responder, body=body if same else None)


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
    route = ctx.router.route(model)
    if backend_dialect(route.backend, "gemini") == "gemini":
        await _passthrough(ctx, exchange, request, responder, route, body, "countTokens")
        return
    parsed = gemini.parse_count_request(body, model=model)
    exchange.backend = route.backend.name
    by_backend = (
        route.backend.protocol == "openai"
        and ctx.config.performance.openai_token_counting_mode == "backend"
    )
    if by_backend:
        total = await count_with_backend(ctx, exchange, parsed, route)
    else:
        total = estimate_tokens(parsed)
    answer = gemini.emit_count_response(total)
    counted_by = "backend" if by_backend else "estimate"
    exchange.log("client_response", status=200, payload=answer, counted_by=counted_by)
    await responder.send_json(200, answer)


async def _passthrough(
    ctx: ProxyContext,
    exchange: Exchange,
    request: Request,
    responder: Responder,
    route: Any,
    body: dict[str, Any],
    action: str | None,
    *,
    stream: bool = False,
) -> None:
    """Same dialect: the body as sent, the backend's model name in the path."""
    upstream = ctx.upstreams[route.backend.name]
    exchange.backend = route.backend.name
    exchange.backend_format = "gemini"
    path = f"/v1beta/models/{route.model}:{action or 'generateContent'}"
    forwarded = request.body
    exchange.log(
        "backend_request", raw_payload=forwarded, dialect="gemini", backend_model=route.model
    )
    headers = list(upstream.headers)
    key = client_key(request)
    if key and not route.backend.api_key:
        headers.append((b"x-goog-api-key", key.encode("latin-1")))

    async def send() -> Any:
        return await upstream.transport.request(
            path, headers, forwarded, first_byte_timeout=ctx.config.performance.timeout_seconds
        )

    sse = "alt=sse" in (action or "")
    tap = lambda: DialectTap("gemini", sse=sse)  # noqa: E731
    await forward(exchange, send, responder, tap, _stream_error, stream)


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
