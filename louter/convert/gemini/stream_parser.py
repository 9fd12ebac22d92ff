"""Gemini streams: `streamGenerateContent` chunks -> neutral stream events (design §6).

Parsing (`StreamParser`, fed SSE events whose `data` is one GenerateContentResponse, or
a JSON array of them): MessageStart on the first chunk (responseId, modelVersion); per
part a TextDelta / ReasoningDelta, or a whole call as ToolCallStart + one ToolCallDelta
(the args JSON) + ToolCallEnd; UsageUpdate when `usageMetadata` changes (Gemini repeats
it on every chunk). A `finishReason` is only remembered: Gemini may send the final usage
with it or after it, so MessageStop (with the last usage) comes from `flush()`. A chunk
with an `error` object ends the stream with StreamError(message, code); so does a
`flush()` before any finishReason. Image parts have no stream event and raise.

    state       chunk                   flush()
    WAITING     MessageStart, -> OPEN   MessageStart, StreamError
    OPEN        events                  StreamError ("ended without a finish reason")
    FINISHED    events                  MessageStop(reason, usage)
    CLOSED      ConversionError         nothing

`StreamEmitter` (the other direction) is in `stream_emitter`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

import orjson

from louter.convert.gemini.fields import get, integer, mapping, sequence, text
from louter.convert.gemini.response import (
    blocked,
    candidate_parts,
    finish_reason,
    read_usage,
)
from louter.convert.model import (
    IdFactory,
    Image,
    MessageStart,
    MessageStop,
    Reasoning,
    ReasoningDelta,
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
from louter.convert.sse import SSEEvent
from louter.errors import ConversionError

Wire = dict[str, Any]
NO_FINISH = "upstream stream ended without a finish reason"


class _State(Enum):
    WAITING = "waiting"  # no chunk yet
    OPEN = "open"  # chunks seen, no finishReason yet
    FINISHED = "finished"  # a finishReason seen; MessageStop waits for flush()
    CLOSED = "closed"  # StreamError or MessageStop emitted


class StreamParser:
    """Gemini stream chunks -> neutral stream events. One instance per stream."""

    __slots__ = ("_ids", "_state", "_calls", "_finish", "_usage")

    def __init__(self, ids: IdFactory) -> None:
        self._ids = ids
        self._state = _State.WAITING
        self._calls = 0  # calls seen so far: the next call's index
        self._finish: str | None = None  # the wire finishReason
        self._usage: Usage | None = None

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        """Take one SSE event.

        Raises:
            ConversionError: (502) the data is not JSON chunks, a chunk is malformed, or
                the stream already ended.
        """
        if self._state is _State.CLOSED:
            raise ConversionError("upstream sent data after the end of its stream", status_hint=502)
        try:
            value = orjson.loads(event.data)
        except orjson.JSONDecodeError as exc:
            raise ConversionError(f"stream chunk is not JSON: {exc}", status_hint=502) from None
        out: list[StreamEvent] = []
        for chunk in value if isinstance(value, list) else [value]:
            out += self._chunk(mapping(chunk, "stream chunk", 502))
        return out

    def flush(self) -> list[StreamEvent]:
        """End of stream: MessageStop when a finishReason came, else StreamError."""
        out = _FLUSH[self._state](self)
        self._state = _State.CLOSED
        return out

    def _chunk(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        if self._state is _State.CLOSED:
            raise ConversionError("upstream sent data after an error chunk", status_hint=502)
        out: list[StreamEvent] = self._start(chunk)
        error = get(chunk, "error")
        if error is not None:
            out.append(_stream_error(error))
            self._state = _State.CLOSED
            return out
        candidates = sequence(get(chunk, "candidates"), "candidates", 502)
        if candidates:
            out += self._candidate(mapping(candidates[0], "candidates[0]", 502))
        elif blocked(chunk):
            self._finished("SAFETY")
        usage = read_usage(get(chunk, "usageMetadata"))
        if usage is not None and usage != self._usage:
            self._usage = usage
            out.append(UsageUpdate(usage))
        return out

    def _start(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        if self._state is not _State.WAITING:
            return []
        self._state = _State.OPEN
        answer_id = text(chunk, "responseId", "", 502)
        return [MessageStart(answer_id or None, text(chunk, "modelVersion", "", 502) or None)]

    def _candidate(self, candidate: Mapping[str, Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for part in candidate_parts(candidate, "candidates[0]", self._ids, self._calls):
            out += _PART_EVENTS[type(part)](self, part)
        reason = text(candidate, "finishReason", "candidates[0]", 502)
        if reason is not None:
            self._finished(reason)
        return out

    def _finished(self, reason: str) -> None:
        self._finish = reason
        self._state = _State.FINISHED

    def _text(self, part: Text) -> list[StreamEvent]:
        if not part.text and part.signature is None:
            return []
        return [TextDelta(part.text, part.signature)]

    def _reasoning(self, part: Reasoning) -> list[StreamEvent]:
        if not part.text and part.signature is None:
            return []
        return [ReasoningDelta(part.text, part.signature)]

    def _call(self, part: ToolCall) -> list[StreamEvent]:
        index = self._calls
        self._calls += 1
        return [
            ToolCallStart(index, part.id, part.name, part.signature),
            ToolCallDelta(index, part.arguments),
            ToolCallEnd(index),
        ]

    def _image(self, part: Image) -> list[StreamEvent]:
        raise ConversionError("an image part cannot be streamed as neutral events", status_hint=502)

    def _stop(self) -> list[StreamEvent]:
        reason = finish_reason(self._finish or "STOP", self._calls > 0)
        return [MessageStop(reason, self._usage)]

    def _unfinished(self) -> list[StreamEvent]:
        return [StreamError(NO_FINISH)]

    def _empty(self) -> list[StreamEvent]:
        return [MessageStart(), StreamError(NO_FINISH)]

    def _closed(self) -> list[StreamEvent]:
        return []


_PART_EVENTS: dict[type, Callable[[StreamParser, Any], list[StreamEvent]]] = {
    Text: StreamParser._text,
    Reasoning: StreamParser._reasoning,
    ToolCall: StreamParser._call,
    Image: StreamParser._image,
}


_FLUSH: dict[_State, Callable[[StreamParser], list[StreamEvent]]] = {
    _State.WAITING: StreamParser._empty,
    _State.OPEN: StreamParser._unfinished,
    _State.FINISHED: StreamParser._stop,
    _State.CLOSED: StreamParser._closed,
}


def _stream_error(error: Any) -> StreamError:
    if not isinstance(error, dict):
        return StreamError(str(error))
    code = integer(error, "code", "error", 502)
    message = error.get("message")
    status = code if code is not None and 400 <= code <= 599 else 502
    return StreamError(message if isinstance(message, str) and message else str(error), status)
