"""The OpenAI Chat Completions dialect of the mock backend.

`parse_prompt` turns a request body (already JSON-decoded) into a `MockPrompt`;
`render_response` and `render_stream` turn a `MockAnswer` into a `chat.completion`
object or the SSE bytes of a `chat.completion.chunk` stream, in OpenAI's own order.
Pure: ids and timestamps are arguments. Messages are dispatched on `role`, never on
shape; `content` may be a string, a list of parts, or null. Legacy
`functions`/`function_call` requests are read as tools, and answered as OpenAI answers a
client that declared `functions` (no `tools`): `message.function_call` (streamed:
`delta.function_call`) and finish reason "function_call" (`legacy=True`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from louter.errors import ConversionError
from louter.mock.engine import (
    MockAnswer,
    MockPrompt,
    MockTool,
    count_words,
    split_chars,
    split_text,
)

# role on the wire -> the mock's view of it
_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",  # legacy function result
}
# tool_choice / function_call string -> (forced tool, tools disabled)
_CHOICE_MODES: dict[str, tuple[str | None, bool]] = {
    "auto": (None, False),
    "required": (None, False),
    "none": (None, True),
}
_DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class _Turn:
    role: str  # a value of _ROLES
    texts: tuple[str, ...]
    images: int

    @property
    def text(self) -> str:
        return " ".join(self.texts)


def parse_prompt(body: Mapping[str, Any]) -> MockPrompt:
    """Read an OpenAI chat request as a `MockPrompt`.

    Raises:
        ConversionError: (400) `messages` missing, empty or not a list; a message, part,
            tool or `tool_choice` of the wrong shape; an unknown role.
    """
    if not isinstance(body, Mapping):
        raise ConversionError("request body must be a JSON object")
    turns = [_turn(message, index) for index, message in enumerate(_messages(body))]
    forced_tool, tools_disabled = _tool_choice(body)
    return MockPrompt(
        last_role=turns[-1].role,
        user_text=next((t.text for t in reversed(turns) if t.role == "user"), ""),
        tool_results=_trailing_tool_results(turns),
        image_count=sum(t.images for t in turns),
        prompt_tokens=sum(count_words(text) for t in turns for text in t.texts),
        tools=_tools(body),
        forced_tool=forced_tool,
        tools_disabled=tools_disabled,
        max_tokens=_max_tokens(body),
        **_response_format(body),
    )


def render_response(
    answer: MockAnswer, *, model: str, response_id: str, created: int, legacy: bool = False
) -> dict[str, Any]:
    """A complete `chat.completion` object for `answer` (`legacy`: the `functions` form)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if answer.tool_calls and not answer.text else answer.text,
    }
    if answer.tool_calls and legacy:
        first = answer.tool_calls[0]  # the mock makes one call
        message["function_call"] = {"name": first.name, "arguments": first.arguments}
    elif answer.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.tool_calls
        ]
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": _finish(answer, legacy),
        "logprobs": None,
    }
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": _usage(answer),
    }


def render_stream(
    answer: MockAnswer,
    *,
    model: str,
    response_id: str,
    created: int,
    include_usage: bool,
    legacy: bool = False,
) -> list[bytes]:
    """The SSE events of a streamed `answer`, ending with `data: [DONE]`.

    Order: role chunk, content chunks (or a tool-call start and its argument fragments),
    a finish chunk with an empty delta, the usage chunk (`choices: []`) when
    `include_usage`, then `[DONE]`. The deltas reassemble to `render_response`'s message.
    """
    head = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
    }
    calls = _function_deltas(answer) if legacy else _tool_deltas(answer)
    deltas = [{"role": "assistant", "content": ""}, *_text_deltas(answer), *calls]
    chunks = [_choice_chunk(head, delta, None) for delta in deltas]
    chunks.append(_choice_chunk(head, {}, _finish(answer, legacy)))
    if include_usage:
        chunks.append({**head, "choices": [], "usage": _usage(answer)})
    return [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks] + [_DONE]


def _messages(body: Mapping[str, Any]) -> list[Any]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ConversionError("'messages' is required and must be a list of message objects")
    if not messages:
        raise ConversionError("'messages' must contain at least one message")
    return messages


def _turn(message: Any, index: int) -> _Turn:
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise ConversionError(f"{where} must be an object, not {type(message).__name__}")
    wire_role = message.get("role")
    role = _ROLES.get(wire_role) if isinstance(wire_role, str) else None
    if role is None:
        raise ConversionError(f"{where}.role {wire_role!r} is not a known role")
    texts, images = _content(message.get("content"), f"{where}.content")
    return _Turn(role=role, texts=texts, images=images)


def _content(content: Any, where: str) -> tuple[tuple[str, ...], int]:
    if content is None:
        return (), 0
    if isinstance(content, str):
        return (content,), 0
    if not isinstance(content, list):
        raise ConversionError(f"{where} must be a string, a list of parts or null")
    texts: list[str] = []
    images = 0
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind is None:
            raise ConversionError(f"{where}[{index}] must be an object with a 'type'")
        if kind == "text":
            texts.append(_text_of(part, f"{where}[{index}]"))
        elif kind == "image_url":
            images += 1
    return tuple(texts), images


def _text_of(part: Mapping[str, Any], where: str) -> str:
    text = part.get("text")
    if not isinstance(text, str):
        raise ConversionError(f"{where}.text must be a string")
    return text


def _trailing_tool_results(turns: list[_Turn]) -> tuple[str, ...]:
    results: list[str] = []
    for turn in reversed(turns):
        if turn.role != "tool":
            break
        results.append(turn.text)
    return tuple(reversed(results))


def _tools(body: Mapping[str, Any]) -> tuple[MockTool, ...]:
    tools = _list_field(body, "tools")
    functions = _list_field(body, "functions")  # legacy
    return tuple(
        [_tool(entry, f"tools[{i}]") for i, entry in enumerate(tools)]
        + [_function(entry, f"functions[{i}]") for i, entry in enumerate(functions)]
    )


def _list_field(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConversionError(f"'{key}' must be a list")
    return value


def _tool(entry: Any, where: str) -> MockTool:
    if not isinstance(entry, Mapping) or entry.get("type", "function") != "function":
        raise ConversionError(f"{where} must be an object of type 'function'")
    return _function(entry.get("function"), f"{where}.function")


def _function(entry: Any, where: str) -> MockTool:
    if not isinstance(entry, Mapping):
        raise ConversionError(f"{where} must be an object")
    name, parameters = entry.get("name"), entry.get("parameters")
    parameters = {} if parameters is None else parameters
    if not isinstance(name, str) or not name:
        raise ConversionError(f"{where}.name must be a non-empty string")
    if not isinstance(parameters, Mapping):
        raise ConversionError(f"{where}.parameters must be an object")
    return MockTool(name=name, parameters=parameters)


def _tool_choice(body: Mapping[str, Any]) -> tuple[str | None, bool]:
    key = "tool_choice" if body.get("tool_choice") is not None else "function_call"
    choice = body.get(key)
    if choice is None:
        return None, False
    if isinstance(choice, str) and choice in _CHOICE_MODES:
        return _CHOICE_MODES[choice]
    function = choice.get("function", choice) if isinstance(choice, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ConversionError(
            f"'{key}' must be 'auto', 'required', 'none' or name a function, not {choice!r}"
        )
    return name, False


def _response_format(body: Mapping[str, Any]) -> dict[str, Any]:
    """`json_output` / `response_schema` from `response_format` (text: neither)."""
    value = body.get("response_format")
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind not in ("json_object", "json_schema"):
        return {}
    spec = value.get("json_schema") if isinstance(value, Mapping) else None
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return {"json_output": True, "response_schema": schema if isinstance(schema, Mapping) else None}


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConversionError(f"'{key}' must be a non-negative integer, not {value!r}")
        return value
    return None


def _text_deltas(answer: MockAnswer) -> list[dict[str, Any]]:
    return [{"content": piece} for piece in split_text(answer.text)]


def _tool_deltas(answer: MockAnswer) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(answer.tool_calls):
        start = {"index": index, "id": call.id, "type": "function"}
        function = {"name": call.name, "arguments": ""}
        deltas.append({"tool_calls": [{**start, "function": function}]})
        deltas.extend(
            {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
            for fragment in split_chars(call.arguments)
        )
    return deltas


def _function_deltas(answer: MockAnswer) -> list[dict[str, Any]]:
    """The legacy form: the first call's name, then its argument fragments."""
    if not answer.tool_calls:
        return []
    call = answer.tool_calls[0]
    deltas: list[dict[str, Any]] = [{"function_call": {"name": call.name, "arguments": ""}}]
    deltas.extend(
        {"function_call": {"arguments": fragment}} for fragment in split_chars(call.arguments)
    )
    return deltas


def _finish(answer: MockAnswer, legacy: bool) -> str:
    return "function_call" if legacy and answer.tool_calls else answer.finish_reason


def _choice_chunk(
    head: Mapping[str, Any], delta: Mapping[str, Any], finish_reason: str | None
) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {**head, "choices": [choice]}


def _usage(answer: MockAnswer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }
