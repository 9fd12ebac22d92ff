"""The probes in Gemini generateContent: requests written, answers and streams checked.

https://ai.google.dev/api/generate-content. Paths `/v1beta/models/{model}:generateContent`,
`:streamGenerateContent?alt=sse` and `:countTokens`; the key goes in `x-goog-api-key`.
A stream is SSE `data:` events each holding one GenerateContentResponse with non-empty
`candidates` (gemini-cli retries on anything else); exactly one chunk carries a
`finishReason` and nothing but usage follows it; there is no `[DONE]`: the stream ends
when the finishing chunk has been sent. Function calls come whole (`functionCall` with
an `args` object) and the finish reason stays `STOP`. Errors are
`{"error": {"code", "message", "status"}}` with `code` equal to the HTTP status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from louter.convert.probe.fields import Notes, count, load_json, read_token_count
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

HEADERS = {"content-type": "application/json"}


def key_header(key: str) -> tuple[str, str]:
    return "x-goog-api-key", key


# --------------------------------------------------------------------------- requests


def _content(turn: Turn) -> Json:
    if isinstance(turn, User):
        parts: list[Json] = [{"text": turn.text}]
        if turn.image_png is not None:
            image = {"mimeType": "image/png", "data": base64_text(turn.image_png)}
            parts.append({"inlineData": image})
        return {"role": "user", "parts": parts}
    if isinstance(turn, ToolCalled):
        call = {"name": turn.name, "args": dict(turn.arguments)}
        return {"role": "model", "parts": [{"functionCall": call}]}
    if isinstance(turn, ToolResult):
        result = {"name": turn.name, "response": dict(turn.content)}
        return {"role": "user", "parts": [{"functionResponse": result}]}
    return {"role": "model", "parts": [{"text": turn.text}]}


def write(ask: Ask, model: str) -> Call:
    base = f"/v1beta/models/{model}"
    contents = [_content(turn) for turn in ask.turns]
    if ask.kind == COUNT:
        return Call("POST", base + ":countTokens", {"contents": contents}, HEADERS)
    settings = {"temperature": ask.temperature, "maxOutputTokens": ask.max_tokens}
    body: Json = {"contents": contents, "generationConfig": settings}
    if ask.kind == INVALID:  # no `contents`: every server must refuse it
        body = {"generationConfig": settings}
    if ask.tools:
        declarations = [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in ask.tools
        ]
        body["tools"] = [{"functionDeclarations": declarations}]
    if ask.stream:
        return Call("POST", base + ":streamGenerateContent?alt=sse", body, HEADERS, True)
    return Call("POST", base + ":generateContent", body, HEADERS)


# --------------------------------------------------------------------------- answers


def _finish(reason: str | None, calls: Sequence[SeenCall]) -> str | None:
    if reason == "STOP":
        return TOOL_CALLS if calls else STOP
    return LENGTH if reason == "MAX_TOKENS" else reason


def _parts(candidate: Json, notes: Notes) -> tuple[list[str], list[SeenCall]]:
    """The text (thoughts left out) and the function calls of one candidate."""
    content = notes.mapping(candidate.get("content", {}), "candidate.content")
    texts: list[str] = []
    calls: list[SeenCall] = []
    for part in notes.items(content.get("parts", []), "content.parts"):
        part = notes.mapping(part, "a part")
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        call = part.get("functionCall")
        if call is not None:
            call = notes.mapping(call, "functionCall")
            calls.append(
                SeenCall(
                    str(call.get("id") or ""),
                    notes.string(call.get("name"), "functionCall.name"),
                    notes.arguments(call.get("args", {}), "functionCall.args"),
                )
            )
    return texts, calls


def _candidate(data: Json, notes: Notes) -> Json:
    candidates = notes.items(data.get("candidates"), "candidates")
    if not candidates:
        notes.add("the answer has no candidates")
        return {}
    return notes.mapping(candidates[0], "candidates[0]")


def read_answer(body: Any) -> tuple[Answer, list[str]]:
    notes = Notes()
    data = notes.mapping(body, "the answer")
    candidate = _candidate(data, notes)
    texts, calls = _parts(candidate, notes)
    reason = candidate.get("finishReason")
    reason = reason if isinstance(reason, str) else None
    usage = notes.mapping(data.get("usageMetadata", {}), "usageMetadata")
    answer = Answer(
        text="".join(texts),
        calls=tuple(calls),
        finish=_finish(reason, calls),
        finishes=int(reason is not None),
        prompt_tokens=count(usage.get("promptTokenCount")),
    )
    return answer, notes.problems


def read_count(body: Any) -> tuple[Answer, list[str]]:
    return read_token_count(body, "totalTokens")


def read_error(status: int, body: Any) -> tuple[Answer, list[str]]:
    notes = Notes()
    error = notes.mapping(notes.mapping(body, "the error body").get("error"), "error")
    message = notes.string(error.get("message"), "error.message")
    notes.string(error.get("status"), "error.status")
    if error.get("code") != status:
        notes.add(f"error.code is {error.get('code')!r}, not the HTTP status {status}")
    if not message:
        notes.add("the error has no message")
    return Answer(error=message), notes.problems


# --------------------------------------------------------------------------- streams


class StreamAudit:
    """Walks a Gemini SSE stream, assembling it and noting every departure from the
    grammar. One instance per stream."""

    def __init__(self) -> None:
        self.notes = Notes()
        self.text: list[str] = []
        self.calls: list[SeenCall] = []
        self.finishes: list[str] = []
        self.prompt_tokens: int | None = None

    def feed(self, event: SSEEvent) -> None:
        value, problem = load_json(event.data)
        if problem is not None:
            self.notes.add(f"a chunk is {problem}")
            return
        chunk = self.notes.mapping(value, "a chunk")
        if "error" in chunk:
            self.notes.add(f"the stream reported an error: {event.data[:200]}")
            return
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict) and count(usage.get("promptTokenCount")) is not None:
            self.prompt_tokens = usage["promptTokenCount"]
        if not chunk.get("candidates"):
            if not self.finishes or usage is None:
                self.notes.add("a chunk without candidates")
            return
        self._candidate(_candidate(chunk, self.notes))

    def _candidate(self, candidate: Json) -> None:
        texts, calls = _parts(candidate, self.notes)
        if self.finishes and (any(texts) or calls):
            self.notes.add("content after the finishReason")
        self.text += texts
        self.calls += calls
        reason = candidate.get("finishReason")
        if reason is not None:
            self.finishes.append(str(reason))

    def result(self) -> tuple[Answer, list[str]]:
        if len(self.finishes) != 1:
            self.notes.add(f"{len(self.finishes)} finishReasons (one expected, on the last chunk)")
        text = "".join(self.text)
        if not text and not self.calls:
            self.notes.add("the stream carried neither text nor a functionCall")
        reason = self.finishes[-1] if self.finishes else None
        answer = Answer(
            text=text,
            calls=tuple(self.calls),
            finish=_finish(reason, self.calls),
            finishes=len(self.finishes),
            prompt_tokens=self.prompt_tokens,
        )
        return answer, self.notes.problems


WIRE = Wire(
    name="gemini",
    default_model="gemini-2.5-flash",
    write=write,
    key_header=key_header,
    read_answer=read_answer,
    read_count=read_count,
    read_error=read_error,
    audit_stream=auditing(StreamAudit),
)
