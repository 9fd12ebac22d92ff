"""Server-Sent Events: an incremental decoder and a small encoder.

Decoding follows the WHATWG HTML "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

- lines end with CRLF, LF or CR; a CR at the end of one chunk followed by LF at the start
  of the next is one line ending, not two;
- one U+FEFF at the very start of the stream is ignored;
- ``:`` starts a comment; ``field:value`` strips exactly one space after the colon; a line
  without a colon is a field with an empty value;
- ``data`` lines are joined with ``\\n``; a blank line dispatches the event, unless no
  ``data`` line was seen (then the event type is reset and nothing is dispatched);
- ``id`` sets the last event id, which persists across events (values containing NUL are
  ignored); ``retry`` is kept only when it is all ASCII digits.

Deliberate deviations, for a proxy that must lose nothing:

- A line starting with ``{`` is surfaced at once as ``SSEEvent(data=line, event="error")``.
  llama-server writes in-stream errors as a bare JSON line with no ``data:`` prefix; the
  spec would silently ignore it as an unknown field.
- ``flush()`` dispatches a final event that lacks its blank line (llama-server does that)
  instead of discarding it.
- ``retry`` is attached to the next dispatched event (then cleared) rather than being a
  connection setting; a ``retry``-only block therefore is not lost.
- Bytes that are not UTF-8 raise ``ConversionError(status_hint=502)`` instead of being
  replaced with U+FFFD: the upstream broke the protocol and a log must not hide it.

Chunk boundaries mean nothing: feeding a stream whole, byte by byte or split anywhere
yields the same events. Only complete lines are decoded, so a multi-byte character split
across chunks needs no incremental codec (LF and CR never occur inside UTF-8 sequences).
"""

from __future__ import annotations

from dataclasses import dataclass

from louter.errors import ConversionError

__all__ = ["STREAM_HEADERS", "SSEDecoder", "SSEEvent", "encode_event"]

# the response headers of a streamed answer, the same in every SSE dialect
STREAM_HEADERS = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))

_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. `event` is None for the default type ("message")."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConversionError(f"event stream is not UTF-8: {exc}", status_hint=502) from exc


class SSEDecoder:
    """Bytes in, `SSEEvent`s out. One instance per stream; see the module docstring."""

    __slots__ = ("_buffer", "_trailing_cr", "_bom_pending", "_data", "_event", "_id", "_retry")

    def __init__(self) -> None:
        self._buffer = bytearray()  # bytes of the current, unterminated line
        self._trailing_cr = False  # the last chunk ended with CR: skip a leading LF
        self._bom_pending = True  # the first line has not been decoded yet
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume a chunk; return the events it completes.

        Raises:
            ConversionError: (502) a complete line is not valid UTF-8.
        """
        text = self._complete_lines(chunk)
        if text is None:
            return []
        return self._lines(text.split("\n"))

    def flush(self) -> list[SSEEvent]:
        """End of stream: dispatch a pending event even without its trailing blank line.

        Raises:
            ConversionError: (502) the unterminated last line is not valid UTF-8.
        """
        raw = bytes(self._buffer)
        self._buffer.clear()
        self._trailing_cr = False
        lines = [self._strip_bom(_decode(raw))] if raw else []
        return self._lines([*lines, ""])

    def _complete_lines(self, chunk: bytes) -> str | None:
        """Normalise line endings to LF; return the decoded complete lines, if any."""
        if not chunk:
            return None
        if self._trailing_cr:
            self._trailing_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            # A CR ending the chunk ends a line now; an LF opening the next is skipped.
            self._trailing_cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            self._buffer += chunk
            return None
        head = chunk[:end]
        if self._buffer:
            head = bytes(self._buffer) + head
            self._buffer.clear()
        self._buffer += chunk[end + 1 :]
        return self._strip_bom(_decode(head))

    def _strip_bom(self, text: str) -> str:
        if self._bom_pending:
            self._bom_pending = False
            if text.startswith(_BOM):
                return text[1:]
        return text

    def _lines(self, lines: list[str]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in lines:
            if line.startswith("data:"):  # the hot path
                self._data.append(line[6:] if line[5:6] == " " else line[5:])
                continue
            event = self._dispatch() if not line else self._other(line)
            if event is not None:
                events.append(event)
        return events

    def _other(self, line: str) -> SSEEvent | None:
        """A non-blank line that is not `data:`: comment, JSON error, or another field."""
        first = line[0]
        if first == ":":
            return None
        if first == "{":
            return SSEEvent(data=line, event="error")  # deviation: llama-server errors
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        setter = _FIELDS.get(name)
        if setter is not None:
            setter(self, value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = None
            return None
        event = SSEEvent("\n".join(self._data), self._event, self._id, self._retry)
        self._data = []
        self._event = None
        self._retry = None
        return event

    def _set_data(self, value: str) -> None:
        self._data.append(value)

    def _set_event(self, value: str) -> None:
        self._event = value or None

    def _set_id(self, value: str) -> None:
        if "\0" not in value:
            self._id = value

    def _set_retry(self, value: str) -> None:
        if value.isascii() and value.isdigit():
            self._retry = int(value)


_FIELDS = {
    "data": SSEDecoder._set_data,
    "event": SSEDecoder._set_event,
    "id": SSEDecoder._set_id,
    "retry": SSEDecoder._set_retry,
}


def encode_event(data: str | bytes, event: str | None = None) -> bytes:
    """Encode one event as `event: X\\ndata: ...\\n\\n`.

    Args:
        data: the payload; each of its lines (split on CRLF, LF or CR) becomes a
            `data:` line, so the decoder gives back the payload with LF line endings.
        event: the event type; omitted when None.

    Raises:
        ConversionError: (500) the event type contains a line break.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if b"\n" in raw or b"\r" in raw:
        lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        body = b"".join([b"data: " + line + b"\n" for line in lines])
    else:
        body = b"data: " + raw + b"\n"
    if event is None:
        return body + b"\n"
    if "\n" in event or "\r" in event:
        raise ConversionError(f"SSE event type contains a line break: {event!r}", status_hint=500)
    return b"event: " + event.encode("utf-8") + b"\n" + body + b"\n"
