"""Same-dialect forwarding: the upstream's status, headers and body bytes reach the client
unchanged (chunk boundaries aside), streamed as they arrive; only the journal tap reads them.

Once the first byte has reached the client nothing is retried: an upstream failure after
that point becomes the dialect's in-stream error event (and an `error` journal entry). The
client closing its connection cancels the upstream request.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from typing import Any, Protocol

import orjson
import trio

from louter.errors import LouterError
from louter.http.message import HeaderList, Responder
from louter.http.upstream import UpstreamResponse
from louter.proxy.exchange import Exchange

_DROP = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})


class StreamTap(Protocol):
    """Reads a passing stream for the journal: bytes in, an assembled result out."""

    def feed(self, chunk: bytes) -> None: ...
    @property
    def complete(self) -> bool:
        """The dialect's end-of-stream marker has passed (a client may leave after it)."""
        ...

    def result(self) -> dict[str, Any]: ...


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
    """Same dialect both sides: bytes go through untouched, the tap reads them."""

    def __init__(self, tap: StreamTap, error_event: Callable[[str], bytes]) -> None:
        self._tap = tap
        self._error_event = error_event

    def prelude(self) -> bytes:
        return b""

    def feed(self, chunk: bytes) -> bytes:
        self._tap.feed(chunk)
        return chunk

    def flush(self) -> bytes:
        return b""

    def fail(self, message: str) -> bytes:
        return self._error_event(message)

    @property
    def complete(self) -> bool:
        return self._tap.complete

    def results(self) -> tuple[dict[str, Any], dict[str, Any]]:
        result = self._tap.result()
        return result, result


def response_headers(upstream: HeaderList, request_id: str) -> HeaderList:
    headers = [(name, value) for name, value in upstream if name not in _DROP]
    headers.append((b"x-louter-request-id", request_id.encode("ascii")))
    return headers


def is_event_stream(headers: HeaderList) -> bool:
    return any(n == b"content-type" and v.startswith(b"text/event-stream") for n, v in headers)


async def relay_whole(exchange: Exchange, response: UpstreamResponse, responder: Responder) -> None:
    """Read a non-streamed upstream answer and send it on with its status and headers."""
    body = await response.read()
    status = response.status
    if exchange.logging:
        raw = body if _is_json(body) else None
        payload = None if raw is not None else body.decode("utf-8", "replace")
        exchange.log(
            "backend_response",
            status=status,
            raw_payload=raw,
            payload=payload,
            dialect=exchange.backend_format,
        )
        exchange.log("client_response", status=status, raw_payload=raw, payload=payload)
    await responder.send(status, response_headers(response.headers, exchange.request_id), body)


def _is_json(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


async def relay_stream(
    exchange: Exchange,
    response: UpstreamResponse,
    responder: Responder,
    relay: StreamRelay,
    headers: HeaderList | None = None,
) -> None:
    """Stream an upstream answer to the client as it arrives, through `relay`.

    `headers` replace the upstream's response headers (a translating relay changes the
    content type); by default the upstream's are sent on."""
    if headers is None:
        headers = response_headers(response.headers, exchange.request_id)
    await responder.start(response.status, headers)
    prelude = relay.prelude()
    if prelude:
        await responder.write(prelude)
    pump = _Pump(exchange, response, responder, relay)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_on_disconnect, responder, nursery.cancel_scope, pump)
        await pump.run()
        nursery.cancel_scope.cancel()
    if pump.client_gone:
        await response.aclose()
        if relay.complete:  # the client left after receiving the whole answer
            _log_stream(exchange, response.status, pump)
            return
        exchange.log(
            "error", status=499, error="client disconnected mid-stream", chunks=pump.chunks
        )
        return
    await responder.end()
    _log_stream(exchange, response.status, pump)


async def _cancel_on_disconnect(responder: Responder, scope: trio.CancelScope, pump: _Pump) -> None:
    await responder.wait_disconnect()
    pump.client_gone = True
    scope.cancel()


class _Pump:
    def __init__(
        self,
        exchange: Exchange,
        response: UpstreamResponse,
        responder: Responder,
        relay: StreamRelay,
    ) -> None:
        self.exchange = exchange
        self.response = response
        self.responder = responder
        self.relay = relay
        self.chunks = 0
        self.ttft_ms: float | None = None
        self.client_gone = False
        self.error: str | None = None
        self.at_boundary = True  # the bytes sent so far end between two SSE events

    async def run(self) -> None:
        try:
            # aclosing: a cancel (client gone) while a chunk is being written must not
            # leave the upstream generator suspended for the garbage collector.
            async with aclosing(self.response.chunks()) as chunks:
                async for chunk in chunks:
                    self.chunks += 1
                    await self._send(self.relay.feed(chunk))
            await self._send(self.relay.flush())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.client_gone = True
        except LouterError as exc:
            self.error = exc.message
            # End a half-sent event first, so the error event stands on its own.
            separator = b"" if self.at_boundary else b"\n\n"
            await self.responder.write(separator + self.relay.fail(exc.message))

    async def _send(self, data: bytes) -> None:
        if not data:
            return
        if self.ttft_ms is None:
            self.ttft_ms = self.exchange.elapsed_ms()
        await self.responder.write(data)
        self.at_boundary = data.endswith((b"\n\n", b"\r\n\r\n", b"]"))


def _log_stream(exchange: Exchange, status: int, pump: _Pump) -> None:
    if not exchange.logging:
        return
    try:
        backend, client = pump.relay.results()
    except LouterError as exc:
        backend = client = {"error": exc.message}
    extra: dict[str, Any] = {"stream": True, "chunks": pump.chunks, "ttft_ms": pump.ttft_ms}
    exchange.log(
        "backend_response", status=status, payload=backend, dialect=exchange.backend_format, **extra
    )
    if pump.error is not None:
        exchange.log("error", status=502, error=pump.error, **extra)
    exchange.log("client_response", status=status, payload=client, **extra)


async def forward(
    exchange: Exchange,
    send: Callable[[], Any],
    responder: Responder,
    make_tap: Callable[[], StreamTap],
    error_event: Callable[[str], bytes],
    stream: bool = False,
) -> None:
    """Run `send()` (the upstream request) and relay its answer, whole or streamed.

    An SSE answer is always streamed; with `stream` any 200 answer is (Gemini's
    streamed JSON array)."""
    response: UpstreamResponse = await send()
    if response.status == 200 and (stream or is_event_stream(response.headers)):
        relay = PassthroughRelay(make_tap(), error_event)
        await relay_stream(exchange, response, responder, relay)
    else:
        await relay_whole(exchange, response, responder)
