"""Cross-dialect exchanges: a neutral request to a backend of another dialect, and its
answer back in the client's dialect, whole or streamed (design §1, §6).

    client dialect A                         backend dialect B
    neutral Request ── B.emit_request ──▶ upstream
    client ◀── A.emit_response / A.StreamEmitter ◀── B.parse_response / B.StreamParser

`conversation` builds the plan for one candidate backend (the attempt loop may build
several); `Converse.relay` answers, showing the answer to the pipeline's observers (which
may end a stream cleanly). An upstream error status is relayed with its status and
message in A's envelope. The upstream's `retry-after` and rate-limit headers reach the
client under A's names (`louter.convert.ratelimit`), whole, streamed or failed. Once
streaming has begun, failures become A's in-stream error event.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from louter.config import Backend
from louter.convert import json_tools, xml_tools
from louter.convert.collect import StreamCollector, events_of, stream_view
from louter.convert.dialect import DIALECTS, Dialect, StreamEmitter, StreamParser
from louter.convert.json_tools import JsonToolExtractor
from louter.convert.model import (
    IdFactory,
    MessageStop,
    Request,
    Response,
    ResponseMeta,
    StreamError,
    StreamEvent,
)
from louter.convert.ratelimit import client_headers
from louter.convert.sse import SSEDecoder
from louter.convert.tool_stage import ToolTextStage, apply_stage
from louter.convert.tool_text import BufferedExtractor
from louter.convert.xml_tools import XmlToolExtractor
from louter.errors import ConversionError, UpstreamError
from louter.http.message import HeaderList, Responder
from louter.http.upstream import UpstreamResponse
from louter.proxy.attempts import Delivery, Plan, without_keys
from louter.proxy.exchange import DEFAULT_BUDGETS, Budgets, Exchange
from louter.proxy.passthrough import StreamEnded, is_event_stream, relay_stream
from louter.proxy.pipeline import Observers
from louter.proxy.routing import Route

if TYPE_CHECKING:
    from louter.proxy.context import ProxyContext


@dataclass(frozen=True, slots=True)
class ClientSide:
    """How the client wants its answer: its dialect and the pieces only the door knows."""

    dialect: Dialect
    meta: ResponseMeta
    emitter: Callable[[], StreamEmitter]
    stream_headers: HeaderList  # content type of the streamed answer
    key: str | None = None  # the client's API key, used when the backend has none
    # What the client's form cannot carry of an answer (notes for the log), if anything
    notes: Callable[[Response], list[str]] | None = None
    # How a whole answer is written, when the door knows more than its dialect does
    # (Responses: custom tools' calls mapped back); None: `dialect.emit_response`
    emit: Callable[[Response, ResponseMeta], dict[str, Any]] | None = None


def emit_whole(client: ClientSide, answer: Response) -> dict[str, Any]:
    """A whole answer in the client's dialect."""
    emit = client.emit if client.emit is not None else client.dialect.emit_response
    return emit(answer, client.meta)


def backend_dialect(backend: Backend, client_dialect: str) -> str:
    """The dialect to speak to `backend`: its protocol; the mock speaks the client's."""
    return client_dialect if backend.protocol == "mock" else backend.protocol


def apply_defaults(request: Request, backend: Backend) -> Request:
    """The backend's `max_tokens` / `temperature` where the client gave none."""
    changes: dict[str, Any] = {}
    if request.max_tokens is None and backend.max_tokens is not None:
        changes["max_tokens"] = backend.max_tokens
    if request.temperature is None and backend.temperature is not None:
        changes["temperature"] = backend.temperature
    return dataclasses.replace(request, **changes) if changes else request


def needs_tool_stage(backend: Backend, has_tools: bool) -> bool:
    """Whether answers must go through the tool-call stage (then no byte passthrough)."""
    if not has_tools:
        return False
    if backend.tool_format == "xml":
        return True
    return backend.tool_call_repair and backend.protocol != "mock"


def tool_stage(backend: Backend, request: Request, exchange: Exchange) -> ToolTextStage | None:
    """A fresh stage for one answer, or None when the backend's calls need no help."""
    if not needs_tool_stage(backend, bool(request.tools)):
        return None
    prefix = "call_" + exchange.request_id.replace("-", "") + "_t"
    ids: IdFactory = lambda n: f"{prefix}{n}"  # noqa: E731
    cap = backend.tool_call_repair_buffer_cap_bytes  # held back while it may be a call
    extractor = EXTRACTORS[backend.tool_format](request.tools, ids=ids, cap=cap)
    return ToolTextStage(extractor)


EXTRACTORS: dict[str, Callable[..., BufferedExtractor]] = {
    "xml": XmlToolExtractor,
    "json": JsonToolExtractor,
}
# tool_format -> whether a text may hold a call its extractor would take out
TEXT_CALL_CHECKS: dict[str, Callable[[str], bool]] = {
    "xml": xml_tools.may_hold_call,
    "json": json_tools.may_hold_call,
}


def call_ids(exchange: Exchange) -> IdFactory:
    """Tool-call ids for calls a backend sent without one: unique per exchange."""
    prefix = "call_" + exchange.request_id.replace("-", "")
    return lambda n: f"{prefix}_{n}"


def conversation(
    ctx: ProxyContext,
    request: Request,
    route: Route,
    client: ClientSide,
    *,
    body: dict[str, Any] | None = None,
    observers: Observers | None = None,
) -> Converse:
    """The plan to send `request` to `route`'s backend in its dialect and answer in the
    client's.

    `body`, when given, is sent instead of `request` written out: a same-dialect request
    whose answer needs the tool stage still goes to the backend as the client wrote it."""
    upstream = ctx.upstreams[route.backend.name]
    dialect = backend_dialect(route.backend, client.dialect.name)
    request = apply_defaults(request, route.backend)
    if body is None:
        body = upstream.prepare(dialect, DIALECTS[dialect].emit_request(request, route.model))
    headers = upstream.headers
    key = client.key
    if key and route.backend.takes_client_key(ctx.gate is not None) and dialect in DIALECTS:
        headers = [*headers, *DIALECTS[dialect].auth_headers(key)]
    path = upstream.path(dialect, route.model, request.stream)
    return Converse(route, dialect, path, headers, orjson.dumps(body), request, client, observers)


class Converse(Plan):
    """Through the neutral model: the answer is parsed in the backend's dialect and
    written in the client's, whole or streamed."""

    __slots__ = ("request", "client", "observers")

    def __init__(
        self,
        route: Route,
        dialect: str,
        path: str,
        headers: HeaderList,
        body: bytes,
        request: Request,
        client: ClientSide,
        observers: Observers | None = None,
    ) -> None:
        super().__init__(route, dialect, path, headers, body)
        self.request = request
        self.client = client
        self.observers = observers  # the pipeline's, for this answer

    async def relay(
        self,
        ctx: ProxyContext,
        exchange: Exchange,
        response: UpstreamResponse,
        responder: Responder,
    ) -> Delivery:
        backend = DIALECTS[self.dialect]
        if exchange.logging:
            _log_dropped(exchange, backend, self.request)
        if response.status != 200:
            response = await without_keys(ctx, exchange, response)
            limits = client_headers(response.headers, backend, self.client.dialect, ctx.clock())
            await relay_error(exchange, response, backend, self.client.dialect, responder, limits)
            return Delivery()
        stage = tool_stage(self.route.backend, self.request, exchange)
        if self.request.stream:
            relay = TranslatingRelay(
                backend,
                self.client,
                call_ids(exchange),
                stage,
                whole=not is_event_stream(response.headers),
                observers=self.observers,
                budgets=exchange.budgets,
            )
            headers = [*self.client.stream_headers, _request_id_header(exchange)]
            headers += client_headers(response.headers, backend, self.client.dialect, ctx.clock())
            return await relay_stream(ctx, exchange, response, responder, relay, headers)
        limits = client_headers(response.headers, backend, self.client.dialect, ctx.clock())
        return await _answer_whole(
            exchange, response, backend, self.client, responder, stage, self.observers, limits
        )


async def relay_error(
    exchange: Exchange,
    response: UpstreamResponse,
    backend: Dialect,
    client: Dialect,
    responder: Responder,
    limits: HeaderList,
) -> None:
    """An upstream error status, relayed in the client's envelope with the same status
    and `limits`: the upstream's rate-limit and retry headers as the client's dialect
    names them (`louter.convert.ratelimit`)."""
    raw = await exchange.read_body(response)
    message = backend.error_message(raw)
    exchange.log(
        "backend_response",
        status=response.status,
        payload=raw.decode("utf-8", "replace"),
        dialect=backend.name,
    )
    body = client.error_body(response.status, message)
    exchange.log("client_response", status=response.status, payload=body)
    headers = [*limits, _request_id_header(exchange)]
    await responder.send_json(response.status, body, headers)


async def _answer_whole(
    exchange: Exchange,
    response: UpstreamResponse,
    backend: Dialect,
    client: ClientSide,
    responder: Responder,
    stage: ToolTextStage | None,
    observers: Observers | None,
    limits: HeaderList,
) -> Delivery:
    raw = await exchange.read_body(response)
    try:
        data = await exchange.compute_for(len(raw), _json_object, raw)
    except ConversionError:
        text = raw.decode("utf-8", "replace")
        exchange.log("backend_response", status=200, payload=text, dialect=backend.name)
        raise
    exchange.log("backend_response", status=200, raw_payload=raw, dialect=backend.name)
    answer, body = await exchange.compute_for(
        len(raw), _convert_whole, data, backend, client, call_ids(exchange), stage, observers
    )
    if stage is not None:
        _log_problems(exchange, stage)
    for note in client.notes(answer) if client.notes is not None else ():
        exchange.log("error", status=200, error=note)
    usage = answer.usage
    tokens = None if usage is None else (usage.input_tokens, usage.output_tokens)
    text = "" if usage is not None else answer.text()
    headers = [*limits, _request_id_header(exchange)]
    meter, priced = exchange.meter, {}
    if meter is not None:  # usage accounting: the cost, before sending
        priced = meter.measure(tokens, text)
        headers += meter.header()
    encoded = orjson.dumps(body)  # once, for the client and the log alike
    exchange.log("client_response", status=200, raw_payload=encoded, **priced)
    await responder.send(200, [_JSON_TYPE, *headers], encoded)
    return Delivery(ttft=time.perf_counter() - exchange.started, tokens=tokens, text=text)


def _log_dropped(exchange: Exchange, backend: Dialect, request: Request) -> None:
    dropped = backend.dropped(request)
    if dropped:
        note = f"not sent to the {backend.name} backend, which has no equivalent: "
        exchange.log("error", error=note + ", ".join(dropped), dropped=dropped)


def _convert_whole(
    data: dict[str, Any],
    backend: Dialect,
    client: ClientSide,
    ids: IdFactory,
    stage: ToolTextStage | None,
    observers: Observers | None,
) -> tuple[Response, dict[str, Any]]:
    """A whole backend answer -> the neutral answer (as the pipeline's observers leave
    it) and the client's body."""
    answer = backend.parse_response(data, ids)
    if stage is not None:
        answer = apply_stage(stage, answer)
    if observers is not None:
        answer = observers.whole(answer)
    return answer, emit_whole(client, answer)


def _log_problems(exchange: Exchange, stage: ToolTextStage) -> None:
    for problem in stage.problems:
        exchange.log("error", status=200, error=f"tool call text kept as text: {problem}")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConversionError(f"backend answer is not JSON: {exc}", status_hint=502) from None
    if not isinstance(data, dict):
        raise ConversionError("backend answer is not a JSON object", status_hint=502)
    return data


_JSON_TYPE = (b"content-type", b"application/json")


def _request_id_header(exchange: Exchange) -> tuple[bytes, bytes]:
    return (b"x-louter-request-id", exchange.request_id.encode("ascii"))


class TranslatingRelay:
    """Upstream stream bytes (dialect B) -> client stream bytes (dialect A).

    bytes -> SSEDecoder -> B.StreamParser -> neutral events -> A.StreamEmitter -> bytes,
    with a collector on the neutral events for the journal (keeping `budgets.log_text`
    characters). `whole` handles a backend that answered a stream request with one JSON
    body: it is parsed at the end and replayed; past `budgets.max_response` bytes the
    stream ends with the client's error event. `observers` (the pipeline's) see each
    event before the client does; when one ends the stream, the client gets a normal
    finish and `StreamEnded` stops the upstream read.
    """

    def __init__(
        self,
        backend: Dialect,
        client: ClientSide,
        ids: IdFactory,
        stage: ToolTextStage | None = None,
        *,
        whole: bool = False,
        observers: Observers | None = None,
        budgets: Budgets = DEFAULT_BUDGETS,
    ) -> None:
        self._stage = stage
        self._observers = observers
        self._decoder = SSEDecoder()
        self._parser: StreamParser = backend.stream_parser(ids)
        self._backend = backend
        self._ids = ids
        self._emitter = client.emitter()
        self._notes = client.notes
        self._collector = StreamCollector(budgets.log_text)
        self.whole = whole
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._max_body = budgets.max_response

    def prelude(self) -> bytes:
        """The client dialect's opening (Anthropic: message_start and a ping) at once, so
        a client waiting for a slow first token already sees the stream alive."""
        if self.whole:
            return b""
        return self._emitter.prelude()

    def feed(self, chunk: bytes) -> bytes:
        if self.whole:
            self._body_bytes += len(chunk)
            if self._body_bytes > self._max_body:
                self._body = []
                raise UpstreamError(
                    f"upstream answer larger than max_response_bytes = {self._max_body}"
                )
            self._body.append(chunk)
            return b""
        events: list[StreamEvent] = []
        for sse in self._decoder.feed(chunk):
            events.extend(self._parser.feed(sse))
        return self._emit(events)

    def flush(self) -> bytes:
        if self.whole:
            return self._emit(self._replay())
        events: list[StreamEvent] = []
        for sse in self._decoder.flush():
            events.extend(self._parser.feed(sse))
        events.extend(self._parser.flush())
        return self._emit(events) + self._emitter.flush()

    def fail(self, message: str) -> bytes:
        return self._emit([StreamError(message)])

    @property
    def complete(self) -> bool:
        return self._collector.done

    def results(self) -> tuple[dict[str, Any], dict[str, Any]]:
        view = stream_view(self._collector)
        if self._stage is not None and self._stage.problems:
            view["tool_text_problems"] = self._stage.problems
        notes = self._notes(self._collector.result()) if self._notes is not None else ()
        if notes:
            view["notes"] = notes
        return view, view

    def _emit(self, events: list[StreamEvent]) -> bytes:
        if self._stage is not None:
            events = [out for event in events for out in self._stage.feed(event)]
        if self._observers is not None:
            return self._observed(events)
        out = []
        for event in events:
            self._collector.feed(event)
            out.append(self._emitter.feed(event))
        return b"".join(out)

    def _observed(self, events: list[StreamEvent]) -> bytes:
        """`_emit` with observers: one may end the stream after an event (a clean finish
        for the client: its dialect's stop, then the end of the stream)."""
        assert self._observers is not None
        out = []
        for event in events:
            self._collector.feed(event)
            out.append(self._emitter.feed(event))
            keep = self._observers.event(event)
            if not keep and not isinstance(event, (MessageStop, StreamError)):
                for closing in (*self._observers.closing(), MessageStop("stop")):
                    self._collector.feed(closing)
                    out.append(self._emitter.feed(closing))
                out.append(self._emitter.flush())
                raise StreamEnded(b"".join(out))
        return b"".join(out)

    def _replay(self) -> list[StreamEvent]:
        answer = self._backend.parse_response(_json_object(b"".join(self._body)), self._ids)
        return events_of(answer)
