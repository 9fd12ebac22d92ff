"""The OpenAI Chat Completions door's spec: `POST /v1/chat/completions`.

Same-dialect backends get the body with the backend's model name, its defaults
(`max_tokens`, `temperature`) and token-limit field; a whole answer passes through unless
its text may hold a tool call the backend's `tool_format` extracts (then it is repaired
through the tool stage).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from louter.config import Backend
from louter.convert import openai
from louter.convert.dialect import DIALECTS
from louter.convert.escape import header_value
from louter.convert.model import ResponseMeta
from louter.convert.openai.head import Head, read_head, with_model
from louter.proxy.attempts import Plan
from louter.proxy.bridge import TEXT_CALL_CHECKS, ClientSide
from louter.proxy.context import ProxyContext
from louter.proxy.door import SSE_HEADERS, DoorSpec, body_model
from louter.proxy.hidden_usage import ask_usage
from louter.proxy.passthrough import Forward, Repair
from louter.proxy.pipeline import Call, Observers
from louter.proxy.routing import Route
from louter.proxy.taps import OpenAITap, OpenAIUsageTap
from louter.proxy.upstreams import rename_token_field
from louter.proxy.usage import LazyRequest
from louter.proxy.watch import RelayFactory, openai_watch

CHAT_PATH = "/v1/chat/completions"
FORWARDED_HEADERS = ("accept", "openai-organization", "openai-project", "user-agent")


def prepare_request(body: dict[str, Any], backend: Backend, model: str) -> dict[str, Any]:
    """Apply the backend's model name, default max_tokens/temperature and token field
    (`renames_or_adds` tells whether more than the model changes)."""
    body["model"] = model
    field = backend.max_tokens_field
    rename_token_field(body, field)
    if backend.max_tokens is not None and field not in body:
        body[field] = backend.max_tokens
    if backend.temperature is not None and "temperature" not in body:
        body["temperature"] = backend.temperature
    return body


def renames_or_adds(has: Callable[[str], bool], backend: Backend) -> bool:
    """Whether `prepare_request` changes more than the model of a body with the top-level
    keys `has` says it has: a token limit renamed, a default added."""
    field = backend.max_tokens_field
    if has(field):
        return backend.temperature is not None and not has("temperature")
    other = "max_completion_tokens" if field == "max_tokens" else "max_tokens"
    return (
        has(other)
        or backend.max_tokens is not None
        or (backend.temperature is not None and not has("temperature"))
    )


def _target(http: Any, body: dict[str, Any]) -> tuple[str, bool]:
    return body_model(body), body.get("stream") is True


def _client(ctx: ProxyContext, call: Call, lazy: LazyRequest) -> ClientSide:
    parsed = lazy()
    legacy = openai.legacy_functions(call.body)
    meta = ResponseMeta(
        id="chatcmpl-" + call.exchange.request_id,
        model=parsed.model,
        created=int(ctx.clock()),
        include_usage=parsed.include_usage,
        legacy_functions=legacy,
    )
    return ClientSide(
        dialect=DIALECTS["openai"],
        meta=meta,
        emitter=lambda: openai.StreamEmitter(meta),
        stream_headers=SSE_HEADERS,
        key=SPEC.key(call.http),
        notes=openai.legacy_dropped if legacy else None,
    )


def _same_body(call: Call, route: Route) -> dict[str, Any]:
    return prepare_request(dict(call.body), route.backend, route.model)


def _forward(ctx: ProxyContext, call: Call, route: Route, repair: Repair | None) -> Plan:
    """Same dialect: the client's body with the backend's model name and defaults."""
    upstream = ctx.upstreams[route.backend.name]
    headers = list(upstream.headers)
    http = call.http
    for name in FORWARDED_HEADERS:
        value = http.headers.get(name)
        if value is not None:
            headers.append((name.encode("latin-1"), header_value(value, name)))
    client_auth = http.headers.get("authorization")
    if client_auth is not None and route.backend.takes_client_key(ctx.gate is not None):
        headers.append((b"authorization", header_value(client_auth, "authorization")))
    data, hide = _same_bytes(call, route)
    return Forward(
        route,
        "openai",
        CHAT_PATH,
        headers,
        data,
        make_tap=OpenAITap if ctx.journal.keeps_payloads else OpenAIUsageTap,
        error_event=DIALECTS["openai"].error_event,
        repair=repair,
        hide_usage=hide,
    )


def _same_bytes(call: Call, route: Route) -> tuple[bytes, bool]:
    """The body `route`'s backend gets, and whether louter asked for the usage chunk
    (usage accounting: the client does not get it). The client's bytes with the backend's
    model name written in (`with_model`) when nothing else changes, so a large body is not
    parsed; else the parsed body, prepared and serialised."""
    head = call.head
    if (
        isinstance(head, Head)
        and call.raw is not None
        and call.exchange.meter is None
        and not renames_or_adds(head.has, route.backend)
    ):
        data = with_model(call.raw, head.model, route.model)
        if data is not None:
            return data, False
    body = _same_body(call, route)
    hide = call.exchange.meter is not None and ask_usage(body)  # accounting needs usage
    return orjson.dumps(body), hide


def _text_call_check(backend: Backend) -> Callable[[Any], bool]:
    """Whether a Chat Completions answer (parsed: the JSON value, or a non-dict when it
    is not JSON) holds message text that may be a tool call."""
    may_hold_call = TEXT_CALL_CHECKS[backend.tool_format]

    def needed(data: Any) -> bool:
        choices = data.get("choices") if isinstance(data, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            message = choice.get("message") if isinstance(choice, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str) and may_hold_call(content):
                return True
        return False

    return needed


def _watch(ctx: ProxyContext, call: Call, observers: Observers) -> RelayFactory:
    """A passthrough stream read by the loop guard (`proxy/watch.py`)."""
    options = call.body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return openai_watch(observers, call.exchange.request_id, int(ctx.clock()), include_usage)


def _has_tools(body: dict[str, Any]) -> bool:
    return bool(body.get("tools") or body.get("functions"))


SPEC = DoorSpec(
    dialect="openai",
    target=_target,
    has_tools=_has_tools,
    client=_client,
    forward=_forward,
    same_body=_same_body,
    text_call=_text_call_check,
    watch=_watch,
    head=read_head,
)


def model_list(models: list[tuple[str, str]]) -> dict[str, Any]:
    data = [model_entry(model, backend) for model, backend in models]
    return {"object": "list", "data": data}


def model_entry(model: str, backend: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": backend}
