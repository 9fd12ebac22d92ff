"""Chat Completions whole answers <-> neutral `Response`: finish reasons, usage, legacy
`function_call` answers (see the package docstring for the decisions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from louter.convert.model import (
    IdFactory,
    Part,
    Reasoning,
    Response,
    ResponseMeta,
    Text,
    ToolCall,
    Usage,
)
from louter.convert.openai.request import read_function
from louter.convert.openai.wire import (
    FINISH_IN,
    FINISH_OUT,
    LEGACY_FINISH,
    message_of,
    tool_call_json,
)
from louter.errors import ConversionError

# --------------------------------------------------------------------------- responses


def parse_response(body: Mapping[str, Any], ids: IdFactory) -> Response:
    """A chat.completion body from a backend -> `Response`. ConversionError (502)."""
    if isinstance(body.get("error"), (dict, str)):
        raise ConversionError(f"backend error: {message_of(body['error'])}", status_hint=502)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ConversionError("backend answer has no choices", status_hint=502)
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ConversionError("backend answer has no message", status_hint=502)
    parts = _answer_parts(message, ids)
    has_calls = any(isinstance(part, ToolCall) for part in parts)
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        parts=parts,
        finish_reason=map_finish(choices[0].get("finish_reason"), has_calls),
        usage=parse_usage(body.get("usage")),
    )


def _answer_parts(message: dict[str, Any], ids: IdFactory) -> tuple[Part, ...]:
    """Reasoning, then the text (or the refusal), then the tool calls; a legacy
    `function_call` is one more call. Calls without an id get one from `ids`."""
    parts: list[Part] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append(Reasoning(text=reasoning))
    text = _answer_text(message.get("content")) or _answer_text(message.get("refusal"))
    if text:
        parts.append(Text(text))
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ConversionError("backend answer's tool_calls is not a list", status_hint=502)
    legacy = message.get("function_call")
    if legacy is not None:
        calls = [*calls, {"function": legacy}]
    for position, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise ConversionError("backend tool call has no function", status_hint=502)
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = ids(position)
        try:
            parts.append(read_function(function, call_id, "backend tool call"))
        except ConversionError as exc:
            raise ConversionError(exc.message, status_hint=502) from None
    return tuple(parts)


def _answer_text(content: Any) -> str:
    """`content` as a string, or a list of text parts (some servers answer that way)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def map_finish(reason: Any, has_calls: bool) -> str:
    """An OpenAI finish_reason -> the neutral one; unknown or missing is an error."""
    mapped = FINISH_IN.get(reason, "error") if isinstance(reason, str) else "error"
    return "tool_calls" if has_calls and mapped == "stop" else mapped


def parse_usage(usage: Any) -> Usage | None:
    """An OpenAI `usage` object -> `Usage` (None when absent); bad counts read as 0/None."""
    if not isinstance(usage, dict):
        return None
    return Usage(
        input_tokens=_count(usage.get("prompt_tokens")) or 0,
        output_tokens=_count(usage.get("completion_tokens")) or 0,
        reasoning_tokens=_detail(usage, "completion_tokens_details", "reasoning_tokens"),
        cached_tokens=_detail(usage, "prompt_tokens_details", "cached_tokens"),
    )


def _detail(usage: dict[str, Any], group: str, key: str) -> int | None:
    details = usage.get(group)
    return _count(details.get(key)) if isinstance(details, dict) else None


def _count(value: Any) -> int | None:
    """A token count: a non-negative int (a whole float is tolerated), else None."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def emit_usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if usage.cached_tokens is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return out


def emit_response(response: Response, meta: ResponseMeta) -> dict[str, Any]:
    """`Response` -> a chat.completion body. A backend error never becomes a stop:
    ConversionError (502) so the client gets an error."""
    finish = FINISH_OUT.get(response.finish_reason)
    if finish is None:
        raise ConversionError("the backend ended its answer with an error", status_hint=502)
    calls = response.tool_calls()
    text = response.text()
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    reasoning = "".join(p.text for p in response.parts if isinstance(p, Reasoning))
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls and meta.legacy_functions:
        message["function_call"] = tool_call_json(calls[0])["function"]
        finish = LEGACY_FINISH.get(finish, finish)
    elif calls:
        message["tool_calls"] = [tool_call_json(call) for call in calls]
    body: dict[str, Any] = {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }
    usage = emit_usage(response.usage)
    if usage is not None:
        body["usage"] = usage
    return body


def legacy_dropped(response: Response) -> list[str]:
    """Notes for the log on what a `legacy_functions` answer left out: every tool call but
    the first (`message.function_call` holds one)."""
    dropped = [f"{call.name} ({call.id})" for call in response.tool_calls()[1:]]
    if not dropped:
        return []
    return [
        "the client sent legacy 'functions' and reads one 'function_call': "
        f"dropped the backend's other tool calls: {', '.join(dropped)}"
    ]


def usage_of(data: Mapping[str, Any]) -> Usage | None:
    """A whole answer's usage (None when it reports none)."""
    return parse_usage(data.get("usage"))
