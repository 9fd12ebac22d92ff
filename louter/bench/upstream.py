"""A fast mock OpenAI-compatible upstream for the benchmark (asyncio, standard library only).

    python3 -m louter.bench.upstream [--host 127.0.0.1] [--port 0]

It has to be much faster than the proxy it feeds, so it does next to nothing per
request: find the end of the head, read `Content-Length`, look for two markers in the
body and write one of a few pre-built responses (headers and body in one `bytes`).
Scanning runs at ~1 GB/s in CPython, so a large body (S4's 50 KB) that was seen before
is recognised by comparing it with the remembered one (memcmp speed) instead:
benchmark clients send the same body over and over.

- `POST {any prefix}/chat/completions` whose body has `"stream": true` (any spaces):
  a 100-event SSE stream (`bodies.stream_answer`), sent with a Content-Length;
- ... whose body has a `"tools"` key: a `chat.completion` with one `get_weather` call;
- ... any other body: a `chat.completion` with text and usage;
- anything else: 404; a chunked request body: 501, a bad Content-Length: 400, and then
  the connection closes.

Connections are kept alive (HTTP/1.1 default; `Connection: close` and HTTP/1.0 close
after the answer). Requests may arrive split across reads or several in one read
(pipelining): answers go out in order, those of one read in one write. When the client
stops reading, the server stops reading too (transport flow control).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from louter.bench import bodies

_HEAD_END = b"\r\n\r\n"
_STREAM_KEY = b'"stream"'
_TOOLS_MARKER = b'"tools"'
_PATH = b"/chat/completions"
_REMEMBER_FROM = 4096  # bodies at least this long are remembered...
_REMEMBER_UP_TO = 1 << 20  # ...up to this long,
_REMEMBERED = 64  # and this many at most (by length; forgotten all at once when full)


def _response(status: str, content_type: str, body: bytes, *, close: bool) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
    if content_type == "text/event-stream":
        head += "Cache-Control: no-cache\r\n"
    if close:
        head += "Connection: close\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def build_answers(*, close: bool) -> dict[str, bytes]:
    """Every answer the server sends, as complete HTTP responses, by kind."""
    json_type = "application/json"
    not_found = b'{"error":{"message":"not found","type":"invalid_request_error"}}'
    chunked = b'{"error":{"message":"chunked request bodies are not supported"}}'
    bad = b'{"error":{"message":"bad Content-Length"}}'
    return {
        "chat": _response("200 OK", json_type, bodies.chat_answer(), close=close),
        "tools": _response("200 OK", json_type, bodies.tools_answer(), close=close),
        "stream": _response("200 OK", "text/event-stream", bodies.stream_answer(), close=close),
        "missing": _response("404 Not Found", json_type, not_found, close=close),
        "chunked": _response("501 Not Implemented", json_type, chunked, close=True),
        "bad": _response("400 Bad Request", json_type, bad, close=True),
    }


def _header_value(head: bytes, name: bytes) -> bytes | None:
    """The value of header `name` (lower-case, with its leading `\\r\\n` and trailing `:`)
    in the lower-cased `head`, or None."""
    start = head.find(name)
    if start < 0:
        return None
    start += len(name)
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


def _streams(buffer: bytearray, start: int, end: int) -> bool:
    """Whether `buffer[start:end]` has `"stream"` followed by `: true` (spaces allowed).
    One scan for the key, not one per spelling: a 50 KB body costs ~25 µs a scan."""
    at = buffer.find(_STREAM_KEY, start, end)
    while at >= 0:
        after = at + len(_STREAM_KEY)
        before, _, value = bytes(buffer[after : min(after + 16, end)]).lstrip().partition(b":")
        if not before and value.lstrip().startswith(b"true"):
            return True
        at = buffer.find(_STREAM_KEY, after, end)
    return False


def scan(buffer: bytearray, start: int, end: int) -> str:
    """The kind of answer for a chat request with body `buffer[start:end]`."""
    if _streams(buffer, start, end):
        return "stream"
    return "tools" if buffer.find(_TOOLS_MARKER, start, end) >= 0 else "chat"


def _closes(head: bytes) -> bool:
    """Whether the connection closes after answering this (lower-cased) head."""
    return (
        _header_value(head, b"\r\nconnection:") == b"close"
        or head.find(b" http/1.0\r\n") > 0
        or head.endswith(b" http/1.0")
    )


class Answers:
    """What to answer, shared by the connections of one server: the pre-built responses
    and the large bodies seen lately with the kind of answer each got."""

    def __init__(self) -> None:
        self.keep_alive = build_answers(close=False)
        self.closing = build_answers(close=True)
        self._seen: dict[int, tuple[bytes, str]] = {}  # body length -> (body, kind)

    def kind(self, head: bytes, buffer: bytearray, start: int, end: int) -> str:
        """The kind of answer for a request with lower-cased `head`, body
        `buffer[start:end]`."""
        method, _, rest = head.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if method != b"post" or not path.endswith(_PATH):
            return "missing"
        size = end - start
        if not _REMEMBER_FROM <= size <= _REMEMBER_UP_TO:
            return scan(buffer, start, end)
        body = buffer[start:end]
        seen = self._seen.get(size)
        if seen is not None and seen[0] == body:
            return seen[1]
        kind = scan(buffer, start, end)
        if len(self._seen) >= _REMEMBERED:
            self._seen.clear()
        self._seen[size] = (bytes(body), kind)
        return kind


class MockUpstream(asyncio.Protocol):
    """One client connection: buffer bytes, answer every complete request in order."""

    def __init__(self, answers: Answers) -> None:
        self._answers = answers
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._need = 0  # bytes the request at the front needs in all (0: head not yet seen)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if len(buffer) < self._need:
            return
        answers: list[bytes] = []
        close = self._answer_all(answers)
        transport = self._transport
        assert transport is not None
        if answers:
            transport.write(answers[0] if len(answers) == 1 else b"".join(answers))
        if close:
            transport.close()

    def _answer_all(self, answers: list[bytes]) -> bool:
        """Append the answers to every complete request in the buffer and drop those
        requests from it; True when the connection must close after the answers."""
        buffer = self._buffer
        offset, close = 0, False
        self._need = 0
        while not close:
            head_end = buffer.find(_HEAD_END, offset)
            if head_end < 0:
                break
            head = bytes(buffer[offset:head_end]).lower()
            if b"\r\ntransfer-encoding:" in head:
                answers.append(self._answers.closing["chunked"])
                return True
            length = _header_value(head, b"\r\ncontent-length:") or b"0"
            if not length.isdigit():
                answers.append(self._answers.closing["bad"])
                return True
            body_start = head_end + 4
            body_end = body_start + int(length)
            if len(buffer) < body_end:
                self._need = body_end - offset
                break
            close = _closes(head)
            kind = self._answers.kind(head, buffer, body_start, body_end)
            book = self._answers.closing if close else self._answers.keep_alive
            answers.append(book[kind])
            offset = body_end
        del buffer[:offset]
        return close

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()


async def serve(host: str, port: int, *, announce: bool = True) -> None:
    """Serve until cancelled; with `announce`, print the URL on stdout once listening."""
    loop = asyncio.get_running_loop()
    answers = Answers()
    server = await loop.create_server(lambda: MockUpstream(answers), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    if announce:
        print(f"louter.bench.upstream listening on http://{host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m louter.bench.upstream",
        description="A fast mock OpenAI-compatible upstream (benchmark answers only).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    options = parser.parse_args(argv)
    try:
        asyncio.run(serve(options.host, options.port))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
