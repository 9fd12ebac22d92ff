"""Anthropic Messages whole answers <-> neutral `Response`, counts and model lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from louter.convert.anthropic.wire import (
    emit_usage,
    finish_reason,
    parse_usage,
    stop_reason,
    tool_call_json,
)
from louter.convert.model import (
    IdFactory,
    Image,
    Part,
    Reasoning,
    Response,
    ResponseMeta,
    Text,
    ToolCall,
    ToolResult,
    Usage,
    dump_arguments,
    number_calls,
)
from louter.errors import ConversionError

__all__ = ["emit_count_response", "emit_response", "model_list", "parse_response"]

EPOCH = "1970-01-01T00:00:00Z"


# --------------------------------------------------------------------------- responses


def _bad_answer(problem: str) -> ConversionError:
    return ConversionError(f"Anthropic response: {problem}", status_hint=502)


def _string(block: Mapping[str, Any], key: str, where: str) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise _bad_answer(f"{where}.{key} is missing or not a string")
    return value


def parse_response(body: Mapping[str, Any], ids: IdFactory) -> Response:
    """A Messages response body (from a backend) -> Response.

    Raises:
        ConversionError: (502) the body is not a message object or holds a block that
            cannot be converted.
    """
    if not isinstance(body, Mapping) or body.get("type", "message") != "message":
        raise _bad_answer("the body is not a message object")
    content = body.get("content")
    if not isinstance(content, list):
        raise _bad_answer("content is missing or not an array")
    parts = [_answer_part(block, f"content[{position}]") for position, block in enumerate(content)]
    usage = body.get("usage")
    answer_id, model = body.get("id"), body.get("model")
    return Response(
        id=answer_id if isinstance(answer_id, str) else "",
        model=model if isinstance(model, str) else "",
        parts=number_calls(parts, ids),
        finish_reason=finish_reason(body.get("stop_reason")),
        usage=parse_usage(usage) if isinstance(usage, Mapping) else None,
    )


def _answer_part(block: Any, where: str) -> Part:
    if not isinstance(block, Mapping):
        raise _bad_answer(f"{where} is not an object")
    kind = block.get("type")
    parse = _ANSWER_BLOCKS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise _bad_answer(f"{where}: block type {kind!r} cannot be converted")
    return parse(block, where)


def _answer_text(block: Mapping[str, Any], where: str) -> Part:
    return Text(_string(block, "text", where))


def _answer_tool_use(block: Mapping[str, Any], where: str) -> Part:
    arguments = block.get("input")
    if not isinstance(arguments, Mapping):
        raise _bad_answer(f"{where}.input is not an object")
    call_id = block.get("id")
    return ToolCall(
        call_id if isinstance(call_id, str) else "",
        _string(block, "name", where),
        dump_arguments(arguments),
    )


def _answer_thinking(block: Mapping[str, Any], where: str) -> Part:
    signature = block.get("signature")
    return Reasoning(
        _string(block, "thinking", where), signature if isinstance(signature, str) else None
    )


def _answer_redacted(block: Mapping[str, Any], where: str) -> Part:
    return Reasoning(redacted=_string(block, "data", where))


_ANSWER_BLOCKS: dict[str, Callable[[Mapping[str, Any], str], Part]] = {
    "text": _answer_text,
    "tool_use": _answer_tool_use,
    "thinking": _answer_thinking,
    "redacted_thinking": _answer_redacted,
}


def emit_response(response: Response, meta: ResponseMeta) -> dict[str, Any]:
    """Response -> a Messages response body for the client.

    Raises:
        ConversionError: (502) the finish reason is "error", or a part (an image, a
            tool result, arguments that are not a JSON object) has no Messages form.
    """
    reason = stop_reason(response.finish_reason)
    if reason is None:
        raise _bad_answer("the upstream answer ended with an error")
    content = [block for part in response.parts if (block := _answer_block(part)) is not None]
    usage = response.usage
    return {
        "id": meta.id,
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": emit_usage(usage)
        if usage is not None
        else {"input_tokens": meta.input_tokens, "output_tokens": 0},
    }


def _answer_block(part: Part) -> dict[str, Any] | None:
    emit = _ANSWER_EMITTERS.get(type(part))
    if emit is None:
        raise _bad_answer(f"a {type(part).__name__} part has no Messages response form")
    return emit(part)


def _text_block(part: Any) -> dict[str, Any] | None:
    return {"type": "text", "text": part.text} if part.text else None


def _thinking_block(part: Any) -> dict[str, Any] | None:
    if part.redacted is not None:
        return {"type": "redacted_thinking", "data": part.redacted}
    if not part.text and not part.signature:
        return None
    return {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}


_ANSWER_EMITTERS: dict[type, Callable[[Any], dict[str, Any] | None]] = {
    Text: _text_block,
    ToolCall: tool_call_json,
    Reasoning: _thinking_block,
}


assert Image not in _ANSWER_EMITTERS and ToolResult not in _ANSWER_EMITTERS


def emit_count_response(input_tokens: int) -> dict[str, Any]:
    """The `/v1/messages/count_tokens` answer."""
    return {"input_tokens": input_tokens}


def model_list(names: Iterable[str], created_at: str = EPOCH) -> dict[str, Any]:
    """The `GET /v1/models` answer listing `names` in order."""
    data = [
        {"type": "model", "id": name, "display_name": name, "created_at": created_at}
        for name in names
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


# --------------------------------------------------------------------------- usage, counts


def usage_of(data: Mapping[str, Any]) -> Usage | None:
    usage = data.get("usage")
    return parse_usage(usage) if isinstance(usage, dict) else None


def read_count(data: Mapping[str, Any]) -> int:
    """A count_tokens answer's `input_tokens` (0 when absent or not a count)."""
    total = data.get("input_tokens")
    return total if type(total) is int else 0
