"""Neutral stream events -> Chat Completions SSE bytes (`StreamEmitter`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from louter.convert.model import (
    MessageStart,
    MessageStop,
    ReasoningDelta,
    ResponseMeta,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from louter.convert.openai.response import emit_usage
from louter.convert.openai.wire import FINISH_OUT, LEGACY_FINISH, error_event

# ---------------------------------------------------------------------------------------
# StreamEmitter: neutral events -> `data:` chunks for an OpenAI client
# ---------------------------------------------------------------------------------------


class StreamEmitter:
    """Neutral stream events -> Chat Completions SSE bytes. One per response.

    A backend error (StreamError, or a finish reason "error") becomes an in-stream
    `data: {"error": ...}` event, which the OpenAI SDK raises; `[DONE]` ends only a
    stream that finished normally. For a `legacy_functions` client the first tool call
    streams as `delta.function_call` (its name, then argument fragments) and the finish
    reason is "function_call"; later calls are dropped.
    """

    def __init__(self, meta: ResponseMeta) -> None:
        self._meta = meta
        self._handlers = _LEGACY_EMITTERS if meta.legacy_functions else _EMITTERS
        self._legacy_call: int | None = None  # the index of the call sent as function_call
        self._prefix = (
            b'{"id":' + orjson.dumps(meta.id) + b',"object":"chat.completion.chunk","created":'
            + str(meta.created).encode() + b',"model":' + orjson.dumps(meta.model)
        )  # fmt: skip
        self._started = False
        self._ended = False
        self._usage: Usage | None = None

    def feed(self, event: StreamEvent) -> bytes:
        if self._ended:
            return b""
        handler = self._handlers.get(type(event))
        return handler(self, event) if handler is not None else b""

    def prelude(self) -> bytes:
        """The stream's opening, written before the first upstream event arrives."""
        return self.feed(MessageStart())

    def flush(self) -> bytes:
        if self._ended:
            return b""
        return self._error(StreamError("the stream ended before the answer was complete"))

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return b"data: " + self._prefix + b',"choices":[' + orjson.dumps(choice) + b"]}\n\n"

    def _start(self, event: MessageStart) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _text(self, event: TextDelta) -> bytes:
        if not event.text:
            return self._start(MessageStart())
        return self._start(MessageStart()) + self._chunk({"content": event.text})

    def _reasoning(self, event: ReasoningDelta) -> bytes:
        if not event.text:
            return b""
        return self._start(MessageStart()) + self._chunk({"reasoning_content": event.text})

    def _call_start(self, event: ToolCallStart) -> bytes:
        function = {"name": event.name, "arguments": ""}
        call = {"index": event.index, "id": event.id, "type": "function", "function": function}
        return self._start(MessageStart()) + self._chunk({"tool_calls": [call]})

    def _call_delta(self, event: ToolCallDelta) -> bytes:
        call = {"index": event.index, "function": {"arguments": event.arguments}}
        return self._chunk({"tool_calls": [call]})

    def _function_start(self, event: ToolCallStart) -> bytes:
        if self._legacy_call is not None:
            return b""  # one call only: `openai.legacy_dropped` names the rest in the log
        self._legacy_call = event.index
        call = {"name": event.name, "arguments": ""}
        return self._start(MessageStart()) + self._chunk({"function_call": call})

    def _function_delta(self, event: ToolCallDelta) -> bytes:
        if event.index != self._legacy_call:
            return b""
        return self._chunk({"function_call": {"arguments": event.arguments}})

    def _usage_update(self, event: UsageUpdate) -> bytes:
        self._usage = event.usage
        return b""

    def _stop(self, event: MessageStop) -> bytes:
        finish = FINISH_OUT.get(event.finish_reason)
        if finish is None:
            return self._error(StreamError("the backend ended its answer with an error"))
        if self._legacy_call is not None:
            finish = LEGACY_FINISH.get(finish, finish)
        self._ended = True
        out = self._start(MessageStart()) + self._chunk({}, finish)
        usage = emit_usage(event.usage or self._usage)
        if self._meta.include_usage and usage is not None:
            tail = b',"choices":[],"usage":' + orjson.dumps(usage) + b"}\n\n"
            out += b"data: " + self._prefix + tail
        return out + b"data: [DONE]\n\n"

    def _error(self, event: StreamError) -> bytes:
        self._ended = True
        return error_event(event.message, event.status)


_EMITTERS: dict[type, Callable[[StreamEmitter, Any], bytes]] = {
    MessageStart: StreamEmitter._start,
    TextDelta: StreamEmitter._text,
    ReasoningDelta: StreamEmitter._reasoning,
    ToolCallStart: StreamEmitter._call_start,
    ToolCallDelta: StreamEmitter._call_delta,
    UsageUpdate: StreamEmitter._usage_update,
    MessageStop: StreamEmitter._stop,
    StreamError: StreamEmitter._error,
}


_LEGACY_EMITTERS: dict[type, Callable[[StreamEmitter, Any], bytes]] = {
    **_EMITTERS,
    ToolCallStart: StreamEmitter._function_start,
    ToolCallDelta: StreamEmitter._function_delta,
}
