"""Responses output items as the emitter writes them: one `OutputItem` per item, its
object while in progress and when done, and the events that open and close it.

Used by `stream_emitter.ResponseWriter`; see there for the grammar and decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from louter.convert.responses.wire import WireTool, custom_input, item_id

__all__ = ["OutputItem", "Payload", "event"]

Payload = dict[str, Any]
_PREFIXES = {"message": "msg", "reasoning": "rs", "function_call": "fc", "custom_tool_call": "ctc"}


def event(kind: str, **fields: Any) -> Payload:
    """One stream event payload (its sequence number is added when it is encoded)."""
    return {"type": kind, **fields}


def _output_text(text: str) -> Payload:
    return {"type": "output_text", "text": text, "annotations": []}


def _summary(text: str) -> Payload:
    return {"type": "summary_text", "text": text}


@dataclass(slots=True)
class OutputItem:
    """The output item being written: its kind (a message, reasoning, a function call or
    a custom tool call), position and the text streamed into it so far."""

    kind: str  # "message" | "reasoning" | "function_call" | "custom_tool_call"
    index: int  # output_index
    id: str
    tool: int = -1  # the neutral tool-call index of a call item
    call_id: str = ""
    wire: WireTool | None = None  # the wire name of a call item
    chunks: list[str] = field(default_factory=list)
    encrypted: str | None = None  # a reasoning item's encrypted_content

    @classmethod
    def new(cls, kind: str, response_id: str, index: int, **call: Any) -> OutputItem:
        """An item with its deterministic id (`msg_…`, `rs_…`, `fc_…`, `ctc_…`)."""
        return cls(kind, index, item_id(_PREFIXES[kind], response_id, index), **call)

    def text(self) -> str:
        return "".join(self.chunks)

    def where(self, **more: int) -> Payload:
        """The fields locating an event in this item."""
        return {"item_id": self.id, "output_index": self.index, **more}

    def body(self, status: str, done: bool) -> Payload:
        """The item object: empty while in progress, whole when done."""
        return _BODIES[self.kind](self, status, self.text() if done else "", done)

    def opened(self) -> list[Payload]:
        """`output_item.added` (and a message's `content_part.added`)."""
        added = event("response.output_item.added", output_index=self.index,
                      item=self.body("in_progress", False))  # fmt: skip
        if self.kind != "message":
            return [added]
        part = event(
            "response.content_part.added", **self.where(content_index=0), part=_output_text("")
        )
        return [added, part]

    def closed(self, status: str) -> tuple[Payload, list[Payload]]:
        """The whole item, and the events closing it, `output_item.done` last."""
        body = self.body(status, True)
        done = event("response.output_item.done", output_index=self.index, item=body)
        return body, [*_CLOSERS[self.kind](self), done]

    def summary_added(self) -> Payload:
        return event(
            "response.reasoning_summary_part.added",
            **self.where(summary_index=0),
            part=_summary(""),
        )


def _message(item: OutputItem, status: str, text: str, done: bool) -> Payload:
    content = [_output_text(text)] if done else []
    return {
        "type": "message",
        "id": item.id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _reasoning(item: OutputItem, status: str, text: str, done: bool) -> Payload:
    body: Payload = {
        "type": "reasoning",
        "id": item.id,
        "summary": [_summary(text)] if text else [],
    }
    if done and item.encrypted is not None:
        body["encrypted_content"] = item.encrypted
    return body


def _call(item: OutputItem, status: str, text: str, done: bool) -> Payload:
    assert item.wire is not None
    body: Payload = {"type": item.kind, "id": item.id, "status": status, "call_id": item.call_id,
                     "name": item.wire.name}  # fmt: skip
    if item.wire.namespace is not None:
        body["namespace"] = item.wire.namespace
    if item.kind == "custom_tool_call":
        body["input"] = custom_input(text) if done else ""
    else:
        body["arguments"] = text
    return body


def _close_message(item: OutputItem) -> list[Payload]:
    text, where = item.text(), item.where(content_index=0)
    return [
        event("response.output_text.done", **where, text=text, logprobs=[]),
        event("response.content_part.done", **where, part=_output_text(text)),
    ]


def _close_reasoning(item: OutputItem) -> list[Payload]:
    if not item.chunks:
        return []
    text, where = item.text(), item.where(summary_index=0)
    return [
        event("response.reasoning_summary_text.done", **where, text=text),
        event("response.reasoning_summary_part.done", **where, part=_summary(text)),
    ]


def _close_function(item: OutputItem) -> list[Payload]:
    return [event("response.function_call_arguments.done", **item.where(), arguments=item.text())]


def _close_custom(item: OutputItem) -> list[Payload]:
    """The raw input, known only now: one delta with all of it, then done."""
    text = custom_input(item.text())
    delta = [event("response.custom_tool_call_input.delta", **item.where(), delta=text)]
    done = event("response.custom_tool_call_input.done", **item.where(), input=text)
    return [*(delta if text else []), done]


_Body = Callable[[OutputItem, str, str, bool], Payload]
_BODIES: dict[str, _Body] = {
    "message": _message,
    "reasoning": _reasoning,
    "function_call": _call,
    "custom_tool_call": _call,
}


_CLOSERS: dict[str, Callable[[OutputItem], list[Payload]]] = {
    "message": _close_message,
    "reasoning": _close_reasoning,
    "function_call": _close_function,
    "custom_tool_call": _close_custom,
}
