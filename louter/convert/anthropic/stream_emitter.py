"""Neutral stream events -> Anthropic Messages SSE bytes (`StreamEmitter`).

Output grammar (https://docs.anthropic.com/en/docs/build-with-claude/streaming), each
event with an `event:` line repeating its JSON `type` (the Python SDK asserts on it):

    message_start (content_block_start content_block_delta* content_block_stop)*
    message_delta message_stop            or, on failure, ... content_block_stop? error

Decisions
- `message_start` is written before the first event's own output, with
  `usage = {input_tokens: meta.input_tokens, output_tokens: 0}` (the SDK requires usage
  there); `id` and `model` come from the ResponseMeta, not from the upstream.
- Blocks open as content arrives; indexes count up in emission order. At most one block
  is open; it is closed when content of another kind (or another tool call) starts.
  Empty text and argument fragments produce nothing.
- Reasoning: a `thinking` block (`{"type":"thinking","thinking":"","signature":""}`),
  `thinking_delta` for text, `signature_delta` for a signature; a signed block is closed
  before more thinking text. Redacted reasoning is a whole `redacted_thinking` block.
- `message_delta` carries the mapped stop reason, `stop_sequence: null` and the final
  usage (`{"output_tokens": 0}` when none was reported), then `message_stop`; no `[DONE]`.
- A StreamError, a finish "error", or flush() before any stop: the open block is
  closed, then `event: error` with the error type of the status. Never `end_turn`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from louter.convert.anthropic.wire import emit_usage, error_type, stop_reason
from louter.convert.model import (
    MessageStart,
    MessageStop,
    ReasoningDelta,
    ResponseMeta,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from louter.convert.sse import encode_event
from louter.errors import ConversionError

__all__ = ["StreamEmitter"]


class _Phase(Enum):
    BEFORE = "before message_start"
    MESSAGE = "inside the message"
    DONE = "after the end of the stream"


def _misuse(problem: str) -> ConversionError:
    return ConversionError(f"Anthropic stream: {problem}", status_hint=502)


@dataclass(slots=True)
class _OpenBlock:
    kind: str  # "text" | "thinking" | "tool_use"
    index: int
    tool: int = -1  # the neutral tool-call index of a tool_use block
    signed: bool = False  # a thinking block whose signature was sent


def _event(payload: dict[str, Any]) -> bytes:
    """One SSE event whose `event:` line repeats the payload's `type`."""
    return encode_event(orjson.dumps(payload), payload["type"])


_PING = _event({"type": "ping"})
_THINKING = {"type": "thinking_delta"}
_SIGNATURE = {"type": "signature_delta"}


class StreamEmitter:
    """Neutral stream events -> Anthropic SSE bytes. One instance per response.

    States: `_Phase.BEFORE` until `message_start` is written, `MESSAGE` while content
    flows (at most one content block open, `_block`), `DONE` after `message_stop` or
    an error event.
    """

    __slots__ = ("_meta", "_phase", "_block", "_next", "_tools", "_usage")

    def __init__(self, meta: ResponseMeta) -> None:
        self._meta = meta
        self._phase = _Phase.BEFORE
        self._block: _OpenBlock | None = None
        self._next = 0  # the next content block index
        self._tools: set[int] = set()  # neutral tool-call indexes already started
        self._usage: Usage | None = None

    def feed(self, event: StreamEvent) -> bytes:
        """Take one neutral event; return the SSE bytes it produces (maybe none).

        Raises:
            ConversionError: (502) an event after the end, or tool-call arguments for a
                call whose block is not open.
        """
        if self._phase is _Phase.DONE:
            if isinstance(event, StreamError):
                return b""  # the answer was already complete
            raise _misuse(f"{type(event).__name__} after the end of the stream")
        head = b""
        if self._phase is _Phase.BEFORE and not isinstance(event, StreamError):
            head = self._message_start()
        return head + _EMITTERS[type(event)](self, event)

    def prelude(self) -> bytes:
        """`message_start` and a `ping` at once, so a client waiting for a slow first
        token already sees the stream alive."""
        opening = self.feed(MessageStart())
        return opening + self.ping() if opening else opening

    def flush(self) -> bytes:
        """End of input: an error event when no MessageStop or StreamError came."""
        if self._phase is _Phase.DONE:
            return b""
        return self._fail(StreamError("upstream stream ended without a stop event"))

    def ping(self) -> bytes:
        """An `event: ping` to keep the client waiting; nothing once the stream ended."""
        return b"" if self._phase is _Phase.DONE else _PING

    def _message_start(self) -> bytes:
        self._phase = _Phase.MESSAGE
        message: dict[str, Any] = {
            "id": self._meta.id,
            "type": "message",
            "role": "assistant",
            "model": self._meta.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._meta.input_tokens, "output_tokens": 0},
        }
        return _event({"type": "message_start", "message": message})

    def _nothing(self, event: StreamEvent) -> bytes:
        return b""

    def _text(self, event: TextDelta) -> bytes:
        if not event.text:
            return b""
        head = b""
        if self._block is None or self._block.kind != "text":
            head = self._open({"type": "text", "text": ""})
        return head + self._delta({"type": "text_delta", "text": event.text})

    def _reasoning(self, event: ReasoningDelta) -> bytes:
        if event.redacted is not None:
            block = {"type": "redacted_thinking", "data": event.redacted}
            return self._open(block) + self._close()
        out = b""
        if event.text:
            out += self._thinking() + self._delta(_THINKING | {"thinking": event.text})
        if event.signature:
            out += self._thinking() + self._delta(_SIGNATURE | {"signature": event.signature})
            assert self._block is not None
            self._block.signed = True
        return out

    def _thinking(self) -> bytes:
        """Open a thinking block unless an unsigned one is open."""
        block = self._block
        if block is not None and block.kind == "thinking" and not block.signed:
            return b""
        return self._open({"type": "thinking", "thinking": "", "signature": ""})

    def _tool_start(self, event: ToolCallStart) -> bytes:
        block = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
        out = self._open(block, tool=event.index)
        self._tools.add(event.index)
        return out

    def _tool_delta(self, event: ToolCallDelta) -> bytes:
        if self._block is None or self._block.tool != event.index:
            where = "was closed" if event.index in self._tools else "was never started"
            raise _misuse(f"arguments for tool call {event.index}, which {where}")
        if not event.arguments:
            return b""
        return self._delta({"type": "input_json_delta", "partial_json": event.arguments})

    def _tool_end(self, event: ToolCallEnd) -> bytes:
        if self._block is not None and self._block.tool == event.index:
            return self._close()
        return b""

    def _usage_update(self, event: UsageUpdate) -> bytes:
        self._usage = event.usage
        return b""

    def _stop(self, event: MessageStop) -> bytes:
        reason = stop_reason(event.finish_reason)
        if reason is None:
            return self._fail(StreamError("upstream ended the response with an error"))
        usage = event.usage or self._usage
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": emit_usage(usage) if usage is not None else {"output_tokens": 0},
        }
        out = self._close() + _event(delta) + _event({"type": "message_stop"})
        self._phase = _Phase.DONE
        return out

    def _fail(self, event: StreamError) -> bytes:
        error = {"type": error_type(event.status), "message": event.message}
        out = self._close() + _event({"type": "error", "error": error})
        self._phase = _Phase.DONE
        return out

    def _open(self, block: dict[str, Any], tool: int = -1) -> bytes:
        out = self._close()
        index = self._next
        self._next += 1
        self._block = _OpenBlock(block["type"], index, tool)
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return out + _event(start)

    def _delta(self, delta: dict[str, Any]) -> bytes:
        assert self._block is not None
        return _event({"type": "content_block_delta", "index": self._block.index, "delta": delta})

    def _close(self) -> bytes:
        if self._block is None:
            return b""
        index = self._block.index
        self._block = None
        return _event({"type": "content_block_stop", "index": index})


_EMITTERS: dict[type, Callable[[StreamEmitter, Any], bytes]] = {
    MessageStart: StreamEmitter._nothing,  # message_start is written before any event
    TextDelta: StreamEmitter._text,
    ReasoningDelta: StreamEmitter._reasoning,
    ToolCallStart: StreamEmitter._tool_start,
    ToolCallDelta: StreamEmitter._tool_delta,
    ToolCallEnd: StreamEmitter._tool_end,
    UsageUpdate: StreamEmitter._usage_update,
    MessageStop: StreamEmitter._stop,
    StreamError: StreamEmitter._fail,
}
