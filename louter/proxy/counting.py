"""Token counting for a backend that cannot count in the client's dialect.

By estimate (4 characters a token), or by the backend (`openai_token_counting_mode =
"backend"`, OpenAI-protocol backends): Chat Completions has no counting endpoint, so
louter asks for a one-token completion of the same request and reads
`usage.prompt_tokens`, exact for the backend's own tokenizer and template at the cost of
one token of generation. That request goes through the attempt loop like any other
(breaker, retries and failover among the OpenAI-protocol candidates, metrics, upstream
wait); a failure reaches the client in its own envelope with the backend's status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from louter.convert.dialect import DIALECTS, OPENAI, Dialect
from louter.convert.model import Request
from louter.convert.tokens import estimate_tokens
from louter.errors import ConversionError, UpstreamError
from louter.http.message import HeaderList, Responder
from louter.http.upstream import UpstreamResponse
from louter.proxy.attempts import Delivery, Plan, run, without_keys
from louter.proxy.exchange import Exchange
from louter.proxy.routing import Route

if TYPE_CHECKING:
    from louter.proxy.context import ProxyContext

CountAnswer = Callable[[int], dict[str, Any]]  # tokens -> the count answer's body


async def answer_count(
    ctx: ProxyContext,
    exchange: Exchange,
    request: Request,
    routes: Sequence[Route],
    emit: CountAnswer,
    responder: Responder,
) -> None:
    """Answer a counting request for `routes` (the first decides how): by the backend
    (OpenAI protocol, `openai_token_counting_mode = "backend"`), else by estimate. `emit`
    writes the count in the client's dialect (`exchange.format`)."""
    first = routes[0]
    by_backend = (
        first.backend.protocol == "openai"
        and ctx.config.performance.openai_token_counting_mode == "backend"
    )
    if by_backend:
        openai = [route for route in routes if route.backend.protocol == "openai"]
        client = DIALECTS[exchange.format]

        def plan(route: Route) -> Plan:
            return CountPlan(ctx, route, request, client, emit)

        await run(ctx, exchange, responder, openai, plan, lambda: 0)
        return
    exchange.backend = first.backend.name
    await _send(exchange, responder, emit(estimate_tokens(request)), "estimate")


async def _send(
    exchange: Exchange, responder: Responder, answer: dict[str, Any], counted_by: str
) -> None:
    exchange.log("client_response", status=200, payload=answer, counted_by=counted_by)
    await responder.send_json(200, answer, [_request_id(exchange)])


class CountPlan(Plan):
    """A one-token completion of the request; its answer becomes the client's count."""

    __slots__ = ("client", "emit")

    def __init__(
        self,
        ctx: ProxyContext,
        route: Route,
        request: Request,
        client: Dialect,
        emit: CountAnswer,
    ) -> None:
        upstream = ctx.upstreams[route.backend.name]
        probe = dataclasses.replace(request, max_tokens=1, stream=False)
        body = upstream.prepare("openai", OPENAI.emit_request(probe, route.model))
        path = upstream.path("openai", route.model, False)
        super().__init__(route, "openai", path, upstream.headers, orjson.dumps(body))
        self.client = client
        self.emit = emit

    async def relay(
        self,
        ctx: ProxyContext,
        exchange: Exchange,
        response: UpstreamResponse,
        responder: Responder,
    ) -> Delivery:
        if response.status != 200:  # some servers echo the key they refused
            response = await without_keys(ctx, exchange, response)
        raw = await exchange.read_body(response)
        exchange.log("backend_response", status=response.status, dialect="openai",
                     payload=raw.decode("utf-8", "replace"))  # fmt: skip
        if response.status != 200:
            body = self.client.error_body(response.status, OPENAI.error_message(raw))
            exchange.log("client_response", status=response.status, payload=body)
            headers: HeaderList = [(n, v) for n, v in response.headers if n == b"retry-after"]
            await responder.send_json(response.status, body, [*headers, _request_id(exchange)])
            return Delivery()
        total = _prompt_tokens(raw)
        await _send(exchange, responder, self.emit(total), "backend")
        return Delivery(tokens=(total, 0))


def _prompt_tokens(raw: bytes) -> int:
    try:
        answer = OPENAI.parse_response(orjson.loads(raw), lambda n: f"call_{n}")
    except orjson.JSONDecodeError as exc:
        raise ConversionError(f"backend answer is not JSON: {exc}", status_hint=502) from None
    if answer.usage is None:
        raise UpstreamError("the backend reported no usage to count tokens with")
    return answer.usage.input_tokens


def _request_id(exchange: Exchange) -> tuple[bytes, bytes]:
    return (b"x-louter-request-id", exchange.request_id.encode("ascii"))
