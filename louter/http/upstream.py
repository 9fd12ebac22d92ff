"""Upstream transports: how louter talks to a backend over HTTP.

`PooledTransport` is the fast path for plain `http://` backends (llama-server, vLLM,
Ollama on the same machine, where proxy overhead matters most): non-blocking sockets,
keep-alive connections reused LIFO, responses parsed by httptools. `HttpxTransport`
(`louter.http.tls`, imported only when needed) serves `https://` backends (TLS, proxies,
compression handled by a kept library). Both return an
`UpstreamResponse` whose body is read incrementally, and both turn transport failures
into `UpstreamError` (502 connect/transport, 504 no first byte in time) in one place.

Deadlines: `connect_timeout` per new connection, `first_byte_timeout` per request (until
the response head), `idle_timeout` between the pieces of a body read whole (`read()`).
A streamed body (`chunks()`) has no deadline of its own: the proxy bounds the silence
between chunks with one watchdog task for all streams.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Protocol
from urllib.parse import urlsplit

import httptools
import trio

from louter.errors import UpstreamError
from louter.http.deadlines import Deadlines
from louter.http.message import HeaderList
from louter.http.sockets import Socket, connect


class UpstreamResponse(Protocol):
    status: int
    headers: HeaderList  # lower-case names

    def chunks(self) -> AsyncGenerator[bytes, None]: ...
    async def read(self) -> bytes: ...
    async def aclose(self) -> None: ...


class Transport(Protocol):
    async def request(
        self, path: str, headers: HeaderList, body: bytes, *, first_byte_timeout: float
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class _EarlyClose(Exception):
    """The upstream closed a reused connection before answering: safe to retry."""


class _TimedOut(Exception):
    """No response head before the request's deadline."""


# --------------------------------------------------------------------------- fast pool


class _ResponseProtocol:
    __slots__ = ("headers", "headers_done", "body", "complete", "keep_alive", "parser")

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.keep_alive = False
        self.headers: HeaderList = []
        self.headers_done = False
        self.body: deque[bytes] = deque()
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()  # reset after the message ends

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class _PooledResponse:
    """A response on a pooled connection; the connection goes back when fully read.

    While it waits on the upstream (for the head, or for the rest of a body read whole)
    it is registered with the pool's `Deadlines`; expiring closes the connection, which
    ends the wait with `trio.ClosedResourceError` and `timed_out` set."""

    __slots__ = ("_pool", "_stream", "_protocol", "_parser", "status", "headers", "deadline",
                 "timed_out")  # fmt: skip

    def __init__(self, pool: PooledTransport, stream: Socket) -> None:
        self._pool = pool
        self._stream: Socket | None = stream
        self._protocol = _ResponseProtocol()
        self._parser = httptools.HttpResponseParser(self._protocol)
        self._protocol.parser = self._parser
        self.status = 0
        self.headers: HeaderList = []
        self.deadline = math.inf
        self.timed_out = False

    def expire(self) -> None:
        self.timed_out = True
        if self._stream is not None:
            self._stream.close()

    async def read_head(self, reused: bool) -> None:
        protocol = self._protocol
        assert self._stream is not None
        while not protocol.headers_done:
            data = await self._stream.receive()
            if not data:
                raise (
                    _EarlyClose()
                    if reused
                    else UpstreamError(
                        f"{self._pool.label}: upstream closed the connection without answering"
                    )
                )
            reused = False
            self._feed(data)
        self.status = self._parser.get_status_code()
        self.headers = protocol.headers

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise UpstreamError(f"{self._pool.label}: malformed HTTP response: {exc}") from exc

    def _delimited(self) -> bool:
        names = {name for name, _ in self.headers}
        return b"content-length" in names or b"transfer-encoding" in names

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives. No deadline here: the proxy's `Deadlines` bound the
        silence between chunks (one task for all streams, not a cancel scope per read)."""
        protocol = self._protocol
        body = protocol.body
        while True:
            while body:
                yield body.popleft()
            if protocol.complete or self._stream is None:
                break
            if not await self._receive(self._stream):
                break
        self._finish()

    async def read(self) -> bytes:
        """The whole body, waiting at most `idle_timeout` for each piece of it (a body
        that came with the head, the usual case, needs no wait)."""
        protocol = self._protocol
        if not protocol.complete and self._stream is not None:
            await self._read_rest(self._stream)
        data = protocol.body[0] if len(protocol.body) == 1 else b"".join(protocol.body)
        protocol.body.clear()
        self._finish()
        return data

    async def _read_rest(self, stream: Socket) -> None:
        deadlines = self._pool.deadlines
        deadlines.add(self)
        try:
            while not self._protocol.complete:
                self.deadline = time.perf_counter() + self._pool.idle_timeout
                if not await self._receive(stream):
                    return
        finally:
            deadlines.discard(self)
            self.deadline = math.inf

    async def _receive(self, stream: Socket) -> bool:
        """Feed the next bytes to the parser; False at a clean end of a close-delimited
        body. An upstream dying (or timing out) mid-body is an `UpstreamError`."""
        try:
            data = await stream.receive()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            await self.aclose()
            if self.timed_out:
                raise UpstreamError(
                    f"{self._pool.label}: no data for {self._pool.idle_timeout:g}s"
                    " in the middle of the answer",
                    status_hint=504,
                ) from None
            raise UpstreamError(f"{self._pool.label}: connection lost mid-response") from exc
        if not data:
            if self._delimited():
                await self.aclose()
                raise UpstreamError(f"{self._pool.label}: upstream closed mid-response")
            return False
        self._feed(data)
        return True

    def _finish(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        if self._protocol.complete and self._protocol.keep_alive:
            self._pool.release(stream)
        else:
            stream.close()

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


_UNCOPIED = 256 * 1024  # a request body from this size is sent after its head, not joined


class PooledTransport:
    """Keep-alive pool to one `http://host:port` upstream."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        deadlines: Deadlines,
        idle_timeout: float = 300.0,
        max_idle: int = 256,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.label = url
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.deadlines = deadlines
        self.max_idle = max_idle
        self._idle: list[Socket] = []
        self._host_header = parts.netloc.encode("latin-1")

    async def _connect(self) -> Socket:
        try:
            with trio.fail_after(self.connect_timeout):
                return await connect(self.host, self.port)
        except trio.TooSlowError:
            raise UpstreamError(f"{self.label}: connect timed out", status_hint=504) from None
        except OSError as exc:
            raise UpstreamError(f"{self.label}: cannot connect: {exc.strerror or exc}") from exc

    def release(self, stream: Socket) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(stream)
        else:
            stream.close()

    def _encode(self, path: str, headers: HeaderList, body: bytes) -> tuple[bytes, ...]:
        """The request as pieces to send: one, or the head and a large body uncopied."""
        head = b"POST %b HTTP/1.1\r\nhost: %b\r\ncontent-length: %d\r\n" % (
            (self.prefix + path).encode("latin-1"),
            self._host_header,
            len(body),
        )
        head += b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n"
        return (head + body,) if len(body) < _UNCOPIED else (head, body)

    async def request(
        self, path: str, headers: HeaderList, body: bytes, *, first_byte_timeout: float
    ) -> _PooledResponse:
        data = self._encode(path, headers, body)
        deadline = time.perf_counter() + first_byte_timeout
        try:
            while self._idle:
                stream = self._idle.pop()
                try:
                    return await self._exchange(stream, data, deadline, reused=True)
                except _EarlyClose:
                    continue
            if time.perf_counter() < deadline:
                stream = await self._connect()
                return await self._exchange(stream, data, deadline, reused=False)
        except _TimedOut:
            pass
        raise UpstreamError(
            f"{self.label}: no response within {first_byte_timeout:g}s", status_hint=504
        )

    async def _exchange(
        self, stream: Socket, data: tuple[bytes, ...], deadline: float, reused: bool
    ) -> _PooledResponse:
        response = _PooledResponse(self, stream)
        response.deadline = deadline
        self.deadlines.add(response)
        try:
            for piece in data:
                await stream.send_all(piece)
            await response.read_head(reused)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            await response.aclose()
            if response.timed_out:
                raise _TimedOut() from None
            if reused:
                raise _EarlyClose() from exc
            raise UpstreamError(f"{self.label}: connection lost: {exc}") from exc
        except BaseException:
            await response.aclose()
            raise
        finally:
            self.deadlines.discard(response)
            response.deadline = math.inf
        return response

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for stream in idle:
            stream.close()


def open_transport(
    url: str, *, connect_timeout: float, deadlines: Deadlines, idle_timeout: float = 300.0
) -> Transport:
    """The right transport for `url`: the fast pool for http://, httpx for https://."""
    if urlsplit(url).scheme == "http":
        return PooledTransport(
            url, connect_timeout=connect_timeout, idle_timeout=idle_timeout, deadlines=deadlines
        )
    return _OnFirstUse(url, connect_timeout=connect_timeout, idle_timeout=idle_timeout)


class _OnFirstUse:
    """An `https://` backend's transport, opened by its first request: httpx and its TLS
    stack cost ~9 MiB and some start-up time, paid only when such a backend is used (the
    built-in cloud presets are configured on every louter, used by few)."""

    def __init__(self, url: str, *, connect_timeout: float, idle_timeout: float) -> None:
        self.label = url
        self._options = {"connect_timeout": connect_timeout, "idle_timeout": idle_timeout}
        self._transport: Transport | None = None

    async def request(
        self, path: str, headers: HeaderList, body: bytes, *, first_byte_timeout: float
    ) -> UpstreamResponse:
        if self._transport is None:
            from louter.http.tls import HttpxTransport

            self._transport = HttpxTransport(self.label, **self._options)
        return await self._transport.request(
            path, headers, body, first_byte_timeout=first_byte_timeout
        )

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()
