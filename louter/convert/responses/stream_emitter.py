"""Neutral events -> Responses stream events (`StreamEmitter`), and the same writer
building whole answers (`ResponseWriter`, used by `responses.emit_response`).

Output grammar (what Codex and the OpenAI SDK accept), every event with an `event:` line
equal to its `type` and `sequence_number` 0, 1, 2... on every event:

    response.created response.in_progress
    ( response.output_item.added  <the item's events>  response.output_item.done )*
    response.completed            or, on failure: response.failed

    message         content_part.added  output_text.delta*  output_text.done
                    content_part.done
    reasoning       (reasoning_summary_part.added  reasoning_summary_text.delta*
                     reasoning_summary_text.done  reasoning_summary_part.done)?
    function_call   function_call_arguments.delta*  function_call_arguments.done
    custom call     custom_tool_call_input.delta  custom_tool_call_input.done

Decisions
- Every item gets `output_item.added` and `output_item.done` (Codex reads items only
  from `output_item.done`). One item is open at a time: content of another kind (or
  another call) closes it. Item ids come from the response id and the output index
  (`msg_`, `rs_`, `fc_`, `ctc_` + `<id without resp_>_<n>`), never from randomness.
- Reasoning is written as a summary (`reasoning_summary_text.*`), which Codex shows by
  default and sends back in its history (it drops raw `reasoning_text` content). Opaque
  data (redacted reasoning, or a signature: see `wire`) becomes the item's
  `encrypted_content` and closes the item.
- Custom tool calls (`ToolKinds`) buffer their argument fragments: the neutral arguments
  are JSON `{"input": ...}`, the wire input is the raw text, known once the call ends.
  Namespaced calls carry `namespace` and their short `name`.
- `response.completed` carries the full `output` and the final usage (null when no
  usage was reported). A finish "length" / "content_filter" is still
  `response.completed`, with `status: "incomplete"` and `incomplete_details.reason`
  ("max_output_tokens" / "content_filter"): the API would send `response.incomplete`,
  which Codex treats as a broken stream (it retries) and the SDK's
  `get_final_response()` rejects. Items closed by such a stop are "incomplete".
- A StreamError, a finish "error", or flush() before any stop closes the open item as
  incomplete and ends with `response.failed` (`error.code` "rate_limit_exceeded" for
  429, else "server_error"); never `response.completed`. Even a stream failing before
  any content starts with `response.created`, which the SDK requires first.
- The echoed request settings are not known here: `tools: []`, `tool_choice: "auto"`,
  `parallel_tool_calls: true` (clients do not read them back).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import orjson

from louter.convert.model import (
    MessageStart,
    MessageStop,
    Reasoning,
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
from louter.convert.responses.items import OutputItem, Payload, event
from louter.convert.responses.wire import (
    FUNCTIONS,
    ToolKinds,
    WireTool,
    emit_usage,
    encrypted_content,
    status_of,
)
from louter.convert.sse import encode_event
from louter.errors import ConversionError

__all__ = ["ResponseWriter", "StreamEmitter"]


class _Phase(Enum):
    BEFORE = "before response.created"
    OPEN = "inside the response"
    DONE = "after the end of the response"


def _misuse(problem: str) -> ConversionError:
    return ConversionError(f"Responses stream: {problem}", status_hint=502)


class ResponseWriter:
    """Neutral stream events -> Responses event payloads (without sequence numbers).

    States: `_Phase.BEFORE` until the first event writes `response.created`, `OPEN`
    while items are written (at most one open: `_item`), `DONE` once the final response
    object (`final`) is written by `response.completed` or `response.failed`.
    """

    __slots__ = ("_meta", "_kinds", "_phase", "_item", "_calls", "_output", "_usage", "final")

    def __init__(self, meta: ResponseMeta, kinds: ToolKinds = FUNCTIONS) -> None:
        self._meta = meta
        self._kinds = kinds
        self._phase = _Phase.BEFORE
        self._item: OutputItem | None = None
        self._calls: set[int] = set()  # neutral tool-call indexes started so far
        self._output: list[Payload] = []  # the items done so far
        self._usage: Usage | None = None
        self.final: Payload | None = None

    def feed(self, event: StreamEvent) -> list[Payload]:
        """Take one neutral event; return the payloads it produces.

        Raises:
            ConversionError: (502) an event after the end, or arguments for a tool call
                that is not the open item.
        """
        if self._phase is _Phase.DONE:
            if isinstance(event, StreamError):
                return []  # the answer was already complete
            raise _misuse(f"{type(event).__name__} after the end of the response")
        head = self._start() if self._phase is _Phase.BEFORE else []
        return head + _WRITERS[type(event)](self, event)

    def flush(self) -> list[Payload]:
        """End of input: `response.failed` when no MessageStop or StreamError came."""
        if self._phase is _Phase.DONE:
            return []
        head = self._start() if self._phase is _Phase.BEFORE else []
        return head + self._fail(StreamError("upstream stream ended without a stop event"))

    def _response(
        self,
        status: str,
        error: Payload | None = None,
        incomplete: str | None = None,
        usage: Usage | None = None,
    ) -> Payload:
        return {
            "id": self._meta.id,
            "object": "response",
            "created_at": self._meta.created,
            "status": status,
            "model": self._meta.model,
            "output": list(self._output),
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete is not None else None,
            "usage": emit_usage(usage) if usage is not None else None,
        }

    def _start(self) -> list[Payload]:
        self._phase = _Phase.OPEN
        opening = self._response("in_progress")
        return [
            event("response.created", response=opening),
            event("response.in_progress", response=opening),
        ]

    def _nothing(self, event: StreamEvent) -> list[Payload]:
        return []

    def _text(self, delta: TextDelta) -> list[Payload]:
        if not delta.text:
            return []
        item = self._item
        out = [] if item is not None and item.kind == "message" else self._open("message")
        item = self._current()
        item.chunks.append(delta.text)
        where = item.where(content_index=0)
        return out + [event("response.output_text.delta", **where, delta=delta.text, logprobs=[])]

    def _reasoning(self, delta: ReasoningDelta) -> list[Payload]:
        out: list[Payload] = []
        if delta.text:
            out += self._reasoning_item()
            item = self._current()
            if not item.chunks:
                out.append(item.summary_added())
            item.chunks.append(delta.text)
            where = item.where(summary_index=0)
            out.append(event("response.reasoning_summary_text.delta", **where, delta=delta.text))
        opaque = encrypted_content(Reasoning(signature=delta.signature, redacted=delta.redacted))
        if opaque is not None:
            out += self._reasoning_item()
            self._current().encrypted = opaque
            out += self._close()
        return out

    def _reasoning_item(self) -> list[Payload]:
        """Open a reasoning item unless one is open (an open one has no opaque data yet:
        setting it closes the item)."""
        if self._item is not None and self._item.kind == "reasoning":
            return []
        return self._open("reasoning")

    def _tool_start(self, start: ToolCallStart) -> list[Payload]:
        wire = self._kinds.wire(start.name)
        kind = "custom_tool_call" if wire.custom else "function_call"
        out = self._open(kind, tool=start.index, call_id=start.id, wire=wire)
        self._calls.add(start.index)
        return out

    def _tool_delta(self, delta: ToolCallDelta) -> list[Payload]:
        item = self._item
        if item is None or item.tool != delta.index:
            where = "was closed" if delta.index in self._calls else "was never started"
            raise _misuse(f"arguments for tool call {delta.index}, which {where}")
        if not delta.arguments:
            return []
        item.chunks.append(delta.arguments)
        if item.kind == "custom_tool_call":
            return []  # the raw input is known at the end of the call
        fragment = delta.arguments
        return [event("response.function_call_arguments.delta", **item.where(), delta=fragment)]

    def _tool_end(self, end: ToolCallEnd) -> list[Payload]:
        if self._item is not None and self._item.tool == end.index:
            return self._close()
        return []

    def _usage_update(self, update: UsageUpdate) -> list[Payload]:
        self._usage = update.usage
        return []

    def _stop(self, stop: MessageStop) -> list[Payload]:
        mapped = status_of(stop.finish_reason)
        if mapped is None:
            return self._fail(StreamError("upstream ended the response with an error"))
        status, reason = mapped
        out = self._close("completed" if status == "completed" else "incomplete")
        self.final = self._response(status, incomplete=reason, usage=stop.usage or self._usage)
        self._phase = _Phase.DONE
        return out + [event("response.completed", response=self.final)]

    def _fail(self, error: StreamError) -> list[Payload]:
        out = self._close("incomplete")
        code = "rate_limit_exceeded" if error.status == 429 else "server_error"
        wire_error = {"code": code, "message": error.message}
        self.final = self._response("failed", error=wire_error, usage=self._usage)
        self._phase = _Phase.DONE
        return out + [event("response.failed", response=self.final)]

    def _open(
        self, kind: str, tool: int = -1, call_id: str = "", wire: WireTool | None = None
    ) -> list[Payload]:
        out = self._close()
        index = len(self._output)
        self._item = OutputItem.new(
            kind, self._meta.id, index, tool=tool, call_id=call_id, wire=wire
        )
        return out + self._item.opened()

    def _current(self) -> OutputItem:
        assert self._item is not None
        return self._item

    def _close(self, status: str = "completed") -> list[Payload]:
        if self._item is None:
            return []
        body, out = self._item.closed(status)
        self._item = None
        self._output.append(body)
        return out


_WRITERS: dict[type, Callable[[ResponseWriter, Any], list[Payload]]] = {
    MessageStart: ResponseWriter._nothing,  # response.created is written before any event
    TextDelta: ResponseWriter._text,
    ReasoningDelta: ResponseWriter._reasoning,
    ToolCallStart: ResponseWriter._tool_start,
    ToolCallDelta: ResponseWriter._tool_delta,
    ToolCallEnd: ResponseWriter._tool_end,
    UsageUpdate: ResponseWriter._usage_update,
    MessageStop: ResponseWriter._stop,
    StreamError: ResponseWriter._fail,
}


class StreamEmitter:
    """Neutral stream events -> Responses SSE bytes. One instance per response.

    `kinds` (from `tool_kinds(request body)`) says which calls go back as custom tool
    calls or namespaced calls; by default every call is a plain `function_call`.
    """

    __slots__ = ("_writer", "_sequence")

    def __init__(self, meta: ResponseMeta, kinds: ToolKinds = FUNCTIONS) -> None:
        self._writer = ResponseWriter(meta, kinds)
        self._sequence = 0

    def feed(self, event: StreamEvent) -> bytes:
        """Take one neutral event; return the SSE bytes it produces (maybe none).

        Raises:
            ConversionError: (502) as `ResponseWriter.feed`.
        """
        return self._encode(self._writer.feed(event))

    def prelude(self) -> bytes:
        """The stream's opening, written before the first upstream event arrives."""
        return self.feed(MessageStart())

    def flush(self) -> bytes:
        """End of input: `response.failed` when no MessageStop or StreamError came."""
        return self._encode(self._writer.flush())

    def _encode(self, payloads: list[Payload]) -> bytes:
        """Each payload as one SSE event: `event:` = its type, the next sequence number."""
        out = []
        for payload in payloads:
            data = {"type": payload["type"], "sequence_number": self._sequence, **payload}
            self._sequence += 1
            out.append(encode_event(orjson.dumps(data), payload["type"]))
        return b"".join(out)
