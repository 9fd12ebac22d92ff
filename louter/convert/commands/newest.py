"""The newest user message: the only place commands are read (agents resend the whole
history every turn; a command in an older message must not run again).

The newest message is the last one that is not a system (or developer) message: Claude
Code puts a `role: "system"` message after the user's turn. When it is not the user's
(an assistant turn, a tool result in its own message), there is nothing to read.

`user_texts(dialect, body)` reads the client's wire body without parsing it into the
neutral model (the cheap check made on every request); `strip(request, ...)` removes the
commands from the same message of the parsed neutral request. Dialects without an entry
in `READERS` (the legacy Completions prompt) carry no commands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

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


def _typed_texts(content: Any, kinds: tuple[str, ...]) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    found = [p for p in content if isinstance(p, dict) and p.get("type") in kinds]
    return [p["text"] for p in found if isinstance(p.get("text"), str)]


def _chat(body: Mapping[str, Any]) -> list[str]:
    """OpenAI Chat Completions and Anthropic Messages: `messages[-1]` with role user."""
    last = _last(body.get("messages"), lambda m: m.get("role"))
    if last is None or last.get("role") != "user":
        return []
    return _typed_texts(last.get("content"), ("text",))


def _gemini(body: Mapping[str, Any]) -> list[str]:
    last = _last(body.get("contents"), lambda c: c.get("role"))
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
    last = _last(items, lambda item: item.get("role"))
    if last is None or last.get("role") != "user" or last.get("type", "message") != "message":
        return []
    return _typed_texts(last.get("content"), ("input_text", "text"))


READERS: Mapping[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "openai": _chat,
    "anthropic": _chat,
    "gemini": _gemini,
    "responses": _responses,
}


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
