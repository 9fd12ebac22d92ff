"""Neutral stream events -> a Completions stream for a client.

    data: {"id","object":"text_completion","created","model",
           "choices":[{"text":"Hel","index":0,"logprobs":null,"finish_reason":null}]}
    ...
    data: {..., "choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]}
    data: {..., "choices":[], "usage":{...}}        with stream_options.include_usage
    data: [DONE]

Text deltas go out at once; reasoning has no field and is left out. A backend error
(StreamError, or a finish reason "error"), a tool call (a Completions client offered no
tools) or a stream that ends early become an in-stream `data: {"error": ...}` event,
which the OpenAI SDK raises, and `[DONE]` ends only a stream that finished normally.
There is no prelude.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from louter.convert.completions.wire import FINISH_OUT, OBJECT, emit_usage, error_event
from louter.convert.model import (
    MessageStop,
    ResponseMeta,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)

__all__ = ["StreamEmitter"]

_DONE = b"data: [DONE]\n\n"


class StreamEmitter:
    """Neutral stream events -> Completions SSE bytes. One per response."""

    __slots__ = ("_meta", "_prefix", "_ended", "_usage")

    def __init__(self, meta: ResponseMeta) -> None:
        self._meta = meta
        self._prefix = (
            b'data: {"id":' + orjson.dumps(meta.id) + b',"object":"' + OBJECT.encode()
            + b'","created":' + str(meta.created).encode() + b',"model":'
            + orjson.dumps(meta.model) + b',"choices":'
        )  # fmt: skip
        self._ended = False
        self._usage: Usage | None = None

    def prelude(self) -> bytes:
        """What goes out before the first event: nothing, for this dialect."""
        return b""

    def feed(self, event: StreamEvent) -> bytes:
        if self._ended:
            return b""
        handler = _HANDLERS.get(type(event))
        return handler(self, event) if handler is not None else b""

    def flush(self) -> bytes:
        if self._ended:
            return b""
        return self._error(StreamError("the stream ended before the answer was complete"))

    def _chunk(self, text: str, finish: str | None = None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        return self._prefix + b"[" + orjson.dumps(choice) + b"]}\n\n"

    def _text(self, event: TextDelta) -> bytes:
        return self._chunk(event.text) if event.text else b""

    def _tool_call(self, event: ToolCallStart) -> bytes:
        message = f"the backend answered with a tool call ({event.name}), which a completions "
        return self._error(StreamError(message + "client cannot receive"))

    def _usage_update(self, event: UsageUpdate) -> bytes:
        self._usage = event.usage
        return b""

    def _stop(self, event: MessageStop) -> bytes:
        finish = FINISH_OUT.get(event.finish_reason)
        if finish is None:
            return self._error(StreamError("the backend ended its answer with an error"))
        self._ended = True
        out = self._chunk("", finish)
        usage = emit_usage(event.usage or self._usage)
        if self._meta.include_usage and usage is not None:
            out += self._prefix + b'[],"usage":' + orjson.dumps(usage) + b"}\n\n"
        return out + _DONE

    def _error(self, event: StreamError) -> bytes:
        self._ended = True
        return error_event(event.message, event.status)


_HANDLERS: dict[type, Callable[[StreamEmitter, Any], bytes]] = {
    TextDelta: StreamEmitter._text,
    ToolCallStart: StreamEmitter._tool_call,
    UsageUpdate: StreamEmitter._usage_update,
    MessageStop: StreamEmitter._stop,
    StreamError: StreamEmitter._error,
}
