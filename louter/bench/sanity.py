"""Is an answer the one the mock upstream gives? Checked once per target and body before
anything is measured, so a broken route shows as a clear error rather than as fast 502s.

`problem(kind, status, body)` is pure: it returns what is wrong, or None.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from louter.bench import bodies
from louter.bench.model import Json


def _message(body: bytes) -> Json:
    data = orjson.loads(body)
    message = data["choices"][0]["message"]
    if not isinstance(message, dict):
        raise TypeError("message is not an object")
    return message


def _chat(body: bytes) -> str | None:
    content = _message(body).get("content")
    return None if content == bodies.TEXT else f"content {content!r}"


def _tools(body: bytes) -> str | None:
    calls = _message(body).get("tool_calls") or []
    if len(calls) != 1:
        return f"{len(calls)} tool calls"
    function = calls[0]["function"]
    arguments = orjson.loads(function["arguments"])
    if function["name"] != bodies.TOOL_NAME or arguments != orjson.loads(bodies.TOOL_ARGUMENTS):
        return f"tool call {function['name']}({function['arguments']})"
    return None


def _stream(body: bytes) -> str | None:
    events = [line[5:].strip() for line in body.splitlines() if line.startswith(b"data:")]
    if not events or events[-1] != b"[DONE]":
        return "the stream does not end with data: [DONE]"
    text = ""
    for event in events[:-1]:
        for choice in orjson.loads(event).get("choices") or []:
            text += choice.get("delta", {}).get("content") or ""
    expected = "".join(bodies.stream_pieces())
    return None if text == expected else f"streamed text {text[:80]!r}..."


CHECKS: dict[str, Callable[[bytes], str | None]] = {
    "small": _chat,
    "big": _tools,
    "tools": _tools,
    "stream": _stream,
}


def problem(kind: str, status: int, body: bytes) -> str | None:
    """What is wrong with answer `body` (HTTP `status`) to a `kind` request, or None."""
    if status != 200:
        return f"status {status}: {body[:300]!r}"
    try:
        return CHECKS[kind](body)
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        return f"unexpected answer ({exc.__class__.__name__}: {exc}): {body[:300]!r}"
