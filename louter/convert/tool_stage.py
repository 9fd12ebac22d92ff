"""The tool-call stage of the streaming pipeline (design §6, §7): neutral events in,
neutral events out, with tool calls that a backend wrote as text turned into real ones.

    B.StreamParser -> ToolTextStage(extractor) -> A.StreamEmitter

- Text deltas go through the extractor (Qwen XML for `tool_format = "xml"`, JSON repair
  for `"json"`): plain text comes out at once, a call as ToolCallStart/Delta/End when it
  is complete. Text that looked like a call but was not one (`XmlError`) is kept as
  text, never lost, and recorded in `problems` for the log.
- Once the backend sends a structured call, its text is no longer parsed (nothing is
  parsed twice); structured calls are renumbered after any extracted ones.
- At MessageStop the extractor is flushed; a "stop" with extracted calls becomes
  "tool_calls", as a backend that returned structured calls would have said.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from louter.convert.collect import StreamCollector, events_of
from louter.convert.model import (
    MessageStop,
    Response,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from louter.convert.tool_text import BufferedExtractor, XmlError, XmlEvent, XmlText, XmlToolCall


class ToolTextStage:
    """One per response. `extractor` is a fresh XmlToolExtractor or JsonToolExtractor."""

    def __init__(self, extractor: BufferedExtractor) -> None:
        self._extractor = extractor
        self._structured = False
        self._calls = 0  # calls emitted so far (extracted and structured)
        self._remap: dict[int, int] = {}  # backend call index -> emitted index
        self._extracted = False
        self.problems: list[str] = []

    def feed(self, event: StreamEvent) -> list[StreamEvent]:
        handler = _HANDLERS.get(type(event))
        return handler(self, event) if handler is not None else [event]

    def _text(self, event: TextDelta) -> list[StreamEvent]:
        if self._structured or event.signature is not None:
            return [event]
        return self._map(self._extractor.feed(event.text))

    def _call_start(self, event: ToolCallStart) -> list[StreamEvent]:
        out = [] if self._structured else self._map(self._extractor.flush())
        self._structured = True
        index = self._remap[event.index] = self._calls
        self._calls += 1
        return [*out, dataclasses.replace(event, index=index)]

    def _call_delta(self, event: ToolCallDelta) -> list[StreamEvent]:
        return [dataclasses.replace(event, index=self._remap.get(event.index, event.index))]

    def _call_end(self, event: ToolCallEnd) -> list[StreamEvent]:
        return [dataclasses.replace(event, index=self._remap.get(event.index, event.index))]

    def _stop(self, event: MessageStop) -> list[StreamEvent]:
        out = [] if self._structured else self._map(self._extractor.flush())
        if self._extracted and event.finish_reason == "stop":
            event = dataclasses.replace(event, finish_reason="tool_calls")
        return [*out, event]

    def _error(self, event: StreamError) -> list[StreamEvent]:
        out = [] if self._structured else self._map(self._extractor.flush())
        return [*out, event]

    def _map(self, found: list[XmlEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for item in found:
            if isinstance(item, XmlText):
                out.append(TextDelta(item.text))
            elif isinstance(item, XmlToolCall):
                out.extend(self._extracted_call(item))
            elif isinstance(item, XmlError):
                self.problems.append(f"{item.kind}: {item.message}")
                out.append(TextDelta(item.raw))
        return out

    def _extracted_call(self, item: XmlToolCall) -> list[StreamEvent]:
        self._extracted = True
        index = self._calls
        self._calls += 1
        call = item.call
        return [
            ToolCallStart(index, call.id, call.name),
            ToolCallDelta(index, call.arguments),
            ToolCallEnd(index),
        ]


_HANDLERS: dict[type, Callable[[ToolTextStage, StreamEvent], list[StreamEvent]]] = {
    TextDelta: ToolTextStage._text,  # type: ignore[dict-item]
    ToolCallStart: ToolTextStage._call_start,  # type: ignore[dict-item]
    ToolCallDelta: ToolTextStage._call_delta,  # type: ignore[dict-item]
    ToolCallEnd: ToolTextStage._call_end,  # type: ignore[dict-item]
    MessageStop: ToolTextStage._stop,  # type: ignore[dict-item]
    StreamError: ToolTextStage._error,  # type: ignore[dict-item]
}


def apply_stage(stage: ToolTextStage, response: Response) -> Response:
    """A whole answer through the stage (non-streaming responses)."""
    collector = StreamCollector()
    for event in events_of(response):
        for out in stage.feed(event):
            collector.feed(out)
    result = collector.result()
    return dataclasses.replace(result, id=response.id, model=response.model)
