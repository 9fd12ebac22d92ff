"""OpenAI Chat Completions: wire shapes to and from louter's neutral model.

Pure like the rest of `louter.convert`: dicts, bytes and str in and out, no I/O.
Sections are owned by their authors; keep each one self-contained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from louter.convert.sse import SSEEvent
from louter.errors import ConversionError

# ---------------------------------------------------------------------------------------
# Stream assembly (for the JSONL log): SSE events of a Chat Completions stream -> one dict
# ---------------------------------------------------------------------------------------
#
# Only choice 0 is assembled (what the proxy's clients ask for; `n > 1` is not streamed
# by the backends louter targets). Tool-call fragments are keyed by `index`; the first
# non-empty `id` and `name` win because some servers send a new id with every fragment.
# Any chunk carrying an `error` object (llama-server's in-stream errors, surfaced by the
# SSE decoder as `event="error"`) is recorded in `error`.


@dataclass(slots=True)
class _ToolCallParts:
    """Mutable accumulator for one streamed tool call."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        function = {"name": self.name, "arguments": "".join(self.arguments)}
        return {"id": self.id, "type": "function", "function": function}


class StreamAssembler:
    """Rebuild the complete answer of one OpenAI Chat Completions stream.

    Cheap per chunk: one `orjson.loads` and a few dict lookups. One instance per stream.
    """

    __slots__ = (
        "_id", "_model", "_content", "_reasoning", "_tools",
        "_finish_reason", "_usage", "_chunks", "_done", "_error",
    )  # fmt: skip

    def __init__(self) -> None:
        self._id: str | None = None
        self._model: str | None = None
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, _ToolCallParts] = {}
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self._chunks = 0
        self._done = False
        self._error: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        """The stream's terminator (`[DONE]`) has been seen."""
        return self._done

    def feed(self, event: SSEEvent) -> None:
        """Take one SSE event of the stream.

        Raises:
            ConversionError: (502) the event's data is not a JSON object (nor `[DONE]`).
        """
        if event.data == "[DONE]":
            self._done = True
            return
        chunk = _load_chunk(event.data)
        self._chunks += 1
        if self._id is None:
            self._id = chunk.get("id") or None
        if self._model is None:
            self._model = chunk.get("model") or None
        usage = chunk.get("usage")
        if usage is not None:
            self._usage = usage
        error = chunk.get("error")
        if error is not None or event.event == "error":
            self._error = _error_object(chunk if error is None else error)
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                self._choice(choice)

    def result(self) -> dict[str, Any]:
        """The assembled answer: see the section comment above for the keys."""
        out: dict[str, Any] = {
            "id": self._id,
            "model": self._model,
            "content": "".join(self._content),
        }
        if self._reasoning:
            out["reasoning_content"] = "".join(self._reasoning)
        out["tool_calls"] = [self._tools[index].as_dict() for index in sorted(self._tools)]
        out["finish_reason"] = self._finish_reason
        out["usage"] = self._usage
        out["chunks"] = self._chunks
        out["done"] = self._done
        out["error"] = self._error
        return out

    def _choice(self, choice: dict[str, Any]) -> None:
        finish_reason = choice.get("finish_reason")
        if finish_reason is not None:
            self._finish_reason = finish_reason
        delta = choice.get("delta")
        if not delta:
            return
        content = delta.get("content")
        if content:
            self._content.append(content)
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            self._reasoning.append(reasoning)
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            self._tool_fragments(tool_calls)

    def _tool_fragments(self, fragments: list[dict[str, Any]]) -> None:
        for position, fragment in enumerate(fragments):
            index = fragment.get("index", position)
            parts = self._tools.get(index)
            if parts is None:
                parts = self._tools[index] = _ToolCallParts()
            if not parts.id:
                parts.id = fragment.get("id") or ""
            function = fragment.get("function")
            if not function:
                continue
            if not parts.name:
                parts.name = function.get("name") or ""
            arguments = function.get("arguments")
            if arguments:
                parts.arguments.append(arguments)


def _load_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConversionError(f"stream chunk is not JSON: {exc}", status_hint=502) from exc
    if not isinstance(chunk, dict):
        raise ConversionError("stream chunk is not a JSON object", status_hint=502)
    return chunk


def _error_object(error: Any) -> dict[str, Any]:
    return error if isinstance(error, dict) else {"message": str(error)}


# ---------------------------------------------------------------------------------------
# End of stream assembly
# ---------------------------------------------------------------------------------------
