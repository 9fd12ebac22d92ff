"""Anthropic Messages streams -> neutral stream events (`StreamParser`).

`StreamEmitter` (neutral -> Anthropic SSE) is in `stream_emitter`; stop reasons, usage
and error types come from `wire`.

The stream grammar (https://docs.anthropic.com/en/docs/build-with-claude/streaming):

    message_start
    (content_block_start content_block_delta* content_block_stop)*
    message_delta
    message_stop

with `ping` anywhere and `error` ending the stream at any point. Every event has an
`event:` line (the Python SDK asserts on it) naming the same type as its JSON `type`.

Decisions
- The parser ignores event types it does not know (Anthropic's versioning policy: "we
  may add new event types") and `citations_delta`; an unknown content block or delta type
  raises ConversionError(502), since dropping it would lose content.
- A `signature_delta` becomes `ReasoningDelta(signature=...)` with empty text: it signs
  the thinking block streamed just before it.
- `tool_use` blocks become ToolCallStart/Delta/End numbered 0, 1, 2... in order of
  their blocks; a block without an `id` gets one from the IdFactory.
- `message_start` gives MessageStart and a UsageUpdate (input tokens); `message_delta`
  only records the stop reason and usage; `message_stop` gives MessageStop with the
  mapped reason and the merged usage. An `error` event gives StreamError with the
  status of its error type. flush() before `message_stop` gives StreamError.
- Out-of-order input (a delta for a block that is not open, a second message_start,
  anything after message_stop) raises ConversionError(502).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from louter.convert.anthropic.wire import STATUS_BY_ERROR_TYPE, finish_reason, parse_usage
from louter.convert.fields import load_object, typed
from louter.convert.model import (
    IdFactory,
    MessageStart,
    MessageStop,
    ReasoningDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
    dump_arguments,
)
from louter.convert.sse import SSEEvent
from louter.errors import ConversionError

__all__ = ["StreamParser"]


def _upstream(problem: str) -> ConversionError:
    return ConversionError(f"Anthropic stream: {problem}", status_hint=502)


def _load(data: str) -> dict[str, Any]:
    return load_object(data, _upstream)


def _field(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    return typed(obj, key, kind, where, _upstream)


def _object(obj: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value: dict[str, Any] = _field(obj, key, dict, where)
    return value


# --------------------------------------------------------------------------- parser


class _Phase(Enum):
    BEFORE = "before message_start"
    MESSAGE = "inside the message"
    DONE = "after the end of the stream"


@dataclass(slots=True)
class _Block:
    kind: str  # "text" | "tool_use" | "thinking" | "redacted_thinking"
    tool: int = -1  # the neutral tool-call index of a tool_use block


_Parse = Callable[["StreamParser", dict[str, Any]], list[StreamEvent]]


class StreamParser:
    """Anthropic SSE events -> neutral stream events. One instance per response.

    A state machine over `_Phase` with the transition table `_TRANSITIONS`; open content
    blocks are tracked by their wire `index`.
    """

    __slots__ = ("_ids", "_phase", "_blocks", "_tools", "_usage", "_stop")

    def __init__(self, ids: IdFactory) -> None:
        self._ids = ids
        self._phase = _Phase.BEFORE
        self._blocks: dict[int, _Block] = {}
        self._tools = 0  # tool_use blocks seen so far
        self._usage: dict[str, Any] = {}  # raw usage fields, merged event by event
        self._stop: object = None

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        """Take one SSE event; return the neutral events it completes.

        Raises:
            ConversionError: (502) malformed JSON, or an event out of order.
        """
        data = _load(event.data)
        kind = event.event or data.get("type")
        if not isinstance(kind, str):
            raise _upstream("an event has no type")
        if kind == "ping":
            return []
        handler = _TRANSITIONS.get((self._phase, kind))
        if handler is not None:
            return handler(self, data)
        if kind in _EVENT_TYPES:
            raise _upstream(f"unexpected {kind!r} event {self._phase.value}")
        return []  # a new event type: ignored, as Anthropic's versioning policy asks

    def flush(self) -> list[StreamEvent]:
        """End of input: a StreamError when the stream stopped before `message_stop`."""
        if self._phase is _Phase.DONE:
            return []
        self._phase = _Phase.DONE
        return [StreamError("upstream stream ended before message_stop", status=502)]

    def _message_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        message = _object(data, "message", "message_start")
        self._phase = _Phase.MESSAGE
        start = MessageStart(
            _optional_str(message, "id") or None, _optional_str(message, "model") or None
        )
        usage = message.get("usage")
        if not isinstance(usage, dict):
            return [start]
        self._merge_usage(usage)
        return [start, UsageUpdate(parse_usage(self._usage))]

    def _block_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        index: int = _field(data, "index", int, "content_block_start")
        block = _object(data, "content_block", "content_block_start")
        kind = block.get("type")
        start = _BLOCK_STARTS.get(kind) if isinstance(kind, str) else None
        if start is None:
            raise _upstream(f"content block type {kind!r} cannot be converted")
        if index in self._blocks:
            raise _upstream(f"content block {index} started twice")
        return start(self, index, block)

    def _text_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        self._blocks[index] = _Block("text")
        text = _optional_str(block, "text")
        return [TextDelta(text)] if text else []

    def _tool_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        tool = self._tools
        self._tools += 1
        self._blocks[index] = _Block("tool_use", tool)
        name: str = _field(block, "name", str, "content_block")
        start = ToolCallStart(tool, _optional_str(block, "id") or self._ids(tool), name)
        arguments = block.get("input")
        if not arguments:  # the API announces `input: {}` and streams the JSON text
            return [start]
        if not isinstance(arguments, dict):
            raise _upstream("content_block.input is not an object")
        return [start, ToolCallDelta(tool, dump_arguments(arguments))]

    def _thinking_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        self._blocks[index] = _Block("thinking")
        text = _optional_str(block, "thinking")
        signature = _optional_str(block, "signature")
        return [ReasoningDelta(text, signature or None)] if text or signature else []

    def _redacted_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        self._blocks[index] = _Block("redacted_thinking")
        return [ReasoningDelta(redacted=_field(block, "data", str, "content_block"))]

    def _block_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        block = self._open_block(data, "content_block_delta")
        delta = _object(data, "delta", "content_block_delta")
        kind = delta.get("type")
        entry = _DELTAS.get(kind) if isinstance(kind, str) else None
        if entry is None:
            raise _upstream(f"delta type {kind!r} cannot be converted")
        block_kind, convert = entry
        if block.kind != block_kind:
            raise _upstream(f"{kind} inside a {block.kind} block")
        return convert(block, delta)

    def _block_stop(self, data: dict[str, Any]) -> list[StreamEvent]:
        block = self._open_block(data, "content_block_stop")
        del self._blocks[data["index"]]
        return [ToolCallEnd(block.tool)] if block.kind == "tool_use" else []

    def _open_block(self, data: dict[str, Any], where: str) -> _Block:
        index: int = _field(data, "index", int, where)
        block = self._blocks.get(index)
        if block is None:
            raise _upstream(f"{where} for content block {index}, which is not open")
        return block

    def _message_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        delta = data.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason") is not None:
            self._stop = delta["stop_reason"]
        usage = data.get("usage")
        if isinstance(usage, dict):
            self._merge_usage(usage)
        return []

    def _merge_usage(self, usage: dict[str, Any]) -> None:
        self._usage.update({key: value for key, value in usage.items() if value is not None})

    def _message_stop(self, data: dict[str, Any]) -> list[StreamEvent]:
        self._phase = _Phase.DONE
        ends: list[StreamEvent] = [
            ToolCallEnd(block.tool) for block in self._blocks.values() if block.kind == "tool_use"
        ]
        self._blocks.clear()
        usage = parse_usage(self._usage) if self._usage else None
        return [*ends, MessageStop(finish_reason(self._stop), usage)]

    def _error(self, data: dict[str, Any]) -> list[StreamEvent]:
        self._phase = _Phase.DONE
        error = data.get("error")
        if not isinstance(error, dict):
            return [StreamError(str(error or data), status=502)]
        message, kind = error.get("message"), error.get("type")
        status = STATUS_BY_ERROR_TYPE.get(kind, 502) if isinstance(kind, str) else 502
        return [StreamError(message if isinstance(message, str) else str(error), status=status)]


def _optional_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _upstream(f"{key} is not a string")
    return value


def _text_delta(block: _Block, delta: dict[str, Any]) -> list[StreamEvent]:
    text: str = _field(delta, "text", str, "text_delta")
    return [TextDelta(text)] if text else []


def _json_delta(block: _Block, delta: dict[str, Any]) -> list[StreamEvent]:
    fragment: str = _field(delta, "partial_json", str, "input_json_delta")
    return [ToolCallDelta(block.tool, fragment)] if fragment else []


def _thinking_delta(block: _Block, delta: dict[str, Any]) -> list[StreamEvent]:
    text: str = _field(delta, "thinking", str, "thinking_delta")
    return [ReasoningDelta(text)] if text else []


def _signature_delta(block: _Block, delta: dict[str, Any]) -> list[StreamEvent]:
    signature: str = _field(delta, "signature", str, "signature_delta")
    return [ReasoningDelta(signature=signature)] if signature else []


def _ignored_delta(block: _Block, delta: dict[str, Any]) -> list[StreamEvent]:
    return []


_BLOCK_STARTS: dict[str, Callable[[StreamParser, int, dict[str, Any]], list[StreamEvent]]] = {
    "text": StreamParser._text_start,
    "tool_use": StreamParser._tool_start,
    "thinking": StreamParser._thinking_start,
    "redacted_thinking": StreamParser._redacted_start,
}


_DELTAS: dict[str, tuple[str, Callable[[_Block, dict[str, Any]], list[StreamEvent]]]] = {
    "text_delta": ("text", _text_delta),
    "citations_delta": ("text", _ignored_delta),  # citations are not modelled
    "input_json_delta": ("tool_use", _json_delta),
    "thinking_delta": ("thinking", _thinking_delta),
    "signature_delta": ("thinking", _signature_delta),
}


_TRANSITIONS: dict[tuple[_Phase, str], _Parse] = {
    (_Phase.BEFORE, "message_start"): StreamParser._message_start,
    (_Phase.BEFORE, "error"): StreamParser._error,
    (_Phase.MESSAGE, "content_block_start"): StreamParser._block_start,
    (_Phase.MESSAGE, "content_block_delta"): StreamParser._block_delta,
    (_Phase.MESSAGE, "content_block_stop"): StreamParser._block_stop,
    (_Phase.MESSAGE, "message_delta"): StreamParser._message_delta,
    (_Phase.MESSAGE, "message_stop"): StreamParser._message_stop,
    (_Phase.MESSAGE, "error"): StreamParser._error,
}


_EVENT_TYPES = frozenset(kind for _, kind in _TRANSITIONS)
