"""The newest user message: the only place commands are read (agents resend the whole
history every turn; a command in an older message must not run again).

The newest message is the last one that is not a system (or developer) message: Claude
Code puts a `role: "system"` message after the user's turn. When it is not the user's
(an assistant turn, a tool result in its own message), there is nothing to read.

`user_texts(dialect, body)` reads the client's wire body without parsing it into the
neutral model (the cheap check made on every request); `strip(request, ...)` removes the
commands from the same message of the parsed neutral request.

The legacy Completions prompt is one user message, or a conversation when it is written
as louter's transcript (`User: ...` turns ending with `Assistant:`): then its last turn
is the newest message. `edit_body(dialect, body, ...)` makes the same change in a
Completions body itself, so a Completions backend still gets the prompt as written, minus
the commands (not rewritten as a transcript); it gives None when it cannot (a transcript
prompt whose commands are removed: the neutral request is sent instead).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from louter.convert.completions.transcript import LABELS, read_prompt
from louter.convert.model import Message, Request, Text

_SYSTEM = frozenset({"system", "developer"})


def _last(items: Any, role_of: Callable[[Any], Any]) -> Any:
    """The last item whose role is not a system one (None: none, or not a list)."""
    if not isinstance(items, list):
        return None
    for item in reversed(items):
        if isinstance(item, dict) and role_of(item) not in _SYSTEM:
            return item
    return None


def _role(item: dict[str, Any]) -> Any:
    return item.get("role")


def _typed_texts(content: Any, kinds: tuple[str, ...]) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    found = [p for p in content if isinstance(p, dict) and p.get("type") in kinds]
    return [p["text"] for p in found if isinstance(p.get("text"), str)]


def _chat(body: Mapping[str, Any]) -> list[str]:
    """OpenAI Chat Completions and Anthropic Messages: `messages[-1]` with role user."""
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        last = messages[-1]  # the common case, without the walk (read on every request)
        role = last.get("role")
        if role == "user":
            content = last.get("content")
            return [content] if isinstance(content, str) else _typed_texts(content, ("text",))
        if role not in _SYSTEM:
            return []
    last = _last(messages, _role)
    if last is None or last.get("role") != "user":
        return []
    return _typed_texts(last.get("content"), ("text",))


def _gemini(body: Mapping[str, Any]) -> list[str]:
    last = _last(body.get("contents"), _role)
    if last is None or last.get("role", "user") != "user":
        return []
    parts = last.get("parts")
    if not isinstance(parts, list):
        return []
    return [
        p["text"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    ]


def _responses(body: Mapping[str, Any]) -> list[str]:
    items = body.get("input")
    if isinstance(items, str):
        return [items]
    last = _last(items, _role)
    if last is None or last.get("role") != "user" or last.get("type", "message") != "message":
        return []
    return _typed_texts(last.get("content"), ("input_text", "text"))


def _prompt(body: Mapping[str, Any]) -> str | None:
    """A Completions body's prompt: a string, or a list holding one string."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    return prompt if isinstance(prompt, str) else None


_OPENINGS = tuple(f"{label}: " for label in LABELS.values())  # how a transcript starts


def _completions(body: Mapping[str, Any]) -> list[str]:
    """The whole prompt, or the last turn of a transcript prompt when it is the user's."""
    prompt = _prompt(body)
    if prompt is None:
        return []
    messages = read_prompt(prompt) if prompt.startswith(_OPENINGS) else None
    if messages is None:
        return [prompt]
    last = messages[-1]
    return [p.text for p in last.parts if isinstance(p, Text)] if last.role == "user" else []


READERS: Mapping[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "openai": _chat,
    "anthropic": _chat,
    "gemini": _gemini,
    "responses": _responses,
    "completions": _completions,
}

Clean = Callable[[str], str]
BodyEdit = Callable[[Mapping[str, Any], Clean | None, Mapping[str, Any]], dict[str, Any] | None]


_COMPLETIONS_FIELDS = frozenset({"temperature", "top_p", "max_tokens"})  # wire = neutral


def _edit_completions(
    body: Mapping[str, Any], clean: Clean | None, fields: Mapping[str, Any]
) -> dict[str, Any] | None:
    """A Completions body with `clean` applied to its prompt and `fields` set; None for a
    transcript prompt to clean, or a field the body has no key of that name for."""
    if not _COMPLETIONS_FIELDS.issuperset(fields):
        return None
    edited = {**body, **fields}
    if clean is None:
        return edited
    prompt = _prompt(body)
    if prompt is None or (prompt.startswith(_OPENINGS) and read_prompt(prompt) is not None):
        return None
    edited["prompt"] = clean(prompt)
    return edited


EDITS: Mapping[str, BodyEdit] = {"completions": _edit_completions}


def edit_body(
    dialect: str,
    body: Mapping[str, Any],
    clean: Clean | None = None,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """`body` with the newest user message cleaned and `fields` set, in the client's own
    dialect, where that dialect's bodies can be edited so (else None: send the neutral
    request)."""
    edit = EDITS.get(dialect)
    return edit(body, clean, fields or {}) if edit is not None else None


def user_texts(dialect: str, body: Mapping[str, Any]) -> list[str]:
    """The text parts of the newest message when it is the user's ([] otherwise)."""
    reader = READERS.get(dialect)
    return reader(body) if reader is not None else []


def strip(request: Request, clean: Callable[[str], str]) -> Request:
    """`request` with `clean` applied to every text part of its newest user message
    (parts left empty are dropped)."""
    messages = list(request.messages)
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "system":
            continue
        if message.role != "user":
            return request
        parts = []
        for part in message.parts:
            if isinstance(part, Text):
                cleaned = clean(part.text)
                if not cleaned:
                    continue
                part = dataclasses.replace(part, text=cleaned)
            parts.append(part)
        messages[index] = Message(message.role, tuple(parts))
        return dataclasses.replace(request, messages=tuple(messages))
    return request
