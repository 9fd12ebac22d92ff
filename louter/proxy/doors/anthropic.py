"""The Anthropic Messages door's spec (design §5 "Anthropic Messages"):

    POST /v1/messages                 JSON or SSE (`?beta=true` accepted)
    POST /v1/messages/count_tokens    local estimate unless the backend speaks Anthropic
    GET  /v1/models                   Anthropic's list shape when `anthropic-version` is sent

The key comes from `x-api-key` or `Authorization: Bearer`; any `anthropic-version` date
is accepted. An Anthropic (or mock) backend gets the body with only the model name
changed, plus the client's `anthropic-version` and `anthropic-beta`.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from louter.convert import anthropic
from louter.convert.anthropic import wire as anthropic_wire
from louter.convert.dialect import DIALECTS
from louter.convert.escape import header_value
from louter.convert.model import ResponseMeta
from louter.http.message import HeaderList, HttpRequest
from louter.proxy.attempts import Plan
from louter.proxy.bridge import ClientSide
from louter.proxy.context import ProxyContext
from louter.proxy.door import SSE_HEADERS, DoorSpec, body_model
from louter.proxy.passthrough import Forward, Repair
from louter.proxy.pipeline import Call
from louter.proxy.routing import Route
from louter.proxy.taps import DialectTap
from louter.proxy.usage import LazyRequest

FORWARDED = ("anthropic-beta", "user-agent")


def _target(http: HttpRequest, body: dict[str, Any]) -> tuple[str, bool]:
    return body_model(body), bool(body.get("stream"))


def _client(ctx: ProxyContext, call: Call, lazy: LazyRequest) -> ClientSide:
    meta = ResponseMeta(
        id="msg_" + call.exchange.request_id.replace("-", ""),
        model=lazy().model,
        created=int(ctx.clock()),
        input_tokens=lazy.estimate(),
    )
    return ClientSide(
        dialect=DIALECTS["anthropic"],
        meta=meta,
        emitter=lambda: anthropic.StreamEmitter(meta),
        stream_headers=SSE_HEADERS,
        key=SPEC.key(call.http),
    )


def _same_body(call: Call, route: Route) -> dict[str, Any]:
    return {**call.body, "model": route.model}


def _plan(call: Call, route: Route, ctx: ProxyContext, path: str, stream: bool) -> Plan:
    """Same dialect: the body with the backend's model name; the client's version/betas."""
    upstream = ctx.upstreams[route.backend.name]
    forward_key = route.backend.takes_client_key(ctx.gate is not None)
    headers = _headers(call.http, upstream.headers, forward_key)
    return Forward(
        route,
        "anthropic",
        path,
        headers,
        orjson.dumps(_same_body(call, route)),
        make_tap=functools.partial(DialectTap, "anthropic"),
        error_event=DIALECTS["anthropic"].error_event,
        stream=stream,
    )


def _forward(ctx: ProxyContext, call: Call, route: Route, repair: Repair | None) -> Plan:
    return _plan(call, route, ctx, "/v1/messages", call.stream)


def _count_forward(ctx: ProxyContext, call: Call, route: Route, repair: Repair | None) -> Plan:
    return _plan(call, route, ctx, "/v1/messages/count_tokens", False)


def _headers(http: HttpRequest, base: HeaderList, forward_key: bool) -> HeaderList:
    version = http.headers.get("anthropic-version")
    headers = [(n, v) for n, v in base if not (version and n == b"anthropic-version")]
    if version:
        headers.append((b"anthropic-version", header_value(version, "anthropic-version")))
    elif not any(n == b"anthropic-version" for n, _ in headers):
        headers.append((b"anthropic-version", anthropic_wire.VERSION))
    for name in FORWARDED:
        value = http.headers.get(name)
        if value is not None:
            headers.append((name.encode("latin-1"), header_value(value, name)))
    key = SPEC.key(http)
    if key and forward_key:
        headers.append((b"x-api-key", header_value(key, "x-api-key")))
    return headers


def _has_tools(body: dict[str, Any]) -> bool:
    return bool(body.get("tools"))


SPEC = DoorSpec(
    dialect="anthropic",
    target=_target,
    has_tools=_has_tools,
    client=_client,
    forward=_forward,
    same_body=_same_body,
    count_forward=_count_forward,
)


def model_list(models: list[tuple[str, str]]) -> dict[str, Any]:
    return anthropic.model_list([model for model, _ in models])


def model_entry(model: str, backend: str) -> dict[str, Any]:
    """`GET /v1/models/{id}` as Anthropic answers it (one entry of its list)."""
    entry: dict[str, Any] = anthropic.model_list([model])["data"][0]
    return entry
