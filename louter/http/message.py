"""What handlers see of HTTP: a parsed `HttpRequest` and a `Responder` to answer it.
(`HttpRequest` is the wire request; `louter.convert.model.Request` the neutral one.)

Headers are a dict of lower-case names to values (repeated headers joined with ", ").
Response headers are passed as a list of (lower-case name, value) byte pairs;
`content-length`, `transfer-encoding` and `connection` are written by the responder itself.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterable

HeaderList = list[tuple[bytes, bytes]]

_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_OWN_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})


class HttpRequest:
    """One inbound request. `target` is the raw request target (path and query)."""

    __slots__ = ("target", "headers", "body", "method", "keep_alive", "_path", "_query")

    def __init__(self, target: bytes, headers: dict[str, str], body: bytes) -> None:
        self.target = target
        self.headers = headers
        self.body = body
        self.method = "GET"
        self.keep_alive = True
        self._path: str | None = None
        self._query: dict[str, str] | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = self.target.split(b"?", 1)[0].decode("latin-1")
        return self._path

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            _, _, raw = self.target.partition(b"?")
            self._query = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
        return self._query


class _Channel(Protocol):
    closed_by_peer: bool
    hangup: Callable[[], None] | None
    stop: Callable[[str], None] | None

    async def send_all(self, data: bytes) -> None: ...

    def peer(self) -> str: ...


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Unknown\r\n" % status


_STATUS_LINES = {code: b"HTTP/1.1 %d %s\r\n" % (code, reason) for code, reason in _REASONS.items()}


def encode_headers(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Header lines; names are lower-case (the responder writes its own framing ones)."""
    return b"".join(
        [name + b": " + value + b"\r\n" for name, value in headers if name not in _OWN_HEADERS]
    )


ErrorBody = Callable[["bytes | None", int, str], bytes]
"""Renders a protocol error's JSON body: (request target if known, status, message)."""


def plain_error_body(target: bytes | None, status: int, message: str) -> bytes:
    """OpenAI's error envelope, whatever the path (the server's default renderer)."""
    kind = "api_error" if status >= 500 else "invalid_request_error"
    return orjson.dumps({"error": {"message": message, "type": kind}})


def simple_response(status: int, body: bytes, headers: bytes = b"") -> bytes:
    """A complete `connection: close` JSON response, for protocol-level errors; `headers`
    are extra complete header lines."""
    return (
        status_line(status)
        + b"content-type: application/json\r\nconnection: close\r\n"
        + headers
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


class Responder:
    """Writes one response: whole (`send`) or streamed with chunked encoding (`start`...)."""

    __slots__ = ("_channel", "keep_alive", "started", "finished", "status", "stamp", "extra",
                 "_held")  # fmt: skip

    def __init__(self, channel: _Channel, keep_alive: bool) -> None:
        self._channel = channel
        self.keep_alive = keep_alive
        self.started = False  # any byte sent to the client (no retry after this)
        self.finished = False
        self.status = 0
        # One more header line computed as the head is written (louter's overhead so far).
        self.stamp: Callable[[], bytes] | None = None
        self.extra = b""  # encoded headers added to the head (a pipeline stage's)
        self._held: list[bytes] = []  # a stream's bytes to go out with its next send

    def peer(self) -> str:
        """The client's address ("" when unknown)."""
        return self._channel.peer()

    @property
    def client_gone(self) -> bool:
        """The client closed its side of the connection."""
        return self._channel.closed_by_peer

    def _head(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        self.status = status
        connection = b"" if self.keep_alive else b"connection: close\r\n"
        stamp = b"" if self.stamp is None else self.stamp()
        line = status_line(status)
        return b"%b%b%b%b%b" % (line, encode_headers(headers), self.extra, stamp, connection)

    async def send(self, status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> None:
        """Send a complete response with a content-length."""
        data = b"%bcontent-length: %d\r\n\r\n%b" % (self._head(status, headers), len(body), body)
        self.started = True
        await self._channel.send_all(data)
        self.finished = True

    async def send_json(
        self, status: int, payload: object, headers: HeaderList | None = None
    ) -> None:
        body = orjson.dumps(payload)
        await self.send(status, [(b"content-type", b"application/json"), *(headers or [])], body)

    async def start(
        self, status: int, headers: Iterable[tuple[bytes, bytes]], *, hold: bool = False
    ) -> None:
        """Send the head of a streamed (chunked) response; with `hold`, keep it to go out
        with the next send (`write`, `flush`, `end`)."""
        self.started = True
        head = self._head(status, headers) + b"transfer-encoding: chunked\r\n\r\n"
        if hold:
            self._held.append(head)
        else:
            await self._channel.send_all(head)

    def hold(self, data: bytes) -> None:
        """Frame one chunk of a streamed response to go out with the next send (bytes
        that are there together leave in one system call)."""
        if data:
            self._held += (b"%x\r\n" % len(data), data, b"\r\n")

    async def write(self, data: bytes) -> None:
        """Send one chunk of a streamed response (empty data is skipped), after what is
        held."""
        if self._held:
            self.hold(data)
            await self.flush()
        elif data:
            await self._channel.send_all(b"%x\r\n%b\r\n" % (len(data), data))

    async def flush(self) -> None:
        """Send what is held."""
        held = self._held
        if held:
            self._held = []
            await self._channel.send_all(held[0] if len(held) == 1 else b"".join(held))

    async def end(self) -> None:
        """Finish a streamed response (what is held goes with it)."""
        self._held.append(b"0\r\n\r\n")
        await self.flush()
        self.finished = True

    async def abort(self) -> None:
        """The handler returned without finishing: close the connection (no keep-alive)."""
        self.keep_alive = False

    def watch_hangup(
        self, callback: Callable[[], None] | None, stop: Callable[[str], None] | None = None
    ) -> None:
        """Have `callback` called if the client hangs up while this (streamed) answer is
        being sent (checked a couple of times a second, for all connections at once);
        None stops watching. `stop(message)` is called when a graceful stop of the server
        runs out of time: end the answer with an error."""
        self._channel.hangup = callback
        self._channel.stop = stop
