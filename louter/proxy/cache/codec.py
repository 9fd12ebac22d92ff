"""A cached answer as bytes: louter's neutral `Response` (every part kind, signatures,
usage) and when it was stored. Pure; a value that does not decode is a miss, never an
error (another version of louter, or a corrupted entry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from louter.convert.model import Image, Part, Reasoning, Response, Text, ToolCall, Usage

FORMAT = 1  # bumped when the encoding changes (it is also part of every key)


def encode(answer: Response, stored_at: float) -> bytes:
    usage = answer.usage
    return orjson.dumps(
        {
            "v": FORMAT,
            "at": stored_at,
            "id": answer.id,
            "model": answer.model,
            "finish": answer.finish_reason,
            "usage": None
            if usage is None
            else [
                usage.input_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
                usage.cached_tokens,
            ],  # fmt: skip
            "parts": [_part(part) for part in answer.parts],
        }
    )


def _part(part: Part) -> list[Any]:
    if isinstance(part, Text):
        return ["t", part.text, part.signature]
    if isinstance(part, Reasoning):
        return ["r", part.text, part.signature, part.redacted]
    if isinstance(part, ToolCall):
        return ["c", part.id, part.name, part.arguments, part.signature]
    if isinstance(part, Image):
        return ["i", part.media_type, part.data, part.url]
    raise TypeError(f"an answer cannot hold {type(part).__name__}")


_PARTS: dict[str, Callable[[list[Any]], Part]] = {
    "t": lambda v: Text(v[1], v[2]),
    "r": lambda v: Reasoning(v[1], v[2], v[3]),
    "c": lambda v: ToolCall(v[1], v[2], v[3], v[4]),
    "i": lambda v: Image(v[1], v[2], v[3]),
}


def decode(raw: bytes) -> tuple[Response, float] | None:
    """(the answer, when it was stored), or None for a value that is not one."""
    try:
        data = orjson.loads(raw)
        if data["v"] != FORMAT:
            return None
        usage = data["usage"]
        answer = Response(
            id=data["id"],
            model=data["model"],
            parts=tuple(_PARTS[p[0]](p) for p in data["parts"]),
            finish_reason=data["finish"],
            usage=None if usage is None else Usage(*usage),
        )
        return answer, float(data["at"])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
        return None
