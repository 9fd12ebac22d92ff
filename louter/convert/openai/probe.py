"""The probes in OpenAI Chat Completions: requests written, answers and streams checked.

https://platform.openai.com/docs/api-reference/chat. A stream is `data: {chunk}` events
ending with `data: [DONE]`; exactly one chunk carries a `finish_reason` for choice 0 and
no content follows it (a usage chunk with `choices: []` may); tool-call fragments are
keyed by `index`, the first of each naming the function. Errors are
`{"error": {"message", "type"}}`. There is no token-count endpoint: the count probe
reads `usage.prompt_tokens` of a one-token completion.
"""

from __future__ import annotations

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
from louter.convert.sse import SSEEvent

PATH = "/v1/chat/completions"
FINISH = {"stop": STOP, "length": LENGTH, "tool_calls": TOOL_CALLS}
HEADERS = {"content-type": "application/json"}


def key_header(key: str) -> tuple[str, str]:
    return "authorization", f"Bearer {key}"


# --------------------------------------------------------------------------- requests


def _user(turn: User) -> Json:
    if turn.image_png is None:
        return {"role": "user", "content": turn.text}
    url = "data:image/png;base64," + base64_text(turn.image_png)
    parts = [{"type": "text", "text": turn.text}, {"type": "image_url", "image_url": {"url": url}}]
    return {"role": "user", "content": parts}


def _called(turn: ToolCalled) -> Json:
    function = {"name": turn.name, "arguments": compact(turn.arguments)}
    call = {"id": turn.id, "type": "function", "function": function}
    return {"role": "assistant", "content": "", "tool_calls": [call]}


def _message(turn: Turn) -> Json:
    if isinstance(turn, User):
        return _user(turn)
    if isinstance(turn, ToolCalled):
        return _called(turn)
    if isinstance(turn, ToolResult):
        return {"role": "tool", "tool_call_id": turn.id, "content": compact(turn.content)}
    return {"role": "assistant", "content": turn.text}


def write(ask: Ask, model: str) -> Call:
    body: Json = {
        "model": model,
        "messages": [_message(turn) for turn in ask.turns],
        "max_tokens": 1 if ask.kind == COUNT else ask.max_tokens,
        "temperature": ask.temperature,
    }
    if ask.kind == INVALID:  # no `messages`: every server must refuse it
        body = {"model": model, "max_tokens": ask.max_tokens}
    if ask.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in ask.tools
        ]
        body["tool_choice"] = "auto"
    if ask.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return Call("POST", PATH, body, HEADERS, ask.stream)


# --------------------------------------------------------------------------- answers


def _calls(raw: Any, notes: Notes) -> tuple[SeenCall, ...]:
    calls = []
    for n, item in enumerate(notes.items(raw or [], "message.tool_calls")):
        where = f"tool_calls[{n}]"
        call = notes.mapping(item, where)
        function = notes.mapping(call.get("function"), f"{where}.function")
        calls.append(
            SeenCall(
                notes.string(call.get("id"), f"{where}.id"),
                notes.string(function.get("name"), f"{where}.function.name"),
                notes.string(function.get("arguments"), f"{where}.function.arguments"),
            )
        )
    return tuple(calls)


def read_answer(body: Any) -> tuple[Answer, list[str]]:
    notes = Notes()
    data = notes.mapping(body, "the answer")
    choices = notes.items(data.get("choices"), "choices")
    if not choices:
        notes.add("the answer has no choices")
    choice = notes.mapping(choices[0], "choices[0]") if choices else {}
    message = notes.mapping(choice.get("message"), "choices[0].message") if choices else {}
    content = message.get("content")
    reason = choice.get("finish_reason")
    answer = Answer(
        text=notes.string(content, "message.content") if content is not None else "",
        calls=_calls(message.get("tool_calls"), notes),
        finish=FINISH.get(reason, reason) if isinstance(reason, str) else None,
        finishes=int(isinstance(reason, str)),
        prompt_tokens=count(notes.mapping(data.get("usage", {}), "usage").get("prompt_tokens")),
    )
    return answer, notes.problems


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


class _Fragments:
    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


class StreamAudit:
    """Walks an OpenAI chunk stream, assembling it and noting every departure from the
    grammar. One instance per stream."""

    def __init__(self) -> None:
        self.notes = Notes()
        self.text: list[str] = []
        self.calls: dict[int, _Fragments] = {}
        self.finishes: list[str] = []
        self.prompt_tokens: int | None = None
        self.done = False

    def feed(self, event: SSEEvent) -> None:
        if self.done:
            self.notes.add("data after `data: [DONE]`")
            return
        if event.data == "[DONE]":
            self.done = True
            return
        value, problem = load_json(event.data)
        chunk = self.notes.mapping(value, "a chunk") if problem is None else {}
        if problem is not None:
            self.notes.add(f"a chunk is {problem}")
        elif "error" in chunk or event.event == "error":
            self.notes.add(f"the stream reported an error: {event.data[:200]}")
            return
        usage = chunk.get("usage")
        if isinstance(usage, dict) and count(usage.get("prompt_tokens")) is not None:
            self.prompt_tokens = usage["prompt_tokens"]
        for choice in self.notes.items(chunk.get("choices", []), "chunk.choices"):
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice)

    def _choice(self, choice: Json) -> None:
        delta = self.notes.mapping(choice.get("delta", {}), "choice.delta")
        content = delta.get("content")
        fragments = delta.get("tool_calls")
        if self.finishes and (content or fragments):
            self.notes.add("content after the finish_reason")
        if content:
            self.text.append(self.notes.string(content, "delta.content"))
        for position, fragment in enumerate(self.notes.items(fragments or [], "delta.tool_calls")):
            self._fragment(self.notes.mapping(fragment, "a tool-call fragment"), position)
        reason = choice.get("finish_reason")
        if reason is not None:
            self.finishes.append(str(reason))

    def _fragment(self, fragment: Json, position: int) -> None:
        """Fragments are keyed by `index`; servers that send whole calls without one
        (Gemini's OpenAI endpoint) are keyed by position, as louter's parser does."""
        index = fragment.get("index")
        index = index if isinstance(index, int) else position
        call = self.calls.setdefault(index, _Fragments())
        function = self.notes.mapping(fragment.get("function", {}), "fragment.function")
        call.id = call.id or str(fragment.get("id") or "")
        call.name = call.name or str(function.get("name") or "")
        if isinstance(function.get("arguments"), str):
            call.arguments.append(function["arguments"])

    def result(self) -> tuple[Answer, list[str]]:
        if not self.done:
            self.notes.add("the stream ended without `data: [DONE]`")
        if len(self.finishes) != 1:
            self.notes.add(f"{len(self.finishes)} finish reasons (one expected)")
        calls = []
        for index, call in sorted(self.calls.items()):
            if not call.name:
                self.notes.add(f"tool call {index} never named its function")
            calls.append(SeenCall(call.id, call.name, "".join(call.arguments)))
        reason = self.finishes[-1] if self.finishes else None
        answer = Answer(
            text="".join(self.text),
            calls=tuple(calls),
            finish=FINISH.get(reason, reason) if reason else None,
            finishes=len(self.finishes),
            prompt_tokens=self.prompt_tokens,
        )
        return answer, self.notes.problems


WIRE = Wire(
    name="openai",
    default_model="gpt-4o-mini",
    write=write,
    key_header=key_header,
    read_answer=read_answer,
    read_count=read_count,
    read_error=read_error,
    audit_stream=auditing(StreamAudit),
)
