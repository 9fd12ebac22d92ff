"""The OpenAI Responses door's spec (`POST /v1/responses`, JSON or SSE), for Codex and
`client.responses` (clients.md §2, §7).

A Responses (or mock) backend gets the body with only the model name changed. Custom and
namespace tools are flattened into function tools for chat backends and their calls
mapped back (`responses.tool_kinds`), in whole answers and streams alike. A WebSocket
upgrade (`GET /v1/responses`, Codex's first try) is refused by the HTTP server with 426.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from louter.convert import responses
from louter.convert.dialect import DIALECTS
from louter.convert.model import Response, ResponseMeta
from louter.http.message import HttpRequest
from louter.proxy.attempts import Plan
from louter.proxy.bridge import ClientSide
from louter.proxy.context import ProxyContext
from louter.proxy.door import SSE_HEADERS, DoorSpec, body_model
from louter.proxy.passthrough import Forward, Repair
from louter.proxy.pipeline import Call
from louter.proxy.routing import Route
from louter.proxy.taps import DialectTap
from louter.proxy.usage import LazyRequest


def _target(http: HttpRequest, body: dict[str, Any]) -> tuple[str, bool]:
    return body_model(body), bool(body.get("stream"))


def _client(ctx: ProxyContext, call: Call, lazy: LazyRequest) -> ClientSide:
    kinds = responses.tool_kinds(call.body)
    meta = ResponseMeta(
        id="resp_" + call.exchange.request_id.replace("-", ""),
        model=call.model,
        created=int(ctx.clock()),
    )

    def emit(response: Response, meta: ResponseMeta) -> dict[str, Any]:
        return responses.emit_response(response, meta, kinds=kinds)

    return ClientSide(
        dialect=DIALECTS["responses"],
        meta=meta,
        emitter=lambda: responses.StreamEmitter(meta, kinds=kinds),
        stream_headers=SSE_HEADERS,
        key=SPEC.key(call.http),
        emit=emit,
    )


def _same_body(call: Call, route: Route) -> dict[str, Any]:
    return {**call.body, "model": route.model}


def _forward(ctx: ProxyContext, call: Call, route: Route, repair: Repair | None) -> Plan:
    """Same dialect: the body with the backend's model name."""
    upstream = ctx.upstreams[route.backend.name]
    headers = list(upstream.headers)
    key = SPEC.key(call.http)
    if key and route.backend.takes_client_key(ctx.gate is not None):
        headers.append((b"authorization", b"Bearer " + key.encode("latin-1")))
    return Forward(
        route,
        "responses",
        "/v1/responses",
        headers,
        orjson.dumps(_same_body(call, route)),
        make_tap=functools.partial(DialectTap, "responses"),
        error_event=DIALECTS["responses"].error_event,
        stream=call.stream,
    )


def _has_tools(body: dict[str, Any]) -> bool:
    return bool(body.get("tools"))


SPEC = DoorSpec(
    dialect="responses",
    target=_target,
    has_tools=_has_tools,
    client=_client,
    forward=_forward,
    same_body=_same_body,
)
