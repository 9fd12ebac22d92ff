"""Same-dialect forwarding: the upstream's status, headers and body bytes reach the client
unchanged (chunk boundaries aside), streamed as they arrive; only the journal tap reads them.
`relay_stream` is shared with the bridge (a translating relay in place of the tap).

Once the first byte has reached the client nothing is retried: an upstream failure after
that point becomes the dialect's in-stream error event (and an `error` journal entry). The
client closing its connection cancels the upstream request.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import trio

from louter.errors import ConversionError, LouterError
from louter.http.message import HeaderList, Responder
from louter.http.upstream import UpstreamResponse
from louter.proxy.attempts import Buffered, Delivery, Plan, without_keys
from louter.proxy.exchange import Exchange
from louter.proxy.hidden_usage import UsageChunkFilter
from louter.proxy.recording import Recording
from louter.proxy.routing import Route
from louter.proxy.scrub import Scrubber
from louter.proxy.taps import fit_view
from louter.proxy.usage import view_text, view_tokens, whole_text, whole_tokens

if TYPE_CHECKING:
    from louter.convert.model import Response
    from louter.proxy.context import ProxyContext


class StreamEnded(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a relay whose answer ends here (a pipeline stage said so): `data` is
    the rest the client gets, ending the stream normally; the upstream is not read on."""

    def __init__(self, data: bytes) -> None:
        super().__init__("stream ended by a pipeline stage")
        self.data = data


class StreamTap(Protocol):
    """Reads a passing stream for the journal: bytes in, an assembled result out."""

    def feed(self, chunk: bytes) -> None: ...
    @property
    def complete(self) -> bool:
        """The dialect's end-of-stream marker has passed (a client may leave after it)."""
        ...

    def result(self) -> dict[str, Any]: ...
    def answer(self) -> Response | None:
        """The answer in the neutral model once the stream is over (None: it did not
        finish normally, or was cut at `max_text`)."""
        ...


class StreamRelay(Protocol):
    """Turns upstream stream bytes into client stream bytes and keeps what the journal
    records. Passthrough returns its input; a translating relay converts dialects."""

    def prelude(self) -> bytes:
        """Bytes to send as soon as the upstream answered 200, before its first chunk."""
        ...

    def feed(self, chunk: bytes) -> bytes: ...
    def flush(self) -> bytes: ...
    def fail(self, message: str) -> bytes:
        """The client dialect's in-stream error event."""
        ...

    @property
    def complete(self) -> bool: ...
    def results(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The assembled (backend answer, client answer) for the journal."""
        ...


class PassthroughRelay:
    """Same dialect both sides: bytes go through untouched, the tap reads them (with
    `hidden`: all but the usage chunk louter asked for, `louter/proxy/hidden_usage.py`)."""

    def __init__(
        self,
        tap: StreamTap,
        error_event: Callable[[str], bytes],
        hidden: UsageChunkFilter | None = None,
        log_text: int | None = None,
    ) -> None:
        self._tap = tap
        self._error_event = error_event
        self._hidden = hidden
        self._log_text = log_text  # the log's cap, when the tap keeps more (a recorder)

    def prelude(self) -> bytes:
        return b""

    def feed(self, chunk: bytes) -> bytes:
        self._tap.feed(chunk)
        return chunk if self._hidden is None else self._hidden.feed(chunk)

    def flush(self) -> bytes:
        return b"" if self._hidden is None else self._hidden.flush()

    def fail(self, message: str) -> bytes:
        return self._error_event(message)

    @property
    def complete(self) -> bool:
        return self._tap.complete

    def results(self) -> tuple[dict[str, Any], dict[str, Any]]:
        result = self._tap.result()
        if self._log_text is not None:
            result = fit_view(result, self._log_text)
        return result, result


def response_headers(upstream: HeaderList, request_id: str) -> HeaderList:
    """The upstream's headers (the responder drops their framing ones) and the id."""
    return [*upstream, (b"x-louter-request-id", request_id.encode("ascii"))]


def is_event_stream(headers: HeaderList) -> bool:
    for name, value in headers:  # a loop, not any(<generator>): read on every answer
        if name == b"content-type" and value.startswith(b"text/event-stream"):
            return True
    return False


async def relay_whole(
    exchange: Exchange,
    response: UpstreamResponse,
    responder: Responder,
    dialect: str,
    *,
    count: bool = True,
    parsed: Any = None,
) -> Delivery:
    """Read a non-streamed upstream answer and send it on with its status and headers.

    A 200 answer must be JSON (`ConversionError`, 502, before anything is sent
    otherwise); it is parsed once, for its usage (when `count`: metrics are on) and the
    journal (`parsed`: the caller parsed it already, `load_answer`)."""
    body = await exchange.read_body(response)
    status = response.status
    delivery = Delivery()
    data = parsed
    if data is None and (status == 200 or exchange.logging):
        small = len(body) <= exchange.budgets.offload  # the usual case: parsed inline
        data = _load(body) if small else await load_answer(exchange, body)
    if status == 200:
        if data is _NOT_JSON:
            _log_whole(exchange, status, body, None, dialect)
            raise ConversionError("backend answer is not JSON", status_hint=502)
        if count and isinstance(data, dict):
            delivery.tokens = whole_tokens(dialect, data)
            if delivery.tokens is None:
                delivery.text = whole_text(dialect, data)
    headers = response_headers(response.headers, exchange.request_id)
    meter, priced = exchange.meter, {}
    if meter is not None and status == 200:  # usage accounting: the cost, before sending
        priced = meter.measure(delivery.tokens, delivery.text)
        headers += meter.header()
    _log_whole(exchange, status, body, data, dialect, priced)
    await responder.send(status, headers, body)
    delivery.ttft = time.perf_counter() - exchange.started
    return delivery


_NOT_JSON = object()


async def load_answer(exchange: Exchange, body: bytes) -> Any:
    """A whole answer's JSON value (`_NOT_JSON` when it is not JSON); a large one is
    parsed in a worker thread."""
    return await exchange.compute_for(len(body), _load, body)


def _load(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def _log_whole(
    exchange: Exchange,
    status: int,
    body: bytes,
    data: Any,
    dialect: str,
    extra: dict[str, Any] | None = None,
) -> None:
    if not exchange.logging:
        return
    raw = body if data is not _NOT_JSON and data is not None else None
    payload = None if raw is not None else body.decode("utf-8", "replace")
    exchange.log(
        "backend_response", status=status, raw_payload=raw, payload=payload, dialect=dialect
    )
    exchange.log(
        "client_response", status=status, raw_payload=raw, payload=payload, **(extra or {})
    )


async def relay_stream(
    ctx: ProxyContext,
    exchange: Exchange,
    response: UpstreamResponse,
    responder: Responder,
    relay: StreamRelay,
    headers: HeaderList | None = None,
) -> Delivery:
    """Stream an upstream answer to the client as it arrives, through `relay`.

    `headers` replace the upstream's response headers (a translating relay changes the
    content type); by default the upstream's are sent on. The client leaving cancels the
    upstream read; so does the upstream staying silent for `stream_idle_timeout_seconds`
    (then the client gets the dialect's error event).

    What the upstream has sent is written as soon as louter would wait for more (or at
    the end): the head and the bytes already there leave in one system call."""
    if headers is None:
        headers = response_headers(response.headers, exchange.request_id)
    await responder.start(response.status, headers, hold=True)
    responder.hold(relay.prelude())
    idle_timeout = ctx.config.performance.stream_idle_timeout_seconds
    pump = _Pump(exchange, response, responder, relay, idle_timeout, ctx.scrub)
    deadlines = ctx.deadlines
    with pump.scope:
        deadlines.add(pump)
        responder.watch_hangup(pump.client_left, pump.stop)
        try:
            await pump.run()
        finally:
            deadlines.discard(pump)
            responder.watch_hangup(None)
    await response.aclose()  # a no-op when the answer was read to its end
    if pump.stalled and not pump.client_gone:
        await pump.fail(f"the upstream sent nothing for {idle_timeout:g}s")
    elif pump.stopped is not None and not pump.client_gone:
        await pump.fail(pump.stopped)
    return await _finish(ctx, exchange, response.status, pump)


async def _finish(ctx: ProxyContext, exchange: Exchange, status: int, pump: _Pump) -> Delivery:
    delivery = Delivery(ttft=pump.ttft, error=pump.error)
    if pump.client_gone and not pump.relay.complete and pump.error is None:
        delivery.client_gone = True
        exchange.log(
            "error", status=499, error="client disconnected mid-stream", chunks=pump.chunks
        )
        return delivery
    if not pump.client_gone:
        await pump.responder.end()
    meter = exchange.meter
    if exchange.logging or ctx.metrics is not None or meter is not None:
        backend, client = _results(pump.relay)
        delivery.tokens = view_tokens(backend)
        if delivery.tokens is None:
            delivery.text = view_text(backend)
        priced = {}
        if meter is not None and status == 200:
            priced = meter.measure(delivery.tokens, delivery.text, pump.ttft)
        _log_stream(exchange, status, pump, backend, client, priced)
    return delivery


class _Pump:
    """Moves one stream from the upstream to the client; watched for stalls."""

    def __init__(
        self,
        exchange: Exchange,
        response: UpstreamResponse,
        responder: Responder,
        relay: StreamRelay,
        idle_timeout: float,
        scrub: Scrubber,
    ) -> None:
        self.exchange = exchange
        self.idle_timeout = idle_timeout
        self.response = response
        self.responder = responder
        self.relay = relay
        self.chunks = 0
        self.ttft: float | None = None  # seconds from arrival to the first byte sent
        self.client_gone = False
        self.error: str | None = None
        self.at_boundary = True  # the bytes sent so far end between two SSE events
        self.deadline = math.inf  # perf_counter() by which the upstream must send more
        self.stalled = False
        self.stopped: str | None = None  # why louter ends the stream (it is stopping)
        self.scope = trio.CancelScope()  # cancelled by a stall or the client leaving
        self.scrub = scrub  # backend addresses and keys out of error texts

    def expire(self) -> None:
        """The upstream stayed silent for `idle_timeout`: end the stream."""
        self.stalled = True
        self.scope.cancel()

    def stop(self, message: str) -> None:
        """End the stream with an error event, between two writes to the client."""
        self.stopped = message
        if self.deadline != math.inf:  # waiting for the upstream, not writing
            self.scope.cancel()

    def client_left(self) -> None:
        self.client_gone = True
        self.scope.cancel()

    async def run(self) -> None:
        try:
            try:
                await self._pump()
            except StreamEnded as end:  # a pipeline stage ended the answer here, cleanly
                self._send(end.data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.client_gone = True
        except LouterError as exc:  # transport errors may name an address: scrubbed
            await self.fail(self.scrub(exc.message, self.exchange.backend))

    async def _pump(self) -> None:
        # aclosing: a cancel (client gone) while a chunk is being written must not
        # leave the upstream generator suspended for the garbage collector.
        async with aclosing(self.response.chunks()) as chunks:
            while (chunk := await self._next(chunks)) is not None:
                self.chunks += 1
                self._send(self.relay.feed(chunk))
        self._send(self.relay.flush())

    async def _next(self, chunks: AsyncGenerator[bytes, None]) -> bytes | None:
        if not self.response.ready:  # about to wait: what is held goes out first
            await self._flush()
        if self.stopped is not None:  # stopped while writing: cancelled at the next wait
            self.scope.cancel()
        started = time.perf_counter()
        self.deadline = started + self.idle_timeout
        try:
            return await anext(chunks, None)
        finally:
            self.deadline = math.inf
            self.exchange.upstream_wait += time.perf_counter() - started

    async def fail(self, message: str) -> None:
        """Send the client dialect's in-stream error event (the head is already out)."""
        self.error = message
        # End a half-sent event first, so the error event stands on its own.
        separator = b"" if self.at_boundary else b"\n\n"
        try:
            await self.responder.write(separator + self.relay.fail(message))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.client_gone = True

    def _send(self, data: bytes) -> None:
        """Hold `data` for the client: it goes out before the next wait on the upstream
        (`_flush`), or with the end of the answer or its error event."""
        if not data:
            return
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.exchange.started
        self.responder.hold(data)
        self.at_boundary = data.endswith((b"\n\n", b"\r\n\r\n", b"]"))

    async def _flush(self) -> None:
        await self.responder.flush()
        if self.ttft is not None:  # after the first token, not before: a long stream's
            self.exchange.flush()  # request is logged while it goes on


def _results(relay: StreamRelay) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return relay.results()
    except LouterError as exc:
        view = {"error": exc.message}
        return view, view


def _log_stream(
    exchange: Exchange,
    status: int,
    pump: _Pump,
    backend: dict[str, Any],
    client: dict[str, Any],
    priced: dict[str, Any],
) -> None:
    if not exchange.logging:
        return
    ttft_ms = None if pump.ttft is None else round(pump.ttft * 1000, 3)
    extra: dict[str, Any] = {"stream": True, "chunks": pump.chunks, "ttft_ms": ttft_ms}
    exchange.log(
        "backend_response", status=status, payload=backend, dialect=exchange.backend_format, **extra
    )
    if pump.error is not None:
        exchange.log("error", status=502, error=pump.error, **extra)
    exchange.log("client_response", status=status, payload=client, **extra, **priced)


@dataclass(frozen=True, slots=True)
class Repair:
    """For a backend whose tool calls may come as text: a whole 200 answer for which
    `needed(body)` holds is answered by `plan()` (through the tool stage) instead of
    passing through."""

    needed: Callable[[bytes], bool]
    plan: Callable[[], Plan]


class Forward(Plan):
    """Same dialect both sides: the answer goes to the client as the upstream sent it.

    An SSE answer is always streamed; with `stream` any 200 answer is (Gemini's
    streamed JSON array)."""

    __slots__ = ("make_tap", "error_event", "stream", "repair", "hide_usage", "recording", "watch")

    def __init__(
        self,
        route: Route,
        dialect: str,
        path: str,
        headers: HeaderList,
        body: bytes,
        *,
        make_tap: Callable[..., StreamTap],  # called with max_text=
        error_event: Callable[[str], bytes],
        stream: bool = False,
        repair: Repair | None = None,
        hide_usage: bool = False,
    ) -> None:
        super().__init__(route, dialect, path, headers, body)
        self.make_tap = make_tap
        self.error_event = error_event
        self.stream = stream
        self.repair = repair
        self.hide_usage = hide_usage  # louter asked for the usage chunk: the client gets none
        self.recording: Recording | None = None  # the pipeline's recorders, on a miss
        # A stream relay watched by text-reading pipeline stages (`proxy/watch.py`),
        # made from the tap; None: the plain passthrough
        self.watch: (
            Callable[[StreamTap, Callable[[str], bytes], UsageChunkFilter | None], StreamRelay]
            | None
        ) = None

    async def relay(
        self,
        ctx: ProxyContext,
        exchange: Exchange,
        response: UpstreamResponse,
        responder: Responder,
    ) -> Delivery:
        recording = self.recording
        if response.status == 200 and (self.stream or is_event_stream(response.headers)):
            return await self._stream(ctx, exchange, response, responder)
        parsed = None
        if (self.repair is not None or recording is not None) and response.status == 200:
            body = await exchange.read_body(response)
            response = Buffered(200, response.headers, body)
            parsed = await load_answer(exchange, body)  # parsed once: check, log, record
            if self.repair is not None and self.repair.needed(parsed):
                return await self.repair.plan().relay(ctx, exchange, response, responder)
        if response.status >= 400:
            response = await without_keys(ctx, exchange, response)
        count = ctx.metrics is not None or exchange.meter is not None
        delivery = await relay_whole(
            exchange, response, responder, self.dialect, count=count, parsed=parsed
        )
        if recording is not None and response.status == 200:
            recording.whole(self.dialect, parsed)  # after the client has it
        return delivery

    async def _stream(
        self,
        ctx: ProxyContext,
        exchange: Exchange,
        response: UpstreamResponse,
        responder: Responder,
    ) -> Delivery:
        """Streamed through; with recorders the tap keeps what they need (the log still
        records at most its own cap) and its assembly is their answer."""
        recording = self.recording
        log_text = exchange.budgets.log_text
        keep = log_text if recording is None else max(log_text, recording.limit)
        tap = self.make_tap(max_text=keep)
        hidden = UsageChunkFilter() if self.hide_usage else None
        capped = log_text if keep > log_text else None
        if self.watch is not None:  # text-watching stages read it (`proxy/watch.py`)
            relay = self.watch(tap, self.error_event, hidden)
        else:
            relay = PassthroughRelay(tap, self.error_event, hidden, capped)
        delivery = await relay_stream(ctx, exchange, response, responder, relay)
        if recording is not None and delivery.error is None and not delivery.client_gone:
            try:
                recording.stream(tap.answer())
            except LouterError:  # the stream's end was not valid: nothing to record
                pass
        return delivery
