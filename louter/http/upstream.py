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

import fcntl
import math
import re
import socket
import termios
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit

import httptools
import trio

from louter.config import Proxies
from louter.errors import UpstreamError
from louter.http.deadlines import Deadlines
from louter.http.message import HeaderList
from louter.http.sockets import Socket, connect
from louter.http.target import addresses, header_block, host_header, request_target, scrub


class UpstreamResponse(Protocol):
    status: int
    headers: HeaderList  # lower-case names

    def chunks(self) -> AsyncGenerator[bytes, None]: ...
    @property
    def ready(self) -> bool:
        """The next step of `chunks` yields (or ends) without waiting on the upstream."""
        ...

    async def read(self) -> bytes: ...
    async def aclose(self) -> None: ...


class Transport(Protocol):
    async def request(
        self,
        path: str,
        headers: HeaderList,
        body: bytes,
        *,
        first_byte_timeout: float,
        method: str = "POST",
    ) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


_METHODS = {"POST": b"POST", "GET": b"GET"}  # the only ones louter sends upstream


class _EarlyClose(Exception):
    """The upstream closed a reused connection before answering: safe to retry."""


class _TimedOut(Exception):
    """No response head before the request's deadline."""


# --------------------------------------------------------------------------- fast pool


class _ResponseProtocol:
    """httptools callbacks for one response. Interim 1xx answers (100 Continue, 103 Early
    Hints; not 101) are skipped; anything after the final message ends (a second,
    unsolicited response, or bytes that are not HTTP) only sets `extra`: it is never
    added to this body, and the connection is then closed instead of reused."""

    __slots__ = ("headers", "headers_done", "body", "complete", "keep_alive", "parser",
                 "interim", "extra")  # fmt: skip

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.reset()

    def reset(self) -> None:
        """Ready for the next response on the same connection (the parser is reused:
        llhttp starts a new message after a complete keep-alive one)."""
        self.keep_alive = False
        self.headers: HeaderList = []
        self.headers_done = False
        self.body: deque[bytes] = deque()
        self.complete = False
        self.interim = False
        self.extra = False

    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.complete:
            self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        assert self.parser is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.interim = True
            self.headers = []
            return
        self.headers_done = True
        # reset after the message ends; a 101 (an upgrade nobody asked for) is not reused
        self.keep_alive = status != 101 and self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.complete:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
        elif self.headers_done:
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
        # A reused connection's parser, kept from its last response (which was complete
        # and keep-alive, or the connection would not be back in the pool)
        protocol = stream.kept
        if isinstance(protocol, _ResponseProtocol) and protocol.parser is not None:
            protocol.reset()
            parser = protocol.parser
        else:
            protocol = _ResponseProtocol()
            parser = protocol.parser = httptools.HttpResponseParser(protocol)
            stream.kept = protocol
        self._protocol = protocol
        self._parser = parser
        self.status = 0
        self.headers: HeaderList = []
        self.deadline = math.inf
        self.timed_out = False

    def unfit(self) -> None:
        """Whatever this response turns out to be, its connection is not to be reused."""
        self._protocol.extra = True

    def expire(self) -> None:
        self.timed_out = True
        if self._stream is not None:
            self._stream.close()

    async def read_head(self, reused: bool) -> None:
        protocol = self._protocol
        assert self._stream is not None
        receive = self._stream.receive_reply  # the answer is not there right after the send
        while not protocol.headers_done:
            data = await receive()
            receive = self._stream.receive
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
        if self.status == 101:
            raise UpstreamError(f"{self._pool.label}: unexpected 101 Switching Protocols")

    def _feed(self, data: bytes) -> None:
        """Parse `data`. Bytes after the end of the response (not HTTP, or an upgrade) are
        no error for this response; they only keep the connection out of the pool."""
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self._protocol.complete:
                self._protocol.extra = True
                return
            raise UpstreamError(f"{self._pool.label}: malformed HTTP response: {exc}") from exc

    def _delimited(self) -> bool:
        names = {name for name, _ in self.headers}
        return b"content-length" in names or b"transfer-encoding" in names

    @property
    def ready(self) -> bool:
        protocol = self._protocol
        return bool(protocol.body) or protocol.complete or self._stream is None

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives, one piece per network read (its HTTP chunks joined).
        No deadline here: the proxy's `Deadlines` bound the silence between chunks (one
        task for all streams, not a cancel scope per read)."""
        protocol = self._protocol
        body = protocol.body
        while True:
            if body:
                if len(body) == 1:
                    yield body.popleft()
                else:
                    joined = b"".join(body)
                    body.clear()
                    yield joined
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
        try:
            self._feed(data)
        except UpstreamError:
            await self.aclose()  # a parse error: this connection is done
            raise
        return True

    def _finish(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        protocol = self._protocol
        if protocol.complete and protocol.keep_alive and not protocol.extra:
            self._pool.release(stream)
        else:
            _close(stream)

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            _close(stream)


def _close(stream: Socket) -> None:
    """Close an upstream connection and let go of the parser it kept: the parser and its
    callbacks refer to each other, and would otherwise wait for the cyclic collector
    (a llama-server closes its connection after every stream)."""
    kept, stream.kept = stream.kept, None
    if isinstance(kept, _ResponseProtocol):
        kept.parser = None
    stream.close()


class PooledTransport:
    """Keep-alive pool to one `http://host:port` upstream.

    `label` (the backend's config name) names the upstream in every error: the URL, its
    host and any credentials in it never reach a client, the log or stderr. A connection
    goes back to the pool only after its response was read exactly to its end with nothing
    after it, and is checked for unread bytes again before it is reused."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        deadlines: Deadlines,
        idle_timeout: float = 300.0,
        max_idle: int = 256,
        label: str = "upstream",
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.label = label
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.deadlines = deadlines
        self.max_idle = max_idle
        self._idle: list[Socket] = []
        self._secrets = addresses(url)
        self._host_header = host_header(self.host, parts.port).encode("latin-1")
        self._starts: dict[tuple[bytes, str], bytes] = {}  # (method, path) -> `_start`

    async def _connect(self) -> Socket:
        try:
            with trio.fail_after(self.connect_timeout):
                return await connect(self.host, self.port)
        except trio.TooSlowError:
            raise UpstreamError(f"{self.label}: connect timed out", status_hint=504) from None
        except OSError as exc:
            reason = scrub(str(exc.strerror or exc), self._secrets, self.label)
            raise UpstreamError(f"{self.label}: cannot connect: {reason}") from exc

    def release(self, stream: Socket) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(stream)
        else:
            _close(stream)

    def _encode(
        self, path: str, headers: HeaderList, body: bytes, method: bytes = b"POST"
    ) -> tuple[bytes, ...]:
        """The request as pieces to send: one, or the head and a large body uncopied.
        An unsafe target or header is refused here (never sent)."""
        start = self._starts.get((method, path))
        if start is None:
            start = self._start(method, path)
        block = header_block(headers, self.label)
        if len(body) < _PIECE:  # one piece, formatted at once
            return (b"%b%d\r\n%b\r\n%b" % (start, len(body), block, body),)
        return (b"%b%d\r\n%b\r\n" % (start, len(body), block), body)

    def _start(self, method: bytes, path: str) -> bytes:
        """The request line, host and `content-length: ` of `method` on `path` (checked
        once; kept for the next request while there are few: Gemini paths name models)."""
        start = b"%b %b HTTP/1.1\r\nhost: %b\r\ncontent-length: " % (
            method,
            request_target(self.prefix, path, self.label),
            self._host_header,
        )
        if len(self._starts) < _MAX_STARTS:
            self._starts[(method, path)] = start
        return start

    async def request(
        self,
        path: str,
        headers: HeaderList,
        body: bytes,
        *,
        first_byte_timeout: float,
        method: str = "POST",
    ) -> _PooledResponse:
        data = self._encode(path, headers, body, _METHODS[method])
        deadline = time.perf_counter() + first_byte_timeout
        try:
            while self._idle:
                stream = self._idle.pop()
                if _stale(stream):
                    _close(stream)
                    continue
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
            if len(data) == 1:
                await stream.send_all(data[0])
            else:
                await stream.send_all(data[0])
                await _send_pieces(stream, data[1], response)
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
            _close(stream)


_MAX_STARTS = 64  # request heads' starts kept per backend (`PooledTransport._start`)
_PIECE = 64 * 1024  # below the usual socket send buffer: one send() is one piece


async def _send_pieces(stream: Socket, body: bytes, response: _PooledResponse) -> None:
    """Send a large request body (its head is sent) in pieces, uncopied, looking for an
    early answer before each (a cheap ioctl): an upstream that answers before the request
    is all sent gets no more of it, its answer is read, and the connection is not reused."""
    view = memoryview(body)
    for start in range(0, len(body), _PIECE):
        if _answered_early(stream):
            response.unfit()
            return
        await stream.send_all(view[start : start + _PIECE])


_INTERIM = re.compile(rb"HTTP/1\.[01] 1(?!01)[0-9][0-9] ")


def _answered_early(stream: Socket) -> bool:
    """Bytes (other than an interim 1xx answer) before the request was all sent. (A
    hang-up shows as a failed send.)"""
    if not _stale(stream):
        return False
    try:
        data = stream.sock.recv(16, socket.MSG_PEEK)
    except OSError:
        return True
    if not data:
        return True
    # a status line not yet whole is decided at the next piece
    return len(data) >= 13 and _INTERIM.match(data) is None


_NOTHING = bytes(4)


def _stale(stream: Socket) -> bool:
    """An idle connection holding bytes nobody asked for: not to be reused (one ioctl,
    no exception on the usual path; a hang-up shows at the send, as before)."""
    try:
        return fcntl.ioctl(stream.sock.fileno(), termios.FIONREAD, _NOTHING) != _NOTHING
    except OSError:
        return True


def open_transport(
    url: str,
    *,
    connect_timeout: float,
    deadlines: Deadlines,
    idle_timeout: float = 300.0,
    label: str = "upstream",
    proxies: Proxies | None = None,
) -> Transport:
    """The right transport for `url`: the fast pool for http://, httpx for https:// and
    for anything sent through an outbound proxy (`proxies`, from HTTP(S)_PROXY).
    `label` names the backend in error messages (its config name, never the URL)."""
    proxies = proxies or Proxies()
    proxy = proxies.for_url(url)
    if urlsplit(url).scheme == "http" and proxy is None:
        return PooledTransport(
            url,
            connect_timeout=connect_timeout,
            idle_timeout=idle_timeout,
            deadlines=deadlines,
            label=label,
        )
    options = {"connect_timeout": connect_timeout, "idle_timeout": idle_timeout}
    return OnFirstUse(
        partial(_httpx, url, label, proxy=proxy, ca=(proxies.ca_file, proxies.ca_dir), **options)
    )


def _httpx(url: str, label: str, **options: Any) -> Transport:
    """An `https://` backend's transport: httpx and its TLS stack cost ~9 MiB and some
    start-up time, paid only when such a backend is used (`OnFirstUse`: the built-in cloud
    presets are configured on every louter, used by few)."""
    from louter.http.tls import HttpxTransport  # noqa: PLC0415

    return HttpxTransport(url, label=label, **options)


class OnFirstUse:
    """A transport made by its first request (`make`), for one whose code is costly to
    load and which many louters never use (an `https://` preset, the built-in mock)."""

    def __init__(self, make: Callable[[], Transport]) -> None:
        self._make = make
        self._transport: Transport | None = None

    async def request(
        self,
        path: str,
        headers: HeaderList,
        body: bytes,
        *,
        first_byte_timeout: float,
        method: str = "POST",
    ) -> UpstreamResponse:
        if self._transport is None:
            self._transport = self._make()
        return await self._transport.request(
            path, headers, body, first_byte_timeout=first_byte_timeout, method=method
        )

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()
