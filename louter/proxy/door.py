"""The generic front door: one handler runs every dialect's generate/stream and count
requests, driven by the dialect's `DoorSpec` (`louter/proxy/doors/`), and the pieces
every door shares: the body parse, the client key, the SSE response headers.

    body -> (model, stream) from the spec -> pipeline.before -> route & attempts -> relay

A door with a `head` reader (Chat Completions) does not parse a body it can read the head
of: `call.body` parses it when something asks (a stage, a conversion), and a
same-dialect backend may get the client's bytes with only the model name written in.

Per candidate backend: a backend of the client's dialect gets the client's body
(the spec's `forward`: model name, defaults, forwarded headers) and its answer passes
through as bytes, unless the answer needs the tool stage or an enabled pipeline stage
needs the neutral model (one that only records answers does not: `recording.py`); any
other backend, or those cases, go through the neutral model (`bridge.conversation`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from louter.convert.dialect import DIALECTS
from louter.convert.sse import STREAM_HEADERS
from louter.errors import ConversionError, LouterError
from louter.http.message import HeaderList, HttpRequest, Responder, encode_headers
from louter.http.target import check_model
from louter.proxy.addressing import check_address
from louter.proxy.attempts import Plan, run
from louter.proxy.bridge import ClientSide, backend_dialect, conversation, needs_tool_stage
from louter.proxy.counting import answer_count
from louter.proxy.exchange import Exchange
from louter.proxy.local import answer_locally
from louter.proxy.passthrough import Forward as ForwardPlan
from louter.proxy.passthrough import Repair
from louter.proxy.pipeline import NOT_JSON, NOT_OBJECT, Body, Call, Observers, UnparsedCall
from louter.proxy.recording import Recording
from louter.proxy.routing import Route
from louter.proxy.usage import LazyRequest

if TYPE_CHECKING:
    from louter.config import Backend
    from louter.proxy.context import ProxyContext
    from louter.proxy.watch import RelayFactory

SSE_HEADERS: HeaderList = list(STREAM_HEADERS)


def bearer(value: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, or None."""
    return value[7:] if value[:7].lower() == "bearer " else None


def client_key(http: HttpRequest, headers: tuple[str, ...], query: str | None) -> str | None:
    """The client's API key: the first of `headers` that carries one ("authorization"
    holds a Bearer token; a `?{query}=` key ranks just before it)."""
    for name in headers:
        if name == "authorization":
            if query is not None and (key := http.query.get(query)):
                return key
            value = bearer(http.headers.get("authorization", ""))
        else:
            value = http.headers.get(name)
        if value:
            return value
    return (http.query.get(query) or None) if query is not None else None


async def parse_body(
    exchange: Exchange, http: HttpRequest, *, keep_raw: bool = False
) -> dict[str, Any]:
    """The request body as a JSON object, logged; `ConversionError` (400) otherwise.
    A large body is parsed in a worker thread (`Exchange.in_thread`). Unless `keep_raw`
    (a door that forwards the bytes as sent), `http.body` is dropped once parsed: the
    request then holds one copy of its content, not two."""
    try:
        if exchange.offload:
            data = await exchange.in_thread(orjson.loads, http.body)
        else:  # a small body (the usual case): parsed inline, no extra coroutine
            data = orjson.loads(http.body)
    except orjson.JSONDecodeError as exc:
        exchange.log_client_request(http, valid_json=False)
        raise ConversionError(NOT_JSON.format(exc)) from None
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, str):  # a Gemini body has none: its model is in the path
        exchange.model = model
    exchange.log_client_request(http, valid_json=True)
    if not keep_raw:
        http.body = b""
    if not isinstance(data, dict):
        raise ConversionError(NOT_OBJECT)
    return data


def body_model(body: dict[str, Any]) -> str:
    """The body's model name, checked to be safe to route and to send upstream (400)."""
    return checked_model(body.get("model"))


def checked_model(model: Any) -> str:
    """A body's `model` value as a model name safe to route and to send upstream (400)."""
    if not isinstance(model, str) or not model:
        raise ConversionError("'model' is required and must be a non-empty string")
    return check_model(model)


class BodyHead(Protocol):
    """What a door reads of a body without parsing it whole (`DoorSpec.head`)."""

    model: Any
    stream: Any

    @property
    def has_tools(self) -> bool: ...


Target = Callable[[HttpRequest, dict[str, Any]], tuple[str, bool]]
Forward = Callable[["ProxyContext", Call, Route, "Repair | None"], Plan]


@dataclass(frozen=True, slots=True)
class DoorSpec:
    """What one dialect's front door does differently from the others."""

    dialect: str
    target: Target  # (model, stream) of a request (400 for a bad model)
    has_tools: Callable[[dict[str, Any]], bool]
    client: Callable[[ProxyContext, Call, LazyRequest], ClientSide]
    forward: Forward  # same dialect: the client's body for `route`, answer as bytes
    same_body: Callable[[Call, Route], dict[str, Any]]  # same dialect, through the neutral
    # A same-dialect whole answer whose text may hold a tool call goes through the tool
    # stage: the check for it (None: the tool stage is decided from the request alone)
    text_call: Callable[[Backend], Callable[[Any], bool]] | None = None
    # Token counting (dialects with a count endpoint): the same-dialect forward
    count_forward: Forward | None = None
    # A same-dialect stream that text-watching stages (`Stage.watches_text`) can read as
    # it passes through: the relay factory for a `Forward` plan (None: such a stream goes
    # through the neutral model instead)
    watch: Callable[[ProxyContext, Call, Observers], RelayFactory] | None = None
    # Reads what routing and a same-dialect forward need of a body without parsing it
    # whole (None: the body is parsed whole; a head of None: this one is). The body is
    # then parsed only if something asks for `call.body` (a stage, a conversion).
    head: Callable[[bytes], BodyHead | None] | None = None

    def key(self, http: HttpRequest) -> str | None:
        """The client's key, from where its dialect sends it (`Dialect.key_headers`)."""
        dialect = DIALECTS[self.dialect]
        return client_key(http, dialect.key_headers, dialect.key_query)


async def generate(
    spec: DoorSpec,
    ctx: ProxyContext,
    exchange: Exchange,
    http: HttpRequest,
    responder: Responder,
    body: dict[str, Any] | None = None,
    target: tuple[str, bool] | None = None,
) -> None:
    """A generate or stream request of any dialect (its body parsed here unless given),
    through the pipeline and the attempt loop. `target` is the (model, stream) of the
    request when the caller has read it already (else `spec.target` reads it)."""
    parse = DIALECTS[spec.dialect].parse_request
    head = _read_head(spec, exchange, http) if body is None else None
    call: Call
    if head is not None:  # the body is parsed on first use (a stage, a conversion)
        model, stream = checked_model(head.model), head.stream is True
        source = Body(http.body)
        lazy = LazyRequest(lambda: parse(source(), model=model, stream=stream))
        call = UnparsedCall(spec.dialect, http, source, model, stream, exchange, lazy, head=head)
    else:
        parsed = body if body is not None else await parse_body(exchange, http)
        model, stream = target or spec.target(http, parsed)
        lazy = LazyRequest(lambda: parse(parsed, model=model, stream=stream))
        call = Call(spec.dialect, http, parsed, model, stream, exchange, lazy)
    exchange.model = model
    pipeline = ctx.pipeline
    observers: Observers | None = None
    recording: Recording | None = None
    neutral = watching = False
    if pipeline.stages:  # without stages (the hot path) nothing more to do
        exchange.call = call
        answer = await pipeline.before(call)
        if exchange.reply_headers:  # e.g. the cache's verdict
            responder.extra += encode_headers(exchange.reply_headers)
        if exchange.reply_head:  # the rate limits' remaining quota, encoded by the stage
            responder.extra += exchange.reply_head
        if answer is not None:
            client = spec.client(ctx, call, lazy)
            await answer_locally(exchange, client, answer, call.stream, responder, call.marks)
            return
        observers = pipeline.observers(call) if pipeline.observing else None
        # neutral: a stage reads every request, or observes this answer's events (one that
        # only watches the text lets a watchable stream pass through: `watching`)
        neutral = pipeline.reads or (observers is not None and pipeline.neutral)
        watching = observers is not None and pipeline.watching
        recorders = pipeline.recorders(call) if pipeline.recording else ()
        recording = Recording(recorders) if recorders else None
    if ":" in call.model:  # backend:model with an unknown backend: 400 (addressing.py)
        await check_address(ctx.router, ctx.served, call.model)
    routes = call.routes if call.routes is not None else ctx.router.candidates(call.model)
    plan = _planner(
        spec, ctx, call, observers, neutral=neutral, recording=recording, watching=watching
    )
    await run(ctx, exchange, responder, routes, plan, lazy.estimate)


# Bodies from this size have only their head read (`DoorSpec.head`): an agent's request
# (system prompt, tools, history). Below it a full parse costs less than the byte scans
# that spare it (measured: 4 vs 6 µs at 3 KB, 45 vs 69 µs at 24 KB, 68 vs 65 µs at 47 KB
# in a loop; in the server, where a parse's objects are made and freed among other
# requests', the 50 KB request with tools took ~10 % less CPU and 2.4 MiB less peak RSS)
HEAD_FROM = 32 * 1024


def _read_head(spec: DoorSpec, exchange: Exchange, http: HttpRequest) -> BodyHead | None:
    """The body's head, logged as the client's request, when the door reads heads and the
    body is neither small (`HEAD_FROM`) nor large (parsed whole in a worker thread); else
    None."""
    if spec.head is None or exchange.offload or len(http.body) < HEAD_FROM:
        return None
    head = spec.head(http.body)
    if head is not None:
        if isinstance(head.model, str):
            exchange.model = head.model
        exchange.log_client_request(http, valid_json=True)
    return head


def _planner(
    spec: DoorSpec,
    ctx: ProxyContext,
    call: Call,
    observers: Observers | None,
    *,
    neutral: bool,
    recording: Recording | None = None,
    watching: bool = False,
) -> Callable[[Route], Plan]:
    """The plan for one candidate: same dialect and no reason to convert -> the client's
    body forwarded and the answer passed through as bytes; else the neutral model.
    `recording` (the pipeline's recorders) reads a passed-through answer as it is, a
    converted one as one more observer (a fresh one per plan). `watching`: text-watching
    observers see the answer (a same-dialect stream of a door that can watch its bytes
    still passes through; other answers are converted)."""
    has_tools = call.head.has_tools if call.head is not None else spec.has_tools(call.body)
    watch = spec.watch if watching and call.stream else None
    neutral = neutral or (watching and watch is None)

    def plan(route: Route) -> Plan:
        if call.per_route is not None and (routed := call.request_for(route)) is not call.request:
            client = spec.client(ctx, call, call.lazy)  # changed for this backend: converted
            return conversation(ctx, routed, route, client, observers=observed())
        same = backend_dialect(route.backend, spec.dialect) == spec.dialect
        through = neutral or call.rewritten or needs_tool_stage(route.backend, has_tools)
        if same and not through:
            forward = spec.forward(ctx, call, route, None)
            if watch is not None and observers is not None and isinstance(forward, ForwardPlan):
                forward.watch = watch(ctx, call, observers)
            return recorded(forward)
        if same and not neutral and not call.rewritten and not call.stream:
            if spec.text_call is not None:  # whole answers pass through unless needed
                repair = Repair(spec.text_call(route.backend), lambda: convert(route, True))
                return recorded(spec.forward(ctx, call, route, repair))
        return convert(route, same)

    def convert(route: Route, same: bool) -> Plan:
        client = spec.client(ctx, call, call.lazy)
        forwarded = spec.same_body(call, route) if same and not call.rewritten else None
        return conversation(ctx, call.request, route, client, body=forwarded, observers=observed())

    def recorded(forward: Plan) -> Plan:
        if recording is not None and isinstance(forward, ForwardPlan):
            forward.recording = recording
        return forward

    def observed() -> Observers | None:
        if recording is None:
            return observers
        return Observers([*(observers or ()), recording.observer()])

    return plan


async def count(
    spec: DoorSpec,
    ctx: ProxyContext,
    exchange: Exchange,
    http: HttpRequest,
    responder: Responder,
    body: dict[str, Any] | None = None,
    target: tuple[str, bool] | None = None,
) -> None:
    """A token-counting request, through the pipeline's request hooks (which may rewrite
    or reject it; a count cannot be answered with a `Response`): forwarded to backends of
    the client's dialect when the first candidate speaks it, else counted for the first
    candidate (`answer_count`)."""
    if body is None:
        body = await parse_body(exchange, http)
    dialect = DIALECTS[spec.dialect]
    parse, answer, forward = dialect.count_request, dialect.count_response, spec.count_forward
    assert parse is not None and answer is not None and forward is not None
    model, _ = target or spec.target(http, body)
    exchange.model = model
    lazy = LazyRequest(lambda: parse(body, model=model))
    call = Call(spec.dialect, http, body, model, False, exchange, lazy, kind="count")
    if ctx.pipeline.stages:
        exchange.call = call
        if await ctx.pipeline.before(call) is not None:
            raise LouterError("a pipeline stage answered a token-counting request")
    if ":" in call.model:
        await check_address(ctx.router, ctx.served, call.model)
    routes = call.routes if call.routes is not None else ctx.router.candidates(call.model)
    first = backend_dialect(routes[0].backend, spec.dialect)
    if first == spec.dialect and not call.rewritten:
        same = [r for r in routes if backend_dialect(r.backend, spec.dialect) == spec.dialect]
        await run(ctx, exchange, responder, same, lambda r: forward(ctx, call, r, None), _zero)
        return
    await answer_count(ctx, exchange, call.request, routes, answer, responder)


def _zero() -> int:
    return 0
