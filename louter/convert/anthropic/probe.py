"""The probes in Anthropic Messages: requests written, answers and streams checked.

https://docs.anthropic.com/en/api/messages and .../build-with-claude/streaming. Paths
`/v1/messages` and `/v1/messages/count_tokens`; the key goes in `x-api-key` next to
`anthropic-version`. A stream is named SSE events whose `event:` equals the data's
`type`, in the order

    message_start
    (content_block_start content_block_delta* content_block_stop)*   indexes 0, 1, 2...
    message_delta                                                    the one stop_reason
    message_stop

with `ping` anywhere and no `[DONE]`. Errors are
`{"type": "error", "error": {"type", "message"}}`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from louter.convert.probe.fields import Notes, compact, count, load_json, read_token_count
from louter.convert.probe.image import base64_text
from louter.convert.probe.model import (
    COUNT,
    INVALID,
    LENGTH,
    STOP,
    TOOL_CALLS,
    Answer,
    Ask,
    Call,
    Json,
    SeenCall,
    ToolCalled,
    ToolResult,
    Turn,
    User,
    Wire,
    auditing,
)
from louter.convert.sse import SSEEvent

PATH = "/v1/messages"
COUNT_PATH = "/v1/messages/count_tokens"
VERSION = "2023-06-01"
HEADERS = {"content-type": "application/json", "anthropic-version": VERSION}
FINISH = {"end_turn": STOP, "stop_sequence": STOP, "max_tokens": LENGTH, "tool_use": TOOL_CALLS}


def key_header(key: str) -> tuple[str, str]:
    return "x-api-key", key


# --------------------------------------------------------------------------- requests


def _message(turn: Turn) -> Json:
    if isinstance(turn, User):
        if turn.image_png is None:
            return {"role": "user", "content": turn.text}
        source = {"type": "base64", "media_type": "image/png", "data": base64_text(turn.image_png)}
        image = {"type": "image", "source": source}
        return {"role": "user", "content": [image, {"type": "text", "text": turn.text}]}
    if isinstance(turn, ToolCalled):
        use = {"type": "tool_use", "id": turn.id, "name": turn.name, "input": dict(turn.arguments)}
        return {"role": "assistant", "content": [use]}
    if isinstance(turn, ToolResult):
        result = {"type": "tool_result", "tool_use_id": turn.id, "content": compact(turn.content)}
        return {"role": "user", "content": [result]}
    return {"role": "assistant", "content": turn.text}


def write(ask: Ask, model: str) -> Call:
    messages = [_message(turn) for turn in ask.turns]
    if ask.kind == COUNT:
        return Call("POST", COUNT_PATH, {"model": model, "messages": messages}, HEADERS)
    body: Json = {
        "model": model,
        "max_tokens": ask.max_tokens,
        "temperature": ask.temperature,
        "messages": messages,
    }
    if ask.kind == INVALID:  # no `messages`: every server must refuse it
        del body["messages"]
    if ask.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in ask.tools
        ]
    if ask.stream:
        body["stream"] = True
    return Call("POST", PATH, body, HEADERS, ask.stream)


# --------------------------------------------------------------------------- answers


def _finish(reason: Any) -> str | None:
    return FINISH.get(reason, reason) if isinstance(reason, str) else None


def read_answer(body: Any) -> tuple[Answer, list[str]]:
    notes = Notes()
    data = notes.mapping(body, "the answer")
    if data.get("type") != "message":
        notes.add(f"the answer's type is {data.get('type')!r}, not 'message'")
    texts: list[str] = []
    calls: list[SeenCall] = []
    for n, block in enumerate(notes.items(data.get("content"), "content")):
        block = notes.mapping(block, f"content[{n}]")
        if block.get("type") == "text":
            texts.append(notes.string(block.get("text"), f"content[{n}].text"))
        elif block.get("type") == "tool_use":
            calls.append(
                SeenCall(
                    notes.string(block.get("id"), f"content[{n}].id"),
                    notes.string(block.get("name"), f"content[{n}].name"),
                    notes.arguments(block.get("input"), f"content[{n}].input"),
                )
            )
    usage = notes.mapping(data.get("usage", {}), "usage")
    answer = Answer(
        text="".join(texts),
        calls=tuple(calls),
        finish=_finish(data.get("stop_reason")),
        finishes=int(data.get("stop_reason") is not None),
        prompt_tokens=count(usage.get("input_tokens")),
    )
    return answer, notes.problems


def read_count(body: Any) -> tuple[Answer, list[str]]:
    return read_token_count(body, "input_tokens")


def read_error(status: int, body: Any) -> tuple[Answer, list[str]]:
    notes = Notes()
    data = notes.mapping(body, "the error body")
    if data.get("type") != "error":
        notes.add(f"the error body's type is {data.get('type')!r}, not 'error'")
    error = notes.mapping(data.get("error"), "error")
    notes.string(error.get("type"), "error.type")
    message = notes.string(error.get("message"), "error.message")
    if not message:
        notes.add("the error has no message")
    return Answer(error=message), notes.problems


# --------------------------------------------------------------------------- streams


class _Phase(Enum):
    BEFORE = "before message_start"
    MESSAGE = "in the message"
    STOPPING = "after message_delta"
    DONE = "after message_stop"


class _Block:
    def __init__(self, kind: str, call: SeenCall | None) -> None:
        self.kind = kind
        self.call = call
        self.json: list[str] = []


class StreamAudit:
    """Walks an Anthropic event stream, assembling it and noting every departure from the
    grammar. One instance per stream; `_STEPS` is its transition table."""

    def __init__(self) -> None:
        self.notes = Notes()
        self.phase = _Phase.BEFORE
        self.blocks: list[_Block] = []
        self.open: _Block | None = None
        self.finishes: list[str] = []
        self.prompt_tokens: int | None = None

    def feed(self, event: SSEEvent) -> None:
        value, problem = load_json(event.data)
        if problem is not None:
            self.notes.add(f"an event's data is {problem}")
            return
        data = self.notes.mapping(value, "event data")
        kind = data.get("type")
        if event.event != kind:
            self.notes.add(f"`event: {event.event}` carries data of type {kind!r}")
        if kind == "ping":
            return
        if kind == "error":
            self.notes.add(f"the stream reported an error: {event.data[:200]}")
            return
        step = _STEPS.get((self.phase, str(kind)))
        if step is None:
            self.notes.add(f"{kind} {self.phase.value}")
            return
        step(self, data)

    def _start(self, data: Json) -> None:
        message = self.notes.mapping(data.get("message"), "message_start.message")
        usage = message.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = count(usage.get("input_tokens"))
        self.phase = _Phase.MESSAGE

    def _block_start(self, data: Json) -> None:
        if self.open is not None:
            self.notes.add("a content block started before the previous one stopped")
        if data.get("index") != len(self.blocks):
            self.notes.add(
                f"content block index {data.get('index')!r}, expected {len(self.blocks)}"
            )
        block = self.notes.mapping(data.get("content_block"), "content_block")
        call = None
        if block.get("type") == "tool_use":
            call = SeenCall(
                self.notes.string(block.get("id"), "tool_use.id"),
                self.notes.string(block.get("name"), "tool_use.name"),
                "",
            )
        self.open = _Block(str(block.get("type")), call)
        self.blocks.append(self.open)

    def _block_delta(self, data: Json) -> None:
        if self.open is None or data.get("index") != len(self.blocks) - 1:
            self.notes.add(f"a delta for block {data.get('index')!r}, which is not open")
            return
        delta = self.notes.mapping(data.get("delta"), "content_block_delta.delta")
        kind = delta.get("type")
        if kind == "text_delta" and self.open.kind == "text":
            self.open.json.append(self.notes.string(delta.get("text"), "text_delta.text"))
        elif kind == "input_json_delta" and self.open.kind == "tool_use":
            self.open.json.append(self.notes.string(delta.get("partial_json"), "partial_json"))
        elif kind not in ("thinking_delta", "signature_delta", "citations_delta"):
            self.notes.add(f"a {kind} in a {self.open.kind} block")

    def _block_stop(self, data: Json) -> None:
        if self.open is None or data.get("index") != len(self.blocks) - 1:
            self.notes.add(f"content_block_stop for block {data.get('index')!r}, which is not open")
        self.open = None

    def _delta(self, data: Json) -> None:
        if self.open is not None:
            self.notes.add("message_delta while a content block is open")
        delta = self.notes.mapping(data.get("delta"), "message_delta.delta")
        if delta.get("stop_reason") is not None:
            self.finishes.append(str(delta["stop_reason"]))
        self.phase = _Phase.STOPPING

    def _stop(self, data: Json) -> None:
        self.phase = _Phase.DONE

    def result(self) -> tuple[Answer, list[str]]:
        if self.phase is not _Phase.DONE:
            self.notes.add(f"the stream ended {self.phase.value}, before message_stop")
        if len(self.finishes) != 1:
            self.notes.add(f"{len(self.finishes)} stop reasons (one expected, in message_delta)")
        texts = ["".join(b.json) for b in self.blocks if b.kind == "text"]
        calls = tuple(
            SeenCall(b.call.id, b.call.name, "".join(b.json) or "{}")
            for b in self.blocks
            if b.call is not None
        )
        answer = Answer(
            text="".join(texts),
            calls=calls,
            finish=_finish(self.finishes[-1] if self.finishes else None),
            finishes=len(self.finishes),
            prompt_tokens=self.prompt_tokens,
        )
        return answer, self.notes.problems


_STEPS: dict[tuple[_Phase, str], Callable[[StreamAudit, Json], None]] = {
    (_Phase.BEFORE, "message_start"): StreamAudit._start,
    (_Phase.MESSAGE, "content_block_start"): StreamAudit._block_start,
    (_Phase.MESSAGE, "content_block_delta"): StreamAudit._block_delta,
    (_Phase.MESSAGE, "content_block_stop"): StreamAudit._block_stop,
    (_Phase.MESSAGE, "message_delta"): StreamAudit._delta,
    (_Phase.STOPPING, "message_stop"): StreamAudit._stop,
}


WIRE = Wire(
    name="anthropic",
    default_model="claude-haiku-4-5",
    write=write,
    key_header=key_header,
    read_answer=read_answer,
    read_count=read_count,
    read_error=read_error,
    audit_stream=auditing(StreamAudit),
)
