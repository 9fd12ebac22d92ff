"""Token estimates for `countTokens` / `count_tokens` when no backend counts for us.

A documented approximation, not a tokenizer: one token per 4 characters of text (rounded
up per text), tool declarations counted as their JSON text, 258 tokens per image (what
Gemini charges for an image up to 384 px), and 3 tokens of framing per message.
"""

from __future__ import annotations

import orjson

from louter.convert.model import Image, Part, Reasoning, Request, Text, ToolCall

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 258
MESSAGE_TOKENS = 3


def estimate_text(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_tokens(request: Request) -> int:
    """The estimated input tokens of `request` (messages and tools)."""
    total = sum(MESSAGE_TOKENS + _parts(m.parts) for m in request.messages)
    for tool in request.tools:
        declaration = {"name": tool.name, "description": tool.description,
                       "parameters": tool.parameters}  # fmt: skip
        total += estimate_text(orjson.dumps(declaration).decode())
    return total


def _parts(parts: tuple[Part, ...]) -> int:
    return sum(_part(part) for part in parts)


def _part(part: Part) -> int:
    if isinstance(part, Text | Reasoning):
        return estimate_text(part.text)
    if isinstance(part, Image):
        return IMAGE_TOKENS
    if isinstance(part, ToolCall):
        return estimate_text(part.name) + estimate_text(part.arguments)
    return estimate_text(part.name) + _parts(part.content)  # a ToolResult
