"""Gemini answers: generateContent bodies <-> Response, countTokens, model lists, usage.

Only `candidates[0]` is read (louter's clients never ask for more than one candidate).

Finish reasons map through two dicts, never through the text of a reason:
    STOP                                  "stop" ("tool_calls" when the answer has calls)
    MAX_TOKENS                            "length"
    SAFETY RECITATION BLOCKLIST PROHIBITED_CONTENT SPII IMAGE_SAFETY ...
                                          "content_filter"
    MALFORMED_FUNCTION_CALL OTHER LANGUAGE UNEXPECTED_TOOL_CALL ... and anything unknown
                                          "error"
    absent, in a complete (non-stream) body   "stop" / "tool_calls"
    no candidates but promptFeedback.blockReason   "content_filter"
and back: stop and tool_calls -> STOP (Gemini ends a call turn with STOP), length ->
MAX_TOKENS, content_filter -> SAFETY, error -> OTHER: never STOP, so a client cannot take a
failed answer for a complete one (MALFORMED_FUNCTION_CALL would claim a cause we do not
know).

Usage: Gemini counts thoughts apart from the answer, the neutral model (like OpenAI's
completion_tokens) counts them in: output = candidatesTokenCount + thoughtsTokenCount,
reasoning = thoughtsTokenCount, input = promptTokenCount + toolUsePromptTokenCount,
cached = cachedContentTokenCount. Out, candidatesTokenCount = output - reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from louter.convert.gemini.fields import fail, get, integer, join, mapping, sequence, text
from louter.convert.gemini.parts import read_part, write_part
from louter.convert.gemini.wire import message_in
from louter.convert.model import (
    IdFactory,
    Part,
    Response,
    ResponseMeta,
    ToolCall,
    ToolResult,
    Usage,
)
from louter.errors import ConversionError

Wire = dict[str, Any]
_FILTERED = (
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
)  # fmt: skip


FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(_FILTERED, "content_filter"),
}  # every other reason (MALFORMED_FUNCTION_CALL, OTHER, ...) is "error"


WIRE_FINISH: dict[str, str] = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
}


# --------------------------------------------------------------------------- reading


def parse_response(body: Mapping[str, Any], ids: IdFactory) -> Response:
    """A generateContent answer -> Response; calls without an `id` get `ids(n)`.

    Raises:
        ConversionError: (502) the body is not an answer: not an object, an `error`
            envelope, or no candidates without a block reason.
    """
    obj = mapping(body, "upstream answer", 502)
    error = get(obj, "error")
    if error is not None:
        raise ConversionError(f"upstream error: {message_in(obj)}", status_hint=502)
    usage = read_usage(get(obj, "usageMetadata"))
    answer_id = text(obj, "responseId", "", 502) or ""
    model = text(obj, "modelVersion", "", 502) or ""
    candidates = sequence(get(obj, "candidates"), "candidates", 502)
    if not candidates:
        if blocked(obj):
            return Response(answer_id, model, (), "content_filter", usage)
        raise fail("candidates", "missing, and no promptFeedback.blockReason", 502)
    candidate = mapping(candidates[0], "candidates[0]", 502)
    parts = candidate_parts(candidate, "candidates[0]", ids, 0)
    has_calls = any(isinstance(part, ToolCall) for part in parts)
    reason = text(candidate, "finishReason", "candidates[0]", 502)
    finish = finish_reason(reason or "STOP", has_calls)
    return Response(answer_id, model, tuple(parts), finish, usage)


def candidate_parts(
    candidate: Mapping[str, Any], path: str, ids: IdFactory, calls: int
) -> list[Part]:
    """The neutral parts of one candidate; `calls` is how many calls came before (streams)."""
    content = mapping(get(candidate, "content"), join(path, "content"), 502)
    where = join(path, "content.parts")
    parts: list[Part] = []
    for index, wire in enumerate(sequence(get(content, "parts"), where, 502)):
        part = read_part(wire, f"{where}[{index}]", 502)
        if isinstance(part, ToolResult):
            raise fail(f"{where}[{index}]", "a functionResponse in a model answer", 502)
        if isinstance(part, ToolCall):
            part = part if part.id else replace(part, id=ids(calls))
            calls += 1
        parts.append(part)
    return parts


def finish_reason(wire: str, has_calls: bool) -> str:
    reason = FINISH_REASONS.get(wire, "error")
    return "tool_calls" if reason == "stop" and has_calls else reason


def blocked(obj: Mapping[str, Any]) -> bool:
    """The prompt was blocked (`promptFeedback.blockReason`)."""
    feedback = mapping(get(obj, "promptFeedback"), "promptFeedback", 502)
    return get(feedback, "blockReason") is not None


def read_usage(value: Any) -> Usage | None:
    if value is None:
        return None
    meta = mapping(value, "usageMetadata", 502)

    def count(name: str) -> int | None:
        return integer(meta, name, "usageMetadata", 502)

    thoughts = count("thoughtsTokenCount")
    return Usage(
        input_tokens=(count("promptTokenCount") or 0) + (count("toolUsePromptTokenCount") or 0),
        output_tokens=(count("candidatesTokenCount") or 0) + (thoughts or 0),
        reasoning_tokens=thoughts,
        cached_tokens=count("cachedContentTokenCount"),
    )


# --------------------------------------------------------------------------- writing


def emit_response(response: Response, meta: ResponseMeta) -> dict[str, Any]:
    """Response -> a generateContent answer; never with empty `parts`.

    Raises:
        ConversionError: (502) a tool call's arguments are not a JSON object.
    """
    candidate = {
        "content": {"role": "model", "parts": answer_parts(response.parts) or [{"text": ""}]},
        "finishReason": wire_finish(response.finish_reason),
        "index": 0,
    }
    return {
        "candidates": [candidate],
        "usageMetadata": write_usage(response.usage or Usage(meta.input_tokens)),
        "modelVersion": meta.model,
        "responseId": meta.id,
    }


def answer_parts(parts: Sequence[Part]) -> list[Wire]:
    out: list[Wire] = []
    for part in parts:
        if isinstance(part, ToolResult):
            raise ConversionError("a model answer cannot hold a tool result", status_hint=502)
        wire = write_part(part)
        if wire is not None:
            out.append(wire)
    return out


def wire_finish(reason: str) -> str:
    return WIRE_FINISH.get(reason, "OTHER")


def write_usage(usage: Usage) -> Wire:
    reasoning = usage.reasoning_tokens or 0
    out: Wire = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - reasoning, 0),
        "totalTokenCount": usage.total_tokens,
    }
    if usage.reasoning_tokens is not None:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens is not None:
        out["cachedContentTokenCount"] = usage.cached_tokens
    return out


def emit_count_response(total_tokens: int) -> dict[str, Any]:
    """The answer of `:countTokens`."""
    return {"totalTokens": total_tokens}


# --------------------------------------------------------------------------- models

_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def model_entry(name: str) -> dict[str, Any]:
    """One model as `GET /v1beta/models` lists it (also the answer of `GET .../models/m`).
    The limits are Gemini's usual ones: louter does not know the backend's."""
    model_id = name.removeprefix("models/")
    return {
        "name": f"models/{model_id}",
        "baseModelId": model_id,
        "version": "001",
        "displayName": model_id,
        "description": f"{model_id} (served by louter)",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": list(_METHODS),
    }


def model_list(names: Sequence[str]) -> dict[str, Any]:
    """The answer of `GET /v1beta/models`."""
    return {"models": [model_entry(name) for name in names]}


# --------------------------------------------------------------------------- usage, counts


def usage_of(data: Mapping[str, Any]) -> Usage | None:
    return read_usage(data.get("usageMetadata"))


def read_count(data: Mapping[str, Any]) -> int:
    """A countTokens answer's `totalTokens` (0 when absent or not a count)."""
    total = data.get("totalTokens")
    return total if type(total) is int else 0
