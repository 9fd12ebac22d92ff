"""Inbound HTTP/1.1 server: non-blocking sockets on trio's event loop + httptools (llhttp).

One task per connection reads requests with the compiled parser and hands each complete
request to the application as an `HttpRequest` plus a `Responder`. Keep-alive, pipelining
(requests are answered in order), chunked request bodies, `Expect: 100-continue`, size
limits (413 body, 431 headers), a cap on open connections (503 beyond it) and timeouts
(idle keep-alive; a request's head and whole body must arrive within budgets counted from
its first byte, so trickling bytes does not extend them) are handled here, so handlers
never see parser details. Protocol errors are rendered by an `ErrorBody` the application
passes in (the envelope of the dialect the path belongs to). Deadlines are enforced by
one watchdog task for all connections instead of a cancel scope per request (cheaper on
the hot path); the same task notices a client that hung up while its answer was still
awaited and cancels that request, or tells a streaming answer that watches for it
(`Responder.watch_hangup`).
"""

from __future__ import annotations

import math
import resource
import select
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httptools
import trio

from louter.http.drain import Drain
from louter.http.message import ErrorBody, HttpRequest, Responder, plain_error_body, simple_response
from louter.http.sockets import Socket, accept, open_listeners

Handler = Callable[[HttpRequest, Responder], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limits:
    """Inbound limits. Sizes in bytes, times in seconds."""

    max_body: int = 100 * 1024 * 1024
    max_header: int = 64 * 1024
    idle_timeout: float = 75.0  # keep-alive connection waiting for its next request
    header_timeout: float = 10.0  # a started request's head must be complete within this
    request_timeout: float = 60.0  # a started request must arrive completely within this
    write_timeout: float = 300.0  # a client that stops reading is dropped after this
    max_connections: int | None = None  # open client connections; None: from RLIMIT_NOFILE


def connection_cap(limits: Limits) -> int:
    """`max_connections`, or half the open-file limit less 16 (the rest is left for
    upstream connections, refusals, the log and the runtime)."""
    if limits.max_connections is not None:
        return limits.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 16384
    return max(1, (soft - 32) // 2)


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _ParserProtocol:
    """httptools callbacks; collects complete requests into `ready`."""

    def __init__(self, limits: Limits, names: HeaderNames) -> None:
        self.limits = limits
        self.names = names
        self.parser: httptools.HttpRequestParser | None = None
        self.ready: deque[HttpRequest] = deque()
        self.expect_continue = False
        self.header_bytes = 0  # url + complete header lines of the current message
        self.header_raw = 0  # whole chunks received inside its header block (for endless lines)
        self.in_message = False
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body_parts: list[bytes] = []
        self.body_size = 0
        self.headers_done = False
        self.keep_alive = True
        self.method = "GET"

    def on_message_begin(self) -> None:
        self.in_message = True
        self.header_bytes = self.header_raw = 0

    def _count_header(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > self.limits.max_header:
            raise _Refused(431, "request header fields too large")

    def on_url(self, url: bytes) -> None:
        self._count_header(len(url))
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4  # `_count_header`, inline
        if self.header_bytes > self.limits.max_header:
            raise _Refused(431, "request header fields too large")
        key = self.names.get(name)
        if key is None:
            key = self.names.add(name)
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self.headers_done = True
        assert self.parser is not None
        # Read per message here: after on_message_complete llhttp has reset this state.
        self.keep_alive = self.parser.should_keep_alive()
        self.method = self.parser.get_method().decode("ascii")
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.limits.max_body:
            raise _Refused(413, "request body too large")
        coding = self.headers.get("transfer-encoding")
        if coding is not None and coding.strip().lower() != "chunked":
            # llhttp accepts `gzip, chunked` and would hand on the body still compressed.
            raise _Refused(501, f"transfer-encoding {coding!r} is not supported; use chunked")
        if self.headers.get("expect", "").lower() == "100-continue":
            self.expect_continue = True

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.limits.max_body:
            raise _Refused(413, "request body too large")
        self.body_parts.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.expect_continue = False
        body = self.body_parts[0] if len(self.body_parts) == 1 else b"".join(self.body_parts)
        request = HttpRequest(self.url, self.headers, body)
        request.method = self.method
        request.keep_alive = self.keep_alive
        self.ready.append(request)
        self._reset()


class HeaderNames(dict[bytes, str]):
    """Header names as sent -> lower-case text: one server's bounded cache (clients send
    few distinct names; a client sending many only stops them being remembered)."""

    __slots__ = ()
    LIMIT = 512

    def add(self, name: bytes) -> str:
        """`name` as lower-case text, remembered while there is room."""
        key = name.decode("latin-1").lower()
        if len(self) < self.LIMIT:
            self[name] = key
        return key


class Connection:
    """One client connection: parse, dispatch, respond, repeat while keep-alive."""

    def __init__(
        self,
        stream: Socket,
        handler: Handler,
        limits: Limits,
        names: HeaderNames,
        error_body: ErrorBody = plain_error_body,
    ) -> None:
        self.stream = stream
        self.handler = handler
        self.limits = limits
        self.error_body = error_body
        self.protocol = _ParserProtocol(limits, names)
        self.parser = httptools.HttpRequestParser(self.protocol)
        self.protocol.parser = self.parser
        self.deadline = math.inf
        self.scope = trio.CancelScope()
        self.closed_by_peer = False
        self.waiting: Responder | None = None  # a handler runs
        # Called (instead of cancelling the connection) when the peer hangs up while a
        # handler streams its answer: the streaming code ends itself.
        self.hangup: Callable[[], None] | None = None
        # Called by a graceful stop whose time is up, while a handler streams its answer.
        self.stop: Callable[[str], None] | None = None
        self.draining = False  # a graceful stop: close after the current answer

    def peer(self) -> str:
        """The client's address ("" when the socket has none, e.g. a socketpair)."""
        try:
            address = self.stream.sock.getpeername()
        except OSError:
            return ""
        return address[0] if isinstance(address, tuple) else ""

    def idle_for(self) -> float:
        """Seconds since this connection went idle (while it waits for a request)."""
        return trio.current_time() - (self.deadline - self.limits.idle_timeout)

    def readable(self) -> bool:
        """Bytes from the client wait unread (for a graceful stop: louter/http/drain.py)."""
        if self.stream.closed:
            return False
        poller = select.poll()
        poller.register(self.stream.fileno(), select.POLLIN)
        return bool(poller.poll(0))

    def close_idle(self) -> None:
        """Close the socket now (a graceful stop, between requests): the task waiting for
        the next request gets `trio.ClosedResourceError` and ends."""
        self.stream.close()

    async def run(self) -> None:
        try:
            with self.scope:
                await self._serve()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.stream.close()
            self.protocol.parser = None  # parser <-> protocol: freed now, not by the collector

    async def _serve(self) -> None:
        receive = self.stream.receive  # a new connection's first request is often there
        while True:
            request = await self._next_request(receive)
            receive = self.stream.receive_reply  # the next comes after our answer
            if request is None:
                return
            responder = Responder(self, request.keep_alive and not self.draining)
            self.deadline = math.inf
            self.waiting = responder
            try:
                await self.handler(request, responder)
            finally:
                self.waiting = None
                self.hangup = self.stop = None
            if not responder.finished:
                await responder.abort()
                return
            # Draining, an answer that said keep-alive (it began before the stop) keeps its
            # connection: the client may already be sending on it. The drain closes it
            # once idle, or the next answer says `connection: close`.
            if not responder.keep_alive or self.closed_by_peer:
                return

    async def _next_request(self, receive: Callable[[], Awaitable[bytes]]) -> HttpRequest | None:
        """The next complete request (read with `receive` first); None when the connection
        is to be closed.

        Idle, the connection waits `idle_timeout` for a request to begin; from its first
        byte the head must be complete within `header_timeout` and the whole request
        within `request_timeout`. Those budgets are not renewed by each arriving byte. (A
        pipelined request already begun is counted from here, after the previous answer.)
        """
        protocol = self.protocol
        ready = protocol.ready
        limits = self.limits
        started = trio.current_time() if protocol.in_message else math.inf
        while not ready:
            if not protocol.in_message:
                self.deadline = trio.current_time() + limits.idle_timeout
                started = math.inf
            data = await receive()
            receive = self.stream.receive
            if not data:
                return None
            refusal = self._parse(data)
            if refusal is not None:
                await self._reject(*refusal)
                return None
            if protocol.expect_continue and not ready:
                protocol.expect_continue = False
                await self.stream.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            if protocol.in_message:
                if started == math.inf:
                    started = trio.current_time()
                budget = limits.request_timeout
                if not protocol.headers_done:
                    budget = min(budget, limits.header_timeout)
                self.deadline = started + budget
        return ready.popleft()

    def _parse(self, data: bytes) -> tuple[int, str] | None:
        """Feed bytes to the parser: the (status, reason) to refuse the request with, or
        None (no await: most requests need no answer from here)."""
        protocol = self.protocol
        in_headers = protocol.in_message and not protocol.headers_done
        queued = len(protocol.ready)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # 426: plain HTTP only. Codex then falls back from its WebSocket to POST at once.
            return 426, "protocol upgrades (WebSocket) are not supported; use HTTP"
        except httptools.HttpParserError as exc:
            # httptools wraps a callback's exception: it is the error's __context__.
            cause = exc.__context__
            if isinstance(cause, _Refused):
                return cause.status, cause.reason
            return 400, f"malformed HTTP request: {exc}"
        if in_headers and not protocol.headers_done and len(protocol.ready) == queued:
            # The whole chunk is inside one header block; llhttp buffers an unfinished
            # header line without calling back, so count such chunks too.
            protocol.header_raw += len(data)
            if protocol.header_raw > self.limits.max_header:
                return 431, "request header fields too large"
        return None

    async def _reject(self, status: int, reason: str) -> None:
        target = self.protocol.url or None  # the request target, as far as it arrived
        await self.send_all(simple_response(status, self.error_body(target, status, reason)))

    async def send_all(self, data: bytes) -> None:
        sent = self.stream.send_now(data)  # the usual case: all of it, no wait
        if sent == len(data):
            return
        self.deadline = trio.current_time() + self.limits.write_timeout
        await self.stream.send_rest(data, sent)
        self.deadline = math.inf


class Watchdog:
    """Cancels connections whose deadline passed, and requests whose client hung up while
    louter was still waiting for the answer (so the upstream request is cancelled too).
    One task for all connections."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.connections: set[Connection] = set()

    async def run(self) -> None:
        while True:
            await trio.sleep(self.interval)
            now = trio.current_time()
            for connection in list(self.connections):
                if connection.deadline < now:
                    connection.scope.cancel()
            for connection in hung_up(self.connections):
                connection.closed_by_peer = True
                if connection.hangup is not None:
                    connection.hangup()
                else:
                    connection.scope.cancel()


REFUSAL_LINGER = 1.0  # seconds a refused connection may take to send its head and leave


async def refuse(stream: Socket, error_body: ErrorBody) -> None:
    """Answer a connection beyond the cap with 503 (`retry-after`, `connection: close`)
    and close it. Waits for the request's first bytes (to answer in its path's dialect,
    and so that closing with unread data does not reset the answer away), then for the
    client to leave; at most `REFUSAL_LINGER` seconds in all."""
    with trio.move_on_after(REFUSAL_LINGER):
        try:
            head = await stream.receive()
            message = "louter is at its connection limit; retry shortly"
            body = error_body(_request_target(head), 503, message)
            await stream.send_all(simple_response(503, body, b"retry-after: 1\r\n"))
            stream.sock.shutdown(socket.SHUT_WR)
            while await stream.receive():
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client left: nothing more to tell it
    stream.close()


def _request_target(head: bytes) -> bytes | None:
    """The target of a request line (`POST /v1/messages HTTP/1.1`), if it is complete."""
    line, sep, _ = head.partition(b"\r\n")
    parts = line.split(b" ")
    return parts[1] if sep and len(parts) == 3 else None


_RDHUP = getattr(select, "POLLRDHUP", 0)  # Linux: the peer shut down its sending side


def hung_up(connections: set[Connection]) -> list[Connection]:
    """Connections whose handler has not answered yet (or streams its answer and watches
    for a hang-up) and whose peer has closed: one
    `poll` call for all of them, which consumes nothing (pipelined bytes stay unread).
    Without `POLLRDHUP` (not Linux) a half-closed peer is not seen: nothing is reported."""
    if not _RDHUP:
        return []
    waiting = {
        c.stream.fileno(): c
        for c in connections
        if c.waiting is not None and (not c.waiting.started or c.hangup is not None)
    }
    if not waiting:
        return []
    poller = select.poll()
    hangup = _RDHUP | select.POLLHUP | select.POLLERR
    for fd in waiting:
        poller.register(fd, hangup)
    return [waiting[fd] for fd, events in poller.poll(0) if events & hangup]


def _backlog(listeners: Sequence[socket.socket]) -> list[Socket]:
    """The connections the kernel completed that louter has not accepted yet (at most
    the listen backlog): closing the listening socket would reset them, and a client
    that already sent its request there (nginx) cannot tell it was never read."""
    pending = []
    for listener in listeners:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:  # none left (or the listener is gone)
                break
            pending.append(Socket(sock))
    return pending


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    limits: Limits | None = None,
    error_body: ErrorBody = plain_error_body,
    background: Sequence[Callable[[], Awaitable[None]]] = (),
    drain: Drain | None = None,
    listeners: Sequence[socket.socket] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `handler` on host:port until cancelled; reports the bound port via task_status.
    With `listeners` (sockets bound and listening already: a worker of `--workers N`)
    host and port are not used.

    `error_body` renders protocol errors (malformed requests, size limits, the connection
    cap). `background` tasks run alongside the server and stop with it. A port that cannot
    be bound raises `OSError` before anything starts. With a `drain`, `drain.start()`
    stops the server gracefully (louter/http/drain.py) and `serve` returns."""
    limits = limits or Limits()
    cap = connection_cap(limits)
    active = 0  # connections admitted (counted before their task starts)
    if listeners is None:
        listeners = await open_listeners(host, port)
    watchdog = Watchdog()
    names = HeaderNames()  # shared by this server's connections

    async def on_connection(stream: Socket) -> None:
        nonlocal active
        connection = Connection(stream, handler, limits, names, error_body)
        watchdog.connections.add(connection)
        try:
            await connection.run()
        finally:
            watchdog.connections.discard(connection)
            active -= 1

    async def accept_loop(listener: socket.socket) -> None:
        nonlocal active
        with listener:
            while True:
                stream = await accept(listener)
                if active >= cap:
                    nursery.start_soon(refuse, stream, error_body)
                    continue
                active += 1
                nursery.start_soon(on_connection, stream)

    async def accept_all(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        async with trio.open_nursery() as accepting:
            for listener in listeners:
                accepting.start_soon(accept_loop, listener)
            task_status.started(accepting.cancel_scope)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog.run)
        for task in background:
            nursery.start_soon(task)
        accepting = await nursery.start(accept_all)
        task_status.started(listeners[0].getsockname()[1])
        if drain is not None:
            await drain.requested.wait()
            for stream in _backlog(listeners):  # served, told `connection: close`
                active += 1
                nursery.start_soon(on_connection, stream)
            accepting.cancel()  # closes the listening sockets
            await drain.run(watchdog.connections)
            nursery.cancel_scope.cancel()
