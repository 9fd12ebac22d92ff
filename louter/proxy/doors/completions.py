"""The legacy Completions door's spec: `POST /v1/completions` (the OpenAI SDK's
`client.completions`, and whatever spoke to vLLM or llama-server's text endpoint).

A Completions backend (or the mock) gets the client's body with the backend's model name
and defaults (`max_tokens`, `temperature`), and its answer passes through as bytes:
`echo`, `suffix`, `logprobs` and the rest reach it untouched. Any other backend gets the
prompt as one user message (`convert/completions/request.py`), and what it cannot honour
is refused with a 400 naming the field.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from louter.config import Backend
from louter.convert import completions
from louter.convert.dialect import DIALECTS
from louter.convert.escape import header_value
from louter.convert.model import ResponseMeta
from louter.proxy.attempts import Plan
from louter.proxy.bridge import ClientSide
from louter.proxy.context import ProxyContext
from louter.proxy.door import SSE_HEADERS, DoorSpec, body_model
from louter.proxy.hidden_usage import ask_usage
from louter.proxy.passthrough import Forward, Repair
from louter.proxy.pipeline import Call
from louter.proxy.routing import Route
from louter.proxy.taps import DialectTap
from louter.proxy.usage import LazyRequest

FORWARDED_HEADERS = ("accept", "openai-organization", "openai-project", "user-agent")


def _target(http: Any, body: dict[str, Any]) -> tuple[str, bool]:
    return body_model(body), body.get("stream") is True


def _client(ctx: ProxyContext, call: Call, lazy: LazyRequest) -> ClientSide:
    parsed = lazy()
    meta = ResponseMeta(
        id="cmpl-" + call.exchange.request_id,
        model=parsed.model,
        created=int(ctx.clock()),
        include_usage=parsed.include_usage,
    )
    return ClientSide(
        dialect=DIALECTS["completions"],
        meta=meta,
        emitter=lambda: completions.StreamEmitter(meta),
        stream_headers=SSE_HEADERS,
        key=SPEC.key(call.http),
    )


def _same_body(call: Call, route: Route) -> dict[str, Any]:
    """The client's body with the backend's model name and its defaults."""
    body = {**call.body, "model": route.model}
    backend: Backend = route.backend
    if backend.max_tokens is not None and body.get("max_tokens") is None:
        body["max_tokens"] = backend.max_tokens
    if backend.temperature is not None and body.get("temperature") is None:
        body["temperature"] = backend.temperature
    return body


def _forward(ctx: ProxyContext, call: Call, route: Route, repair: Repair | None) -> Plan:
    upstream = ctx.upstreams[route.backend.name]
    headers = list(upstream.headers)
    for name in FORWARDED_HEADERS:
        value = call.http.headers.get(name)
        if value is not None:
            headers.append((name.encode("latin-1"), header_value(value, name)))
    client_auth = call.http.headers.get("authorization")
    if client_auth is not None and route.backend.takes_client_key(ctx.gate is not None):
        headers.append((b"authorization", header_value(client_auth, "authorization")))
    body = _same_body(call, route)
    hide = call.exchange.meter is not None and ask_usage(body)  # accounting needs usage
    return Forward(
        route,
        "completions",
        completions.PATH,
        headers,
        orjson.dumps(body),
        make_tap=functools.partial(DialectTap, "completions"),
        error_event=DIALECTS["completions"].error_event,
        stream=call.stream,
        hide_usage=hide,
    )


def _has_tools(body: dict[str, Any]) -> bool:
    return False  # the Completions API has no tools


SPEC = DoorSpec(
    dialect="completions",
    target=_target,
    has_tools=_has_tools,
    client=_client,
    forward=_forward,
    same_body=_same_body,
)
