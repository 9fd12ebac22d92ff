"""The OpenAI Chat Completions front door: `POST /v1/chat/completions`, `GET /v1/models`.

OpenAI-protocol (and mock) backends are same-dialect: the request gets its model name
mapped, the backend's defaults and key, and the answer passes through byte for byte.
The request is planned per candidate backend (`attempts.run` may fail over to a backend
of another dialect, which then goes through the neutral model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from louter.config import Backend
from louter.convert import openai
from louter.convert.dialect import DIALECTS
from louter.convert.escape import header_value
from louter.convert.model import Request as NeutralRequest
from louter.convert.model import ResponseMeta
from louter.errors import ConversionError
from louter.http.message import HeaderList, Request, Responder
from louter.http.target import check_model
from louter.proxy.attempts import Plan, run
from louter.proxy.bridge import (
    TEXT_CALL_CHECKS,
    ClientSide,
    backend_dialect,
    conversation,
    needs_tool_stage,
)
from louter.proxy.context import ProxyContext
from louter.proxy.exchange import Exchange
from louter.proxy.passthrough import Forward, Repair
from louter.proxy.routing import Route
from louter.proxy.taps import OpenAITap
from louter.proxy.upstreams import rename_token_field
from louter.proxy.usage import LazyRequest

CHAT_PATH = "/v1/chat/completions"
FORWARDED_HEADERS = ("accept", "openai-organization", "openai-project", "user-agent")


def parse_body(exchange: Exchange, request: Request) -> dict[str, Any]:
    """The request body as a JSON object, logged; `ConversionError` (400) otherwise."""
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        exchange.log_client_request(request, valid_json=False)
        raise ConversionError(f"request body is not valid JSON: {exc}") from None
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, str):  # a Gemini body has none: its door set the path's model
        exchange.model = model
    exchange.log_client_request(request, valid_json=True)
    if not isinstance(data, dict):
        raise ConversionError("request body must be a JSON object")
    return data


def prepare_request(body: dict[str, Any], backend: Backend, model: str) -> dict[str, Any]:
    """Apply the backend's model name, default max_tokens/temperature and token field."""
    body["model"] = model
    field = backend.max_tokens_field
    rename_token_field(body, field)
    if backend.max_tokens is not None and field not in body:
        body[field] = backend.max_tokens
    if backend.temperature is not None and "temperature" not in body:
        body["temperature"] = backend.temperature
    return body


def client_model(body: dict[str, Any]) -> str:
    """The body's model name, checked to be safe to route and to send upstream (400)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ConversionError("'model' is required and must be a non-empty string")
    return check_model(model)


_SSE: HeaderList = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def _conversion(
    ctx: ProxyContext,
    exchange: Exchange,
    request: Request,
    body: dict[str, Any],
    parsed: NeutralRequest,
    route: Route,
    *,
    same: bool,
) -> Plan:
    """Through the neutral model: a backend of another dialect, or the tool stage."""
    forwarded = prepare_request(dict(body), route.backend, route.model) if same else None
    legacy = openai.legacy_functions(body)
    meta = ResponseMeta(
        id="chatcmpl-" + exchange.request_id,
        model=parsed.model,
        created=int(ctx.clock()),
        include_usage=parsed.include_usage,
        legacy_functions=legacy,
    )
    auth = request.headers.get("authorization", "")
    client = ClientSide(
        dialect=DIALECTS["openai"],
        meta=meta,
        emitter=lambda: openai.StreamEmitter(meta),
        stream_headers=_SSE,
        key=auth[7:] if auth.lower().startswith("bearer ") else None,
        notes=openai.legacy_dropped if legacy else None,
    )
    return conversation(ctx, parsed, route, client, body=forwarded)


def _headers(request: Request, upstream_headers: HeaderList, backend: Backend) -> HeaderList:
    headers = list(upstream_headers)
    for name in FORWARDED_HEADERS:
        value = request.headers.get(name)
        if value is not None:
            headers.append((name.encode("latin-1"), header_value(value, name)))
    client_auth = request.headers.get("authorization")
    if not backend.api_key and client_auth is not None:
        headers.append((b"authorization", header_value(client_auth, "authorization")))
    return headers


async def chat_completions(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    body = parse_body(exchange, request)
    exchange.model = model = client_model(body)
    has_tools = bool(body.get("tools") or body.get("functions"))

    parsed = LazyRequest(lambda: openai.parse_request(body))

    def plan(route: Route) -> Plan:
        same = backend_dialect(route.backend, "openai") == "openai"
        if same and not needs_tool_stage(route.backend, has_tools):
            return _forward(ctx, request, body, route)
        if same and body.get("stream") is not True:
            # Whole answers pass through too unless their text may hold a tool call.
            repair = Repair(
                _text_call_check(route.backend),
                lambda: _conversion(ctx, exchange, request, body, parsed(), route, same=True),
            )
            return _forward(ctx, request, body, route, repair)
        return _conversion(ctx, exchange, request, body, parsed(), route, same=same)

    await run(ctx, exchange, responder, ctx.router.candidates(model), plan, parsed.estimate)


def _text_call_check(backend: Backend) -> Callable[[bytes], bool]:
    """Whether a Chat Completions answer's message text may hold a tool call."""
    may_hold_call = TEXT_CALL_CHECKS[backend.tool_format]

    def needed(body: bytes) -> bool:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False  # passed on, and reported as not JSON
        choices = data.get("choices") if isinstance(data, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            message = choice.get("message") if isinstance(choice, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str) and may_hold_call(content):
                return True
        return False

    return needed


def _forward(
    ctx: ProxyContext,
    request: Request,
    body: dict[str, Any],
    route: Route,
    repair: Repair | None = None,
) -> Plan:
    """Same dialect: the client's body with the backend's model name and defaults."""
    upstream = ctx.upstreams[route.backend.name]
    forwarded = orjson.dumps(prepare_request(dict(body), route.backend, route.model))
    headers = _headers(request, upstream.headers, route.backend)
    return Forward(
        route,
        "openai",
        CHAT_PATH,
        headers,
        forwarded,
        make_tap=OpenAITap,
        error_event=openai.error_event,
        repair=repair,
    )


async def list_models(
    ctx: ProxyContext, exchange: Exchange, request: Request, responder: Responder
) -> None:
    data = [
        {"id": model, "object": "model", "created": 0, "owned_by": backend}
        for model, backend in ctx.router.client_models()
    ]
    await responder.send_json(200, {"object": "list", "data": data})


async def get_model(
    ctx: ProxyContext, exchange: Exchange, model: str, responder: Responder
) -> None:
    """`GET /v1/models/{model}`: every name is served (unknown ones by the default backend)."""
    backend = ctx.router.owner(model).name
    await responder.send_json(
        200, {"id": model, "object": "model", "created": 0, "owned_by": backend}
    )
