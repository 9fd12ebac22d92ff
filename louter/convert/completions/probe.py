"""The probes in legacy Completions: requests written, answers and streams checked.

https://platform.openai.com/docs/api-reference/completions. A request is one `prompt`:
the Ask's conversation written as the plain transcript louter renders for a Completions
backend (`transcript.render_prompt`, with its stop sequence), which an instruction-tuned
model answers (a bare question is often just ended). The API has no tools and no images:
a tool call and its result are written as text and the tools are left out (so the tool
probes fail, as they must on this dialect), and an image is left out. A stream is
`data: {chunk}` events ending with `data: [DONE]`; exactly one chunk carries a
`finish_reason` for choice 0 and no text follows it. There is no token-count endpoint: the
count probe reads `usage.prompt_tokens` of a one-token completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from louter.convert.completions.transcript import STOPS, render_prompt
from louter.convert.completions.wire import PATH
from louter.convert.model import Message, Text
from louter.convert.probe.fields import Notes, compact, count, load_json
from louter.convert.probe.model import (
    COUNT,
    IMAGES,
    INVALID,
    LENGTH,
    STOP,
    TOOLS,
    Answer,
    Ask,
    Assistant,
    Call,
    Json,
    ToolCalled,
    ToolResult,
    Turn,
    User,
    Wire,
    auditing,
)
from louter.convert.sse import SSEEvent

FINISH = {"stop": STOP, "length": LENGTH}
HEADERS = {"content-type": "application/json"}


def key_header(key: str) -> tuple[str, str]:
    return "authorization", f"Bearer {key}"


def _message(turn: Turn) -> Message:
    if isinstance(turn, User):
        return Message("user", (Text(turn.text),))
    if isinstance(turn, ToolCalled):
        return Message("assistant", (Text(f"{turn.name}({compact(turn.arguments)})"),))
    if isinstance(turn, ToolResult):
        return Message("user", (Text(compact(turn.content)),))
    assert isinstance(turn, Assistant)
    return Message("assistant", (Text(turn.text),))


def prompt_of(turns: Sequence[Turn]) -> str:
    return render_prompt(tuple(_message(turn) for turn in turns))


def write(ask: Ask, model: str) -> Call:
    body: Json = {
        "model": model,
        "prompt": prompt_of(ask.turns),
        "max_tokens": 1 if ask.kind == COUNT else ask.max_tokens,
        "temperature": ask.temperature,
        "stop": list(STOPS),
    }
    if ask.kind == INVALID:  # no `prompt`: every server must refuse it
        body = {"model": model, "max_tokens": ask.max_tokens}
    if ask.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return Call("POST", PATH, body, HEADERS, ask.stream)


def read_answer(body: Any) -> tuple[Answer, list[str]]:
    notes = Notes()
    data = notes.mapping(body, "the answer")
    choices = notes.items(data.get("choices"), "choices")
    if not choices:
        notes.add("the answer has no choices")
    choice = notes.mapping(choices[0], "choices[0]") if choices else {}
    reason = choice.get("finish_reason")
    answer = Answer(
        text=notes.string(choice.get("text"), "choices[0].text") if choices else "",
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


class StreamAudit:
    """Walks a Completions chunk stream, assembling it and noting every departure from
    the grammar. One instance per stream."""

    def __init__(self) -> None:
        self.notes = Notes()
        self.text: list[str] = []
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
        if problem is not None:
            self.notes.add(f"a chunk is {problem}")
            return
        chunk = self.notes.mapping(value, "a chunk")
        if "error" in chunk or event.event == "error":
            self.notes.add(f"the stream reported an error: {event.data[:200]}")
            return
        usage = chunk.get("usage")
        if isinstance(usage, dict) and count(usage.get("prompt_tokens")) is not None:
            self.prompt_tokens = usage["prompt_tokens"]
        for choice in self.notes.items(chunk.get("choices", []), "chunk.choices"):
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice)

    def _choice(self, choice: Json) -> None:
        text = self.notes.string(choice.get("text"), "choice.text")
        if self.finishes and text:
            self.notes.add("text after the finish_reason")
        self.text.append(text)
        reason = choice.get("finish_reason")
        if reason is not None:
            self.finishes.append(str(reason))

    def result(self) -> tuple[Answer, list[str]]:
        if not self.done:
            self.notes.add("the stream ended without `data: [DONE]`")
        if len(self.finishes) != 1:
            self.notes.add(f"{len(self.finishes)} finish reasons (one expected)")
        reason = self.finishes[-1] if self.finishes else None
        answer = Answer(
            text="".join(self.text),
            finish=FINISH.get(reason, reason) if reason else None,
            finishes=len(self.finishes),
            prompt_tokens=self.prompt_tokens,
        )
        return answer, self.notes.problems


WIRE = Wire(
    name="completions",
    default_model="gpt-3.5-turbo-instruct",
    write=write,
    key_header=key_header,
    read_answer=read_answer,
    read_count=read_count,
    read_error=read_error,
    audit_stream=auditing(StreamAudit),
    lacks=frozenset({TOOLS, IMAGES}),
)
