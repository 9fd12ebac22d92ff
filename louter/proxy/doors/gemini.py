"""The Gemini door's spec (design §5 "Gemini"), under both `/v1beta/` and `/v1/`:

    POST models/{model}:generateContent
    POST models/{model}:streamGenerateContent   (`alt=sse` -> SSE; else one JSON array)
    POST models/{model}:countTokens             (local estimate unless the backend is Gemini)
    GET  models, GET models/{model}

Model ids may contain `:`; the action is split off at the last one (`split_target`, the
one special action of this door). The key comes from `x-goog-api-key` or `?key=`. A
Gemini (or mock) backend gets the body unchanged with the backend's model name in the path.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import unquote

from louter.convert import gemini
from louter.convert.dialect import DIALECTS
from louter.convert.escape import header_value
from louter.convert.model import ResponseMeta
from louter.http.message import HeaderList, HttpRequest
from louter.http.target import check_model
from louter.proxy.attempts import Plan
from louter.proxy.bridge import ClientSide
from louter.proxy.context import ProxyContext
from louter.proxy.door import SSE_HEADERS, DoorSpec
from louter.proxy.passthrough import Forward, Repair
from louter.proxy.pipeline import Call
from louter.proxy.routing import Route
from louter.proxy.taps import DialectTap
from louter.proxy.usage import LazyRequest

PREFIXES = ("/v1beta/models/", "/v1/models/", "/v2/models/")
ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")
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


def _target(http: HttpRequest, body: dict[str, Any]) -> tuple[str, bool]:
    model, action = split_target(http.path)
    return model, action == "streamGenerateContent"


def _sse(call: Call) -> bool:
    return call.stream and call.http.query.get("alt") == "sse"


def _client(ctx: ProxyContext, call: Call, lazy: LazyRequest) -> ClientSide:
    sse = _sse(call)
    meta = ResponseMeta(
        id=call.exchange.request_id, model=call.model, created=int(ctx.clock()), include_usage=True
    )
    return ClientSide(
        dialect=DIALECTS["gemini"],
        meta=meta,
        emitter=lambda: gemini.StreamEmitter(meta, sse=sse),
        stream_headers=SSE_HEADERS if sse else _ARRAY,
        key=SPEC.key(call.http),
    )


def _same_body(call: Call, route: Route) -> dict[str, Any]:
    return call.body


def _plan(ctx: ProxyContext, call: Call, route: Route, action: str | None) -> Plan:
    """Same dialect: the body as sent, the backend's model name in the path."""
    upstream = ctx.upstreams[route.backend.name]
    headers = list(upstream.headers)
    key = SPEC.key(call.http)
    if key and route.backend.takes_client_key(ctx.gate is not None):
        headers.append((b"x-goog-api-key", header_value(key, "x-goog-api-key")))
    sse = "alt=sse" in (action or "")
    return Forward(
        route,
        "gemini",
        gemini.model_path(route.model, action),
        headers,
        call.http.body,
        make_tap=functools.partial(DialectTap, "gemini", sse=sse),
        error_event=DIALECTS["gemini"].error_event,
        stream=call.stream,
    )


def _forward(ctx: ProxyContext, call: Call, route: Route, repair: Repair | None) -> Plan:
    action = None
    if call.stream:
        action = "streamGenerateContent" + ("?alt=sse" if _sse(call) else "")
    return _plan(ctx, call, route, action)


def _count_forward(ctx: ProxyContext, call: Call, route: Route, repair: Repair | None) -> Plan:
    return _plan(ctx, call, route, "countTokens")


def _has_tools(body: dict[str, Any]) -> bool:
    return bool(body.get("tools"))


SPEC = DoorSpec(
    dialect="gemini",
    target=_target,
    has_tools=_has_tools,
    client=_client,
    forward=_forward,
    same_body=_same_body,
    count_forward=_count_forward,
)


def model_list(models: list[tuple[str, str]]) -> dict[str, Any]:
    return gemini.model_list([model for model, _ in models])


def model_entry(model: str, backend: str) -> dict[str, Any]:
    return gemini.model_entry(model)
