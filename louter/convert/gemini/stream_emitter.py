"""Neutral stream events -> Gemini stream bytes (`StreamEmitter`), design §6.

Emitting (`StreamEmitter`): text and reasoning go out at once, one part per chunk; tool
calls are buffered until ToolCallEnd (or MessageStop) and go out whole as a
`functionCall` part with an `args` object. MessageStop writes the final chunk:
`finishReason`, `usageMetadata` and the calls still open, or a `{"text": ""}` part, so
no chunk ever has empty `candidates` or `parts` (gemini-cli retries those). Arguments
that are not a JSON object, a StreamError, or a `flush()` without MessageStop end the
stream with an error chunk `{"error": {code, message, status}}`, never with STOP.
Framing: SSE `data: {json}\r\n\r\n` (what Gemini sends), or without `alt=sse` one JSON
array written incrementally (`[` chunk `,\r\n` chunk ... `]`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from louter.convert.gemini.response import (
    answer_parts,
    wire_finish,
    write_usage,
)
from louter.convert.gemini.stream_parser import NO_FINISH, Wire
from louter.convert.gemini.wire import error_body
from louter.convert.model import (
    MessageStart,
    MessageStop,
    Part,
    Reasoning,
    ReasoningDelta,
    ResponseMeta,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from louter.errors import ConversionError

# --------------------------------------------------------------------------- emitting


class _Call:
    """A tool call being buffered until its end: Gemini sends calls whole."""

    __slots__ = ("start", "arguments")

    def __init__(self, start: ToolCallStart) -> None:
        self.start = start
        self.arguments: list[str] = []

    def part(self) -> Part:
        start = self.start
        return ToolCall(start.id, start.name, "".join(self.arguments) or "{}", start.signature)


class StreamEmitter:
    """Neutral stream events -> Gemini stream bytes. One instance per stream."""

    __slots__ = ("_meta", "_sse", "_calls", "_usage", "_chunks", "_closed", "_flushed")

    def __init__(self, meta: ResponseMeta, *, sse: bool = True) -> None:
        self._meta = meta
        self._sse = sse
        self._calls: dict[int, _Call] = {}
        self._usage: Usage | None = None
        self._chunks = 0  # chunks written (for the array framing)
        self._closed = False  # the final chunk or an error chunk was written
        self._flushed = False

    def feed(self, event: StreamEvent) -> bytes:
        """Take one neutral event; return the bytes to send now (maybe none)."""
        if self._closed:
            return b""
        return _HANDLERS[type(event)](self, event)

    def prelude(self) -> bytes:
        """The stream's opening, written before the first upstream event arrives."""
        return self.feed(MessageStart())

    def flush(self) -> bytes:
        """End of stream: an error chunk if MessageStop never came; `]` in array mode."""
        if self._flushed:
            return b""
        out = b"" if self._closed else self._error(StreamError(NO_FINISH))
        self._flushed = True
        if self._sse:
            return out
        return out + (b"]" if self._chunks else b"[]")

    def _ignore(self, event: Any) -> bytes:
        return b""

    def _text(self, event: TextDelta | ReasoningDelta) -> bytes:
        if isinstance(event, ReasoningDelta):
            if event.redacted is not None:
                return b""  # another provider's opaque reasoning: Gemini cannot carry it
            part: Part = Reasoning(event.text, event.signature)
        else:
            part = Text(event.text, event.signature)
        if not event.text and event.signature is None:
            return b""
        return self._write(self._chunk(answer_parts([part])))

    def _call_start(self, event: ToolCallStart) -> bytes:
        self._calls[event.index] = _Call(event)
        return b""

    def _call_delta(self, event: ToolCallDelta) -> bytes:
        call = self._calls.get(event.index)
        if call is None:
            raise ConversionError(f"tool call {event.index} was never started", status_hint=500)
        call.arguments.append(event.arguments)
        return b""

    def _call_end(self, event: ToolCallEnd) -> bytes:
        call = self._calls.pop(event.index, None)
        if call is None:
            return b""
        return self._parts_chunk([call.part()])

    def _usage_update(self, event: UsageUpdate) -> bytes:
        self._usage = event.usage
        return b""

    def _stop(self, event: MessageStop) -> bytes:
        usage = event.usage or self._usage or Usage(self._meta.input_tokens)
        pending = [self._calls[index].part() for index in sorted(self._calls)]
        self._calls.clear()
        self._closed = True
        extra = {"finishReason": wire_finish(event.finish_reason)}
        return self._parts_chunk(pending or [Text("")], extra, usage)

    def _error(self, event: StreamError) -> bytes:
        self._closed = True
        self._calls.clear()
        return self._write(error_body(event.status, event.message))

    def _parts_chunk(
        self, parts: list[Part], extra: Wire | None = None, usage: Usage | None = None
    ) -> bytes:
        try:
            wire = answer_parts(parts)
        except ConversionError as exc:
            return self._error(StreamError(exc.message, exc.status_hint))
        return self._write(self._chunk(wire, extra, usage))

    def _chunk(
        self, parts: list[Wire], extra: Wire | None = None, usage: Usage | None = None
    ) -> Wire:
        candidate: Wire = {
            "content": {"role": "model", "parts": parts},
            **(extra or {}),
            "index": 0,
        }
        chunk: Wire = {"candidates": [candidate]}
        if usage is not None:
            chunk["usageMetadata"] = write_usage(usage)
        chunk["modelVersion"] = self._meta.model
        chunk["responseId"] = self._meta.id
        return chunk

    def _write(self, chunk: Wire) -> bytes:
        data = orjson.dumps(chunk)
        if self._sse:
            return b"data: " + data + b"\r\n\r\n"
        prefix = b"[" if self._chunks == 0 else b",\r\n"
        self._chunks += 1
        return prefix + data


_HANDLERS: dict[type, Callable[[StreamEmitter, Any], bytes]] = {
    MessageStart: StreamEmitter._ignore,
    TextDelta: StreamEmitter._text,
    ReasoningDelta: StreamEmitter._text,
    ToolCallStart: StreamEmitter._call_start,
    ToolCallDelta: StreamEmitter._call_delta,
    ToolCallEnd: StreamEmitter._call_end,
    UsageUpdate: StreamEmitter._usage_update,
    MessageStop: StreamEmitter._stop,
    StreamError: StreamEmitter._error,
}
