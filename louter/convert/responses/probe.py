"""The probes in OpenAI Responses: requests written, answers and streams checked.

https://platform.openai.com/docs/api-reference/responses. A whole answer is a response
object whose `output` holds `message` items (`output_text` parts) and `function_call`
items; `status` is `completed`, or `incomplete` with `incomplete_details.reason`
`max_output_tokens` for a cut answer. A stream is typed events (`event:` line and JSON
`type`): `response.created` first, `response.output_text.delta` for text,
`response.output_item.added` then `response.function_call_arguments.delta` for a call,
and exactly one terminal `response.completed` / `response.incomplete` carrying the
whole response with its `usage`; nothing follows it. `response.failed` and `error` are
failures. There is no `[DONE]`. Errors are `{"error": {"message", "type"}}`. louter's
Responses door has no token-count endpoint: the count probe reads `usage.input_tokens`
of a short answer (16 tokens, the API's smallest `max_output_tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from louter.convert.probe.fields import Notes, compact, count, load_json
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
from louter.convert.responses.wire import NAMESPACE_SEPARATOR
from louter.convert.sse import SSEEvent

PATH = "/v1/responses"
HEADERS = {"content-type": "application/json"}
COUNT_MAX_TOKENS = 16  # the smallest `max_output_tokens` the API accepts
TERMINAL = ("response.completed", "response.incomplete")
FAILED = ("response.failed", "error")


def key_header(key: str) -> tuple[str, str]:
    return "authorization", f"Bearer {key}"


# --------------------------------------------------------------------------- requests


def _user(turn: User) -> Json:
    content: list[Json] = [{"type": "input_text", "text": turn.text}]
    if turn.image_png is not None:
        url = "data:image/png;base64," + base64_text(turn.image_png)
        content.append({"type": "input_image", "image_url": url})
    return {"role": "user", "content": content}


def _item(turn: Turn) -> Json:
    if isinstance(turn, User):
        return _user(turn)
    if isinstance(turn, ToolCalled):
        arguments = compact(turn.arguments)
        return {
            "type": "function_call",
            "call_id": turn.id,
            "name": turn.name,
            "arguments": arguments,
        }
    if isinstance(turn, ToolResult):
        return {"type": "function_call_output", "call_id": turn.id, "output": compact(turn.content)}
    return {"role": "assistant", "content": turn.text}


def write(ask: Ask, model: str) -> Call:
    body: Json = {
        "model": model,
        "input": [_item(turn) for turn in ask.turns],
        "max_output_tokens": COUNT_MAX_TOKENS if ask.kind == COUNT else ask.max_tokens,
        "temperature": ask.temperature,
    }
    if ask.kind == INVALID:  # no `input`: every server must refuse it
        body = {"model": model, "max_output_tokens": ask.max_tokens}
    if ask.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            }
            for t in ask.tools
        ]
        body["tool_choice"] = "auto"
    if ask.stream:
        body["stream"] = True
    return Call("POST", PATH, body, HEADERS, ask.stream)


# --------------------------------------------------------------------------- answers


def _finish(status: Any, response: Json, calls: Sequence[SeenCall]) -> str | None:
    if status == "completed":
        return TOOL_CALLS if calls else STOP
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return LENGTH if reason == "max_output_tokens" else str(reason or status)
    return str(status) if isinstance(status, str) else None


def _message_text(item: Json, notes: Notes) -> str:
    texts = []
    for part in notes.items(item.get("content", []), "message.content"):
        part = notes.mapping(part, "a content part")
        if part.get("type") == "output_text":
            texts.append(notes.string(part.get("text"), "output_text.text"))
    return "".join(texts)


def _name(item: Json) -> str:
    """A call's function name; a namespaced tool's as louter names it (`ns__tool`)."""
    name, namespace = str(item.get("name") or ""), item.get("namespace")
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace and name else name


def _call(item: Json, notes: Notes) -> SeenCall:
    notes.string(item.get("name"), "function_call.name")
    return SeenCall(
        notes.string(item.get("call_id"), "function_call.call_id"),
        _name(item),
        notes.string(item.get("arguments"), "function_call.arguments"),
    )


def _read_response(response: Json, notes: Notes) -> Answer:
    texts, calls = [], []
    for item in notes.items(response.get("output"), "output"):
        item = notes.mapping(item, "an output item")
        if item.get("type") == "message":
            texts.append(_message_text(item, notes))
        elif item.get("type") == "function_call":
            calls.append(_call(item, notes))
    status = response.get("status")
    usage = notes.mapping(response.get("usage") or {}, "usage")
    return Answer(
        text="".join(texts),
        calls=tuple(calls),
        finish=_finish(status, response, calls),
        finishes=int(isinstance(status, str)),
        prompt_tokens=count(usage.get("input_tokens")),
    )


def read_answer(body: Any) -> tuple[Answer, list[str]]:
    notes = Notes()
    response = notes.mapping(body, "the answer")
    if response.get("object") != "response":
        notes.add("the answer is not a response object")
    return _read_response(response, notes), notes.problems


def read_count(body: Any) -> tuple[Answer, list[str]]:
    answer, problems = read_answer(body)
    return Answer(count=answer.prompt_tokens, prompt_tokens=answer.prompt_tokens), problems


def read_error(status: int, body: Any) -> tuple[Answer, list[str]]:
    notes = Notes()
    error = notes.mapping(notes.mapping(body, "the error body").get("error"), "error")
    message = notes.string(error.get("message"), "error.message")
    if not message:
        notes.add("the error has no message")
    return Answer(error=message), notes.problems


# --------------------------------------------------------------------------- streams


class StreamAudit:
    """Walks a Responses event stream, assembling it and noting every departure from the
    grammar. One instance per stream."""

    def __init__(self) -> None:
        self.notes = Notes()
        self.text: list[str] = []
        self.calls: dict[int, list[str]] = {}  # output_index -> [call_id, name, args...]
        self.started = False
        self.final: Json | None = None

    def feed(self, event: SSEEvent) -> None:
        value, problem = load_json(event.data)
        if problem is not None:
            self.notes.add(f"an event is {problem}")
            return
        data = self.notes.mapping(value, "an event")
        kind = data.get("type") or event.event
        if event.event and data.get("type") and event.event != data["type"]:
            self.notes.add(f"`event: {event.event}` names another type than {data['type']!r}")
        if self.final is not None:
            self.notes.add(f"{kind} after the terminal event")
            return
        if not self.started and kind != "response.created":
            self.notes.add(f"the stream starts with {kind}, not response.created")
        self.started = True
        self._event(str(kind), data)

    def _event(self, kind: str, data: Json) -> None:
        if kind in FAILED:
            self.notes.add(f"the stream reported an error: {compact(data)[:200]}")
        elif kind in TERMINAL:
            self.final = self.notes.mapping(data.get("response"), f"{kind}.response")
        elif kind == "response.output_text.delta":
            self.text.append(self.notes.string(data.get("delta"), "output_text.delta"))
        elif kind == "response.output_item.added":
            item = self.notes.mapping(data.get("item"), "output_item.added.item")
            if item.get("type") == "function_call":
                index = data.get("output_index")
                call = [str(item.get("call_id") or ""), _name(item)]
                self.calls[index if isinstance(index, int) else len(self.calls)] = call
        elif kind == "response.function_call_arguments.delta":
            index = data.get("output_index")
            pending = self.calls.get(index) if isinstance(index, int) else None
            if pending is None:
                self.notes.add("arguments for a call that was never added")
            else:
                pending.append(self.notes.string(data.get("delta"), "arguments.delta"))

    def result(self) -> tuple[Answer, list[str]]:
        if self.final is None:
            self.notes.add("the stream ended without response.completed or .incomplete")
        calls = []
        for index, (call_id, name, *arguments) in sorted(self.calls.items()):
            if not name:
                self.notes.add(f"tool call {index} never named its function")
            calls.append(SeenCall(call_id, name, "".join(arguments)))
        final = self.final or {}
        usage = final.get("usage")
        answer = Answer(
            text="".join(self.text),
            calls=tuple(calls),
            finish=_finish(final.get("status"), final, calls) if final else None,
            finishes=int(self.final is not None),
            prompt_tokens=count(usage.get("input_tokens")) if isinstance(usage, dict) else None,
        )
        return answer, self.notes.problems


WIRE = Wire(
    name="responses",
    default_model="gpt-4o-mini",
    write=write,
    key_header=key_header,
    read_answer=read_answer,
    read_count=read_count,
    read_error=read_error,
    audit_stream=auditing(StreamAudit),
)
