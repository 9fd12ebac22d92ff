"""Responses streams from a backend -> neutral stream events (`StreamParser`).

`StreamEmitter` (neutral -> Responses SSE) is in `stream_emitter`. The grammar is the
one written there; the event type is read from the JSON `type` (Codex and the SDK do the
same), else from the `event:` line.

Decisions
- `response.created` / `queued` / `in_progress` give MessageStart (the first event of
  any kind does, if those are missing). Items are tracked by `output_index`.
- `message` items give TextDelta (`output_text` and `refusal` deltas alike);
  `function_call` items ToolCallStart/Delta/End numbered 0, 1, 2... in order of their
  `output_item.added` (a call without `call_id` gets one from the IdFactory), named
  `<namespace>__<name>` when they carry a namespace; `custom_tool_call` items are calls
  too, whose raw input deltas are written as the JSON text `{"input": "..."}`.
- `reasoning` items give ReasoningDelta for summary and `reasoning_text` deltas alike (a
  blank line between parts); their `encrypted_content`, read from `output_item.done`,
  gives a ReasoningDelta of its own with `redacted` (or `signature`: see
  `wire`), so a StreamCollector keeps it as a Reasoning part after the text.
- A server that sends only `*.done` events (or whole items in `output_item.done`) loses
  nothing: what no delta carried is taken from the done event.
- `response.completed` and `response.incomplete` give MessageStop with the finish
  reason of the response's status and the usage; `response.failed` and `error` give
  StreamError (status 429 for rate limits, 400 for a context overflow, else 502).
  flush() before any of them gives StreamError.
- Other event types (annotations, hosted-tool progress, keep-alives) are ignored; an
  output item of another type (`web_search_call`...) raises ConversionError(502): louter
  never offers those tools, and dropping the item would lose content. Events for an
  item that is not open, and anything after the end, raise ConversionError(502).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

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
)
from louter.convert.responses.wire import (
    CUSTOM_INPUT,
    finish_of,
    neutral_name,
    parse_usage,
    reasoning_part,
)
from louter.convert.sse import SSEEvent
from louter.errors import ConversionError

__all__ = ["StreamParser"]

_CUSTOM_OPEN = '{"' + CUSTOM_INPUT + '":"'
_CUSTOM_CLOSE = '"}'
_STATUS_BY_CODE = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
}


def _upstream(problem: str) -> ConversionError:
    return ConversionError(f"Responses stream: {problem}", status_hint=502)


def _load(data: str) -> dict[str, Any]:
    return load_object(data, _upstream)


def _field(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    return typed(obj, key, kind, where, _upstream)


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _escaped(text: str) -> str:
    """`text` as the inside of a JSON string (escaping is per character, so escaped
    fragments join into the escaped whole)."""
    return orjson.dumps(text).decode()[1:-1]


def _item_texts(item: Mapping[str, Any], *keys: str) -> list[str]:
    """The `text` (or `refusal`) of the entries under `keys` of a whole item."""
    texts = []
    for key in keys:
        for entry in item.get(key) or ():
            if isinstance(entry, dict):
                texts.append(_text(entry, "text") or _text(entry, "refusal"))
    return [text for text in texts if text]


def _stream_error(error: Any, fallback: str) -> StreamError:
    if not isinstance(error, Mapping):
        return StreamError(str(error) if error else fallback)
    code = error.get("code")
    status = _STATUS_BY_CODE.get(code, 502) if isinstance(code, str) else 502
    if isinstance(code, int) and 400 <= code <= 599:
        status = code
    message = error.get("message")
    return StreamError(message if isinstance(message, str) and message else fallback, status)


class _Phase(Enum):
    BEFORE = "before response.created"
    OPEN = "inside the response"
    DONE = "after the end of the stream"


@dataclass(slots=True)
class _Item:
    kind: str  # "message" | "reasoning" | "function_call" | "custom_tool_call"
    tool: int = -1  # the neutral tool-call index of a call item
    streamed: bool = False  # some of its content already became events
    part: tuple[str, int] | None = None  # reasoning: the part of the last delta


_Handler = Callable[["StreamParser", dict[str, Any]], list[StreamEvent]]


class StreamParser:
    """Responses SSE events -> neutral stream events. One instance per response.

    A state machine over `_Phase`; the handler of an event is `_HANDLERS[type]`, and
    open output items are tracked by `output_index` in `_items`.
    """

    __slots__ = ("_ids", "_phase", "_items", "_tools")

    def __init__(self, ids: IdFactory) -> None:
        self._ids = ids
        self._phase = _Phase.BEFORE
        self._items: dict[int, _Item] = {}
        self._tools = 0  # call items seen so far

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        """Take one SSE event; return the neutral events it completes.

        Raises:
            ConversionError: (502) malformed JSON, or an event out of order.
        """
        data = _load(event.data)
        kind = data.get("type") or event.event
        if not isinstance(kind, str):
            raise _upstream("an event has no type")
        if self._phase is _Phase.DONE:
            raise _upstream(f"{kind!r} event after the end of the stream")
        handler = _HANDLERS.get(kind)
        if handler is None:
            return []  # progress of hosted tools, annotations, keep-alives...
        return self._start(data) + handler(self, data)

    def flush(self) -> list[StreamEvent]:
        """End of input: a StreamError when the stream stopped before its last event."""
        if self._phase is _Phase.DONE:
            return []
        head = self._start({})
        self._phase = _Phase.DONE
        return [*head, StreamError("upstream stream ended before response.completed")]

    def _start(self, data: dict[str, Any]) -> list[StreamEvent]:
        if self._phase is not _Phase.BEFORE:
            return []
        self._phase = _Phase.OPEN
        response = data.get("response")
        if not isinstance(response, dict):
            return [MessageStart()]
        return [MessageStart(_text(response, "id") or None, _text(response, "model") or None)]

    def _nothing(self, data: dict[str, Any]) -> list[StreamEvent]:
        return []

    # ---------------------------------------------------------------- items

    def _item_added(self, data: dict[str, Any]) -> list[StreamEvent]:
        index: int = _field(data, "output_index", int, data["type"])
        item: dict[str, Any] = _field(data, "item", dict, data["type"])
        kind = item.get("type")
        if index in self._items:
            raise _upstream(f"output item {index} added twice")
        if kind in ("message", "reasoning"):
            self._items[index] = _Item(str(kind))
            return []
        if kind in ("function_call", "custom_tool_call"):
            return self._call_added(index, str(kind), item)
        raise _upstream(f"output item type {kind!r} cannot be converted")

    def _call_added(self, index: int, kind: str, item: dict[str, Any]) -> list[StreamEvent]:
        tool = self._tools
        self._tools += 1
        self._items[index] = _Item(kind, tool)
        namespace = _text(item, "namespace") or None
        name = neutral_name(_field(item, "name", str, "item"), namespace)
        out: list[StreamEvent] = [
            ToolCallStart(tool, _text(item, "call_id") or self._ids(tool), name)
        ]
        if kind == "custom_tool_call":
            out.append(ToolCallDelta(tool, _CUSTOM_OPEN))
        return out + self._arguments(self._items[index], item)

    def _arguments(self, item: _Item, source: Mapping[str, Any]) -> list[StreamEvent]:
        """The arguments (or input) a call's whole item or done event carries, when no
        delta carried them yet."""
        if item.streamed:
            return []
        custom = item.kind == "custom_tool_call"
        text = _text(source, "input" if custom else "arguments")
        if not text:
            return []
        item.streamed = True
        return [ToolCallDelta(item.tool, _escaped(text) if custom else text)]

    def _item_done(self, data: dict[str, Any]) -> list[StreamEvent]:
        index: int = _field(data, "output_index", int, data["type"])
        whole: dict[str, Any] = _field(data, "item", dict, data["type"])
        item = self._open(index, data["type"], _ANY_ITEM)
        del self._items[index]
        return _ITEM_ENDS[item.kind](self, item, whole)

    def _message_done(self, item: _Item, whole: dict[str, Any]) -> list[StreamEvent]:
        text = "" if item.streamed else "".join(_item_texts(whole, "content"))
        return [TextDelta(text)] if text else []

    def _reasoning_done(self, item: _Item, whole: dict[str, Any]) -> list[StreamEvent]:
        text = "" if item.streamed else "\n\n".join(_item_texts(whole, "summary", "content"))
        encrypted = whole.get("encrypted_content")
        part = reasoning_part(text, encrypted if isinstance(encrypted, str) else None)
        if not (part.text or part.signature or part.redacted is not None):
            return []
        return [ReasoningDelta(part.text, part.signature, part.redacted)]

    def _call_done(self, item: _Item, whole: dict[str, Any]) -> list[StreamEvent]:
        return [*self._arguments(item, whole), *self._end_call(item)]

    def _end_call(self, item: _Item) -> list[StreamEvent]:
        close = [ToolCallDelta(item.tool, _CUSTOM_CLOSE)] if item.kind == "custom_tool_call" else []
        return [*close, ToolCallEnd(item.tool)]

    def _open(self, index: Any, where: str, kinds: frozenset[str]) -> _Item:
        item = self._items.get(index) if isinstance(index, int) else None
        if item is None:
            raise _upstream(f"{where} for output item {index!r}, which is not open")
        if item.kind not in kinds:
            raise _upstream(f"{where} inside a {item.kind} item")
        return item

    # ---------------------------------------------------------------- deltas

    def _text_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        item = self._open(data.get("output_index"), data["type"], _MESSAGE)
        delta = _text(data, "delta")
        item.streamed = item.streamed or bool(delta)
        return [TextDelta(delta)] if delta else []

    def _text_done(self, data: dict[str, Any]) -> list[StreamEvent]:
        item = self._open(data.get("output_index"), data["type"], _MESSAGE)
        if item.streamed:
            return []
        text = _text(data, "text") or _text(data, "refusal")
        item.streamed = bool(text)
        return [TextDelta(text)] if text else []

    def _call_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        item = self._open(data.get("output_index"), data["type"], _CALLS)
        delta = _text(data, "delta")
        if not delta:
            return []
        item.streamed = True
        return [
            ToolCallDelta(item.tool, _escaped(delta) if item.kind == "custom_tool_call" else delta)
        ]

    def _call_arguments_done(self, data: dict[str, Any]) -> list[StreamEvent]:
        return self._arguments(self._open(data.get("output_index"), data["type"], _CALLS), data)

    def _reasoning_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        item = self._open(data.get("output_index"), data["type"], _REASONING)
        delta = _text(data, "delta")
        if not delta:
            return []
        key = "summary_index" if "summary" in data["type"] else "content_index"
        index = data.get(key)
        part = (key, index if isinstance(index, int) else 0)
        if item.streamed and part != item.part:
            delta = "\n\n" + delta
        item.part, item.streamed = part, True
        return [ReasoningDelta(delta)]

    # ---------------------------------------------------------------- the end

    def _finished(self, data: dict[str, Any]) -> list[StreamEvent]:
        response: dict[str, Any] = _field(data, "response", dict, data["type"])
        default = "incomplete" if data["type"] == "response.incomplete" else "completed"
        status = response.get("status") or default
        finish = finish_of(status, response.get("incomplete_details"), self._tools > 0)
        if finish is None:
            raise _upstream(f"{data['type']} with status {status!r}")
        ends = [
            event
            for item in self._items.values()
            if item.tool >= 0
            for event in self._end_call(item)
        ]
        self._items.clear()
        self._phase = _Phase.DONE
        usage = parse_usage(response.get("usage"))
        return [*ends, MessageStop(finish, usage)]

    def _failed(self, data: dict[str, Any]) -> list[StreamEvent]:
        self._phase = _Phase.DONE
        response = data.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        return [_stream_error(error, "the upstream response failed")]

    def _error(self, data: dict[str, Any]) -> list[StreamEvent]:
        self._phase = _Phase.DONE
        error = data.get("error") if isinstance(data.get("error"), dict) else data
        return [_stream_error(error, "the upstream reported an error")]


_MESSAGE = frozenset({"message"})
_REASONING = frozenset({"reasoning"})
_CALLS = frozenset({"function_call", "custom_tool_call"})
_ITEM_ENDS: dict[str, Callable[[StreamParser, _Item, dict[str, Any]], list[StreamEvent]]] = {
    "message": StreamParser._message_done,
    "reasoning": StreamParser._reasoning_done,
    "function_call": StreamParser._call_done,
    "custom_tool_call": StreamParser._call_done,
}


_ANY_ITEM = frozenset(_ITEM_ENDS)
_HANDLERS: dict[str, _Handler] = {
    "response.created": StreamParser._nothing,
    "response.queued": StreamParser._nothing,
    "response.in_progress": StreamParser._nothing,
    "response.output_item.added": StreamParser._item_added,
    "response.output_item.done": StreamParser._item_done,
    "response.output_text.delta": StreamParser._text_delta,
    "response.refusal.delta": StreamParser._text_delta,
    "response.output_text.done": StreamParser._text_done,
    "response.refusal.done": StreamParser._text_done,
    "response.function_call_arguments.delta": StreamParser._call_delta,
    "response.custom_tool_call_input.delta": StreamParser._call_delta,
    "response.function_call_arguments.done": StreamParser._call_arguments_done,
    "response.custom_tool_call_input.done": StreamParser._call_arguments_done,
    "response.reasoning_summary_text.delta": StreamParser._reasoning_delta,
    "response.reasoning_text.delta": StreamParser._reasoning_delta,
    "response.completed": StreamParser._finished,
    "response.incomplete": StreamParser._finished,
    "response.failed": StreamParser._failed,
    "error": StreamParser._error,
}
