"""Token counting by the backend (`openai_token_counting_mode = "backend"`).

Chat Completions has no counting endpoint, so louter asks the backend for a one-token
completion of the same request and reads `usage.prompt_tokens`: exact for the backend's
own tokenizer and template, at the cost of one token of generation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import orjson

from louter.convert.model import Request
from louter.convert.openai import DIALECT as OPENAI
from louter.convert.tokens import estimate_tokens
from louter.errors import ConversionError, UpstreamError
from louter.http.message import Responder
from louter.proxy.context import ProxyContext
from louter.proxy.exchange import Exchange
from louter.proxy.routing import Route


async def answer_count(
    ctx: ProxyContext,
    exchange: Exchange,
    request: Request,
    route: Route,
    emit: Callable[[int], dict[str, Any]],
    responder: Responder,
) -> None:
    """Answer a counting request for a backend that cannot count in the client's dialect:
    exactly by the backend (`openai_token_counting_mode = "backend"`, OpenAI protocol),
    else by estimate. `emit` writes the count in the client's dialect."""
    exchange.backend = route.backend.name
    by_backend = (
        route.backend.protocol == "openai"
        and ctx.config.performance.openai_token_counting_mode == "backend"
    )
    if by_backend:
        total = await count_with_backend(ctx, exchange, request, route)
    else:
        total = estimate_tokens(request)
    answer = emit(total)
    counted_by = "backend" if by_backend else "estimate"
    exchange.log("client_response", status=200, payload=answer, counted_by=counted_by)
    await responder.send_json(200, answer)


async def count_with_backend(
    ctx: ProxyContext, exchange: Exchange, request: Request, route: Route
) -> int:
    """The backend's own prompt-token count of `request` (an OpenAI-protocol backend)."""
    upstream = ctx.upstreams[route.backend.name]
    probe = dataclasses.replace(request, max_tokens=1, stream=False)
    body = upstream.prepare("openai", OPENAI.emit_request(probe, route.model))
    forwarded = orjson.dumps(body)
    exchange.log("backend_request", raw_payload=forwarded, dialect="openai", purpose="count")
    response = await upstream.transport.request(
        upstream.path("openai", route.model, False),
        upstream.headers,
        forwarded,
        first_byte_timeout=route.backend.timeout_seconds or ctx.config.performance.timeout_seconds,
    )
    raw = await response.read()
    if response.status != 200:  # some servers echo the key they refused
        raw = ctx.scrub.keys_out(raw)
    exchange.log("backend_response", status=response.status, dialect="openai", raw_payload=None,
                 payload=raw.decode("utf-8", "replace"))  # fmt: skip
    if response.status != 200:
        raise UpstreamError(OPENAI.error_message(raw), status_hint=response.status)
    try:
        answer = OPENAI.parse_response(orjson.loads(raw), lambda n: f"call_{n}")
    except orjson.JSONDecodeError as exc:
        raise ConversionError(f"backend answer is not JSON: {exc}", status_hint=502) from None
    if answer.usage is None:
        raise UpstreamError("the backend reported no usage to count tokens with")
    return answer.usage.input_tokens
