"""Tool declarations, tool calls and tool results in a log entry's payload, any dialect.

Each dialect keeps them under its own keys, and the shapes never overlap, so every reader
below runs on every payload and each finds only its own dialect (a request and a response
of the same dialect use different keys too). That keeps the result right whatever name a
front door writes in `format`, and for stream entries, whose payload is the assembled
answer (`content`, `tool_calls`, `finish_reason`, `usage`) rather than a wire body.

Calls come out in one shape, OpenAI's, with the arguments parsed:

    {"id": "call_1", "type": "function",
     "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
     "arguments_text": "{\"city\":\"Paris\"}", "valid_json": true}

`arguments` is the parsed JSON (the raw text when it does not parse, with `valid_json`
false); `arguments_text` is the text as sent (Gemini and Anthropic send objects: their
compact JSON). Results: `{"id": ..., "name": ..., "content": ...}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from louter.logs.query import client_model

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolUse:
    """What one payload says about tools: names declared, calls made, results returned."""

    declared: tuple[str, ...] = ()
    calls: tuple[Json, ...] = ()
    results: tuple[Json, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.declared or self.calls or self.results)


NOTHING = ToolUse()


def make_call(call_id: Any, name: Any, arguments: Any) -> Json:
    """A normalised call; `arguments` is JSON text (OpenAI, Responses) or a value."""
    if isinstance(arguments, str):
        text = arguments
        try:
            parsed, valid = orjson.loads(arguments), True
        except orjson.JSONDecodeError:
            parsed, valid = arguments, False
    else:
        parsed, valid = ({} if arguments is None else arguments), True
        text = orjson.dumps(parsed).decode()
    return {
        "id": call_id if isinstance(call_id, str) else None,
        "type": "function",
        "function": {"name": name if isinstance(name, str) else "", "arguments": parsed},
        "arguments_text": text,
        "valid_json": valid,
    }


def make_result(call_id: Any, name: Any, content: Any) -> Json:
    return {
        "id": call_id if isinstance(call_id, str) else None,
        "name": name if isinstance(name, str) else None,
        "content": content,
    }


def _dicts(value: Any) -> Iterator[Json]:
    """The dict items of `value` when it is a list (anything else: nothing)."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item


# --------------------------------------------------------------------------- declarations


def _declared_names(tool: Json) -> Iterator[str]:
    """OpenAI `{type, function: {name}}`, Gemini `{functionDeclarations: [{name}]}`,
    Anthropic `{name, input_schema}`, Responses `{type: "function", name}`."""
    function = tool.get("function")
    if isinstance(function, dict):
        yield str(function.get("name") or "")
        return
    declarations = tool.get("functionDeclarations", tool.get("function_declarations"))
    if declarations is not None:
        yield from (str(d.get("name") or "") for d in _dicts(declarations))
        return
    if isinstance(tool.get("name"), str):
        yield tool["name"]


def declared(payload: Json) -> tuple[str, ...]:
    names = [name for tool in _dicts(payload.get("tools")) for name in _declared_names(tool)]
    names += [str(f.get("name") or "") for f in _dicts(payload.get("functions"))]  # legacy
    return tuple(names)


# --------------------------------------------------------------------------- calls/results

Found = Iterator[tuple[str, Json]]  # ("call" | "result", normalised)


def _openai_message(message: Json) -> Found:
    for call in _dicts(message.get("tool_calls")):
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        yield "call", make_call(call.get("id"), function.get("name"), function.get("arguments"))
    if message.get("role") == "tool":
        content = message.get("content")
        yield "result", make_result(message.get("tool_call_id"), message.get("name"), content)


def _anthropic_block(block: Json) -> Found:
    kind = block.get("type")
    if kind == "tool_use":
        yield "call", make_call(block.get("id"), block.get("name"), block.get("input"))
    elif kind == "tool_result":
        yield "result", make_result(block.get("tool_use_id"), None, block.get("content"))


def _messages(payload: Json) -> Found:
    """OpenAI chat and Anthropic messages requests (`messages[]`)."""
    for message in _dicts(payload.get("messages")):
        yield from _openai_message(message)
        for block in _dicts(message.get("content")):
            yield from _anthropic_block(block)


def _openai_response(payload: Json) -> Found:
    """OpenAI chat completion (`choices[].message`) and an assembled stream result."""
    for choice in _dicts(payload.get("choices")):
        message = choice.get("message")
        if isinstance(message, dict):
            yield from _openai_message(message)
    if "tool_calls" in payload:
        yield from _openai_message({"tool_calls": payload["tool_calls"]})


def _anthropic_response(payload: Json) -> Found:
    """Anthropic messages response: top-level `content[]` blocks."""
    for block in _dicts(payload.get("content")):
        yield from _anthropic_block(block)


def _gemini_part(part: Json) -> Found:
    call = part.get("functionCall")
    if isinstance(call, dict):
        yield "call", make_call(call.get("id"), call.get("name"), call.get("args"))
    answer = part.get("functionResponse")
    if isinstance(answer, dict):
        yield "result", make_result(answer.get("id"), answer.get("name"), answer.get("response"))


def _gemini(payload: Json) -> Found:
    """Gemini requests (`contents[].parts[]`) and responses (`candidates[].content`)."""
    contents = list(_dicts(payload.get("contents")))
    for candidate in _dicts(payload.get("candidates")):
        content = candidate.get("content")
        if isinstance(content, dict):
            contents.append(content)
    for content in contents:
        for part in _dicts(content.get("parts")):
            yield from _gemini_part(part)


def _responses_item(item: Json) -> Found:
    kind = item.get("type")
    if kind == "function_call":
        yield "call", make_call(item.get("call_id"), item.get("name"), item.get("arguments"))
    elif kind == "function_call_output":
        yield "result", make_result(item.get("call_id"), None, item.get("output"))


def _responses(payload: Json) -> Found:
    """OpenAI Responses: request `input[]` and response `output[]` items."""
    for item in _dicts(payload.get("input")):
        yield from _responses_item(item)
    for item in _dicts(payload.get("output")):
        yield from _responses_item(item)


# Each reader with the top-level keys it looks under: a payload without any of them is
# skipped without a call (this runs on every response `stats` sees).
READERS: tuple[tuple[tuple[str, ...], Callable[[Json], Found]], ...] = (
    (("messages",), _messages),
    (("choices", "tool_calls"), _openai_response),
    (("content",), _anthropic_response),
    (("contents", "candidates"), _gemini),
    (("input", "output"), _responses),
)
DECLARING = ("tools", "functions")


def tool_use(payload: Any) -> ToolUse:
    """Everything tool-related in one payload (`NOTHING` for non-dict payloads)."""
    if not isinstance(payload, dict):
        return NOTHING
    calls: list[Json] = []
    results: list[Json] = []
    present = payload.keys()
    for keys, read in READERS:
        if not present.isdisjoint(keys):
            for kind, item in read(payload):
                (calls if kind == "call" else results).append(item)
    names = () if present.isdisjoint(DECLARING) else declared(payload)
    if not (names or calls or results):
        return NOTHING
    return ToolUse(names, tuple(calls), tuple(results))


SUMMARY_KEYS = (
    "timestamp", "request_id", "direction", "format", "endpoint",
    "backend", "model", "status", "latency_ms",
)  # fmt: skip


def function_record(entry: Json) -> Json | None:
    """The `log-parser functions` record of an entry, or None when it has nothing
    tool-related: the entry's summary fields (`model`: the client's, see
    `louter.logs.query.client_model`) plus `tools` (names declared),
    `tool_calls` and `tool_results` (normalised, see the module docstring)."""
    found = tool_use(entry.get("payload"))
    if not found:
        return None
    record = {key: entry.get(key) for key in SUMMARY_KEYS}
    record["model"] = client_model(entry)
    record["tools"] = list(found.declared)
    record["tool_calls"] = list(found.calls)
    record["tool_results"] = list(found.results)
    return record
