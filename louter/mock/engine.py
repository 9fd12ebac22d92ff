"""The deterministic mock backend: the decisions every dialect of the mock shares.

Pure: no I/O, no clock, no randomness; ids come in as arguments. `responder` reads any
dialect's request into a `MockPrompt` (through the neutral model), calls `answer`, and
has the dialect's emitter write the `MockAnswer` in its own wire shape.

Rules of the mock:

- Tokens. A token is a whitespace-separated word (`len(text.split())`). `prompt_tokens`
  counts the words of all message text (string contents and text parts, tool results
  included); `completion_tokens` counts the words of the answer text, or for a tool call
  the words of its JSON arguments string (at least 1).
- Plain request (no tools, or `tool_choice: "none"`): the answer quotes the last user
  message and states how many images the whole request carried, exactly
  `Mock answer to: "<last user text>" (images: N)`. The last user text is the text parts
  of the last `user` message joined with a single space; N counts every image part of
  every message.
- Tools declared and the last message is the user's: exactly one tool call, finish
  reason `tool_calls`. The tool is the one named by `tool_choice` (`"auto"` and
  `"required"` mean the normal selection), else the first declared tool whose name
  appears (case-insensitive) in the user's text, else the first tool. Its arguments are
  generated from the tool's JSON schema: `default`, then `const`, then the first `enum`
  value win; otherwise string → `"mock-<property name>"`, integer → `minimum` or 1,
  number → `minimum` or 1 (both capped by `maximum`; a whole number, as some clients
  parse JSON numbers as integers), boolean → true, null → null,
  array → one item generated from `items`, object → recurse; a type list such as
  `["string", "null"]` uses its first non-null type (`anyOf`/`oneOf`: first non-null
  option). Every property and every `required` key is present, in declaration order.
  The call id is `call_<response id>_0`.
- Last message is a tool result: the answer is
  `Mock answer to tool result: "<tool content text>"`; several trailing tool results are
  joined with " | ".
- `max_tokens` (or `max_completion_tokens`) smaller than a text answer's word count: the
  text is cut after that many words and the finish reason is `length`. Tool calls are
  never cut.
- `tool_format = "xml"`: the tool call is written as Qwen XML text content instead,
  `<tool_call>\\n<function=NAME>\\n<parameter=KEY>\\nVALUE\\n</parameter>\\n</function>\\n</tool_call>`
  (one parameter block per argument, in order; VALUE is a string as is, anything else as
  JSON), finish reason `stop`.
- JSON output requested (OpenAI `response_format` `json_object`/`json_schema`, Gemini
  `responseMimeType: "application/json"` with or without a schema, Anthropic
  `output_config.format`) and no tool call due: the answer is JSON text, an object
  generated from the schema by the tool-argument rules above, or without a schema
  `{"answer": "<the plain answer text>"}`; finish reason `stop`, never cut.
- A request without a non-empty `messages` list, or with a message that is not an
  object, is a `ConversionError` (400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from louter.errors import ConfigError, ConversionError

_WORD = re.compile(r"\S+")
_UNIT = re.compile(r"\s*\S+\s*")


@dataclass(frozen=True, slots=True)
class MockTool:
    """A declared tool: its name and its JSON-schema `parameters`."""

    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MockPrompt:
    """The dialect-neutral view of a request: everything the mock's rules look at."""

    last_role: str  # "user" | "tool" | "assistant" | "system"
    user_text: str
    tool_results: tuple[str, ...]
    image_count: int
    prompt_tokens: int
    tools: tuple[MockTool, ...] = ()
    forced_tool: str | None = None
    tools_disabled: bool = False
    max_tokens: int | None = None
    json_output: bool = False  # the request asked for JSON (response format / MIME type)
    response_schema: Mapping[str, Any] | None = None  # ... following this JSON schema


@dataclass(frozen=True, slots=True)
class MockToolCall:
    """One tool call; `arguments` is JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class MockAnswer:
    """The mock's answer; `finish_reason` is "stop", "length" or "tool_calls"."""

    text: str
    tool_calls: tuple[MockToolCall, ...]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def count_words(text: str) -> int:
    """The mock's token count of `text`: its whitespace-separated words."""
    return len(text.split())


def answer(prompt: MockPrompt, *, response_id: str, tool_format: str = "json") -> MockAnswer:
    """Apply the mock's rules to `prompt`.

    Args:
        prompt: the parsed request.
        response_id: the response id; tool-call ids derive from it.
        tool_format: "json" (structured tool calls) or "xml" (Qwen XML in the text).

    Raises:
        ConfigError: unknown `tool_format`.
        ConversionError: `forced_tool` names no declared tool.
    """
    render_call = _CALL_RENDERERS.get(tool_format)
    if render_call is None:
        raise ConfigError(f"unknown tool_format {tool_format!r} (expected 'json' or 'xml')")
    if prompt.last_role == "tool":
        results = " | ".join(prompt.tool_results)
        return _text_answer(prompt, f'Mock answer to tool result: "{results}"')
    if prompt.tools and not prompt.tools_disabled and prompt.last_role == "user":
        tool = select_tool(prompt)
        return render_call(prompt, tool.name, arguments_for(tool.parameters), response_id)
    quoted = f'Mock answer to: "{prompt.user_text}" (images: {prompt.image_count})'
    if prompt.json_output:
        return _json_answer(prompt, quoted)
    return _text_answer(prompt, quoted)


def _json_answer(prompt: MockPrompt, quoted: str) -> MockAnswer:
    """JSON output: an object generated from the schema, else `{"answer": <the text>}`.
    Never cut by max_tokens (half a JSON document helps no one)."""
    schema = prompt.response_schema
    value = arguments_for(schema) if schema is not None else {"answer": quoted}
    text = _json(value)
    return MockAnswer(text, (), "stop", prompt.prompt_tokens, count_words(text))


def select_tool(prompt: MockPrompt) -> MockTool:
    """The tool to call: forced by name, else named in the user's text, else the first."""
    if prompt.forced_tool is not None:
        for tool in prompt.tools:
            if tool.name == prompt.forced_tool:
                return tool
        raise ConversionError(
            f"tool_choice names {prompt.forced_tool!r}, which is not a declared tool"
        )
    text = prompt.user_text.casefold()
    named = (tool for tool in prompt.tools if tool.name.casefold() in text)
    return next(named, prompt.tools[0])


def truncate_words(text: str, limit: int | None) -> tuple[str, bool]:
    """`text` cut after `limit` words (spacing kept), and whether it was cut."""
    words = list(_WORD.finditer(text))
    if limit is None or len(words) <= limit:
        return text, False
    if limit <= 0:
        return "", True
    return text[: words[limit - 1].end()], True


def render_xml_call(name: str, arguments: Mapping[str, Any]) -> str:
    """A tool call as Qwen XML; string values verbatim, other values as JSON."""
    blocks = "".join(
        f"<parameter={key}>\n{_xml_value(value)}\n</parameter>\n"
        for key, value in arguments.items()
    )
    return f"<tool_call>\n<function={name}>\n{blocks}</function>\n</tool_call>"


def split_text(text: str, pieces: int = 4) -> list[str]:
    """Split `text` at word boundaries into at most `pieces` chunks that concatenate to it.

    Spaces stay attached to the word before them; there are `min(pieces, words)` chunks
    (one chunk for whitespace-only text, none for "").
    """
    units = _UNIT.findall(text)
    if not units:
        return [text] if text else []
    return _group(units, pieces)


def split_chars(text: str, pieces: int = 4) -> list[str]:
    """Split `text` into at most `pieces` near-equal runs of characters (for JSON fragments)."""
    return _group(list(text), pieces)


def arguments_for(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments matching an object schema: every property and every required key.

    Raises:
        ConversionError: `properties` is not an object, or a type is not a JSON type.
    """
    properties = schema.get("properties") or {}
    if not isinstance(properties, Mapping):
        raise ConversionError("tool parameters: 'properties' must be an object")
    arguments = {str(key): value_for(sub, str(key)) for key, sub in properties.items()}
    required = schema.get("required") or []
    if not isinstance(required, list):
        raise ConversionError("tool parameters: 'required' must be a list")
    for key in required:
        arguments.setdefault(str(key), value_for({}, str(key)))
    return arguments


def value_for(schema: Any, name: str) -> Any:
    """One deterministic value for the property `name` described by `schema`."""
    if not isinstance(schema, Mapping):
        return _string_value(schema, name)
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    variants = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(variants, list) and variants:
        return value_for(_first_non_null(variants), name)
    kind = _type_of(schema)
    generate = _GENERATORS.get(kind)
    if generate is None:
        raise ConversionError(f"tool parameters: {name!r} has unsupported type {kind!r}")
    return generate(schema, name)


def _text_answer(prompt: MockPrompt, text: str) -> MockAnswer:
    cut, truncated = truncate_words(text, prompt.max_tokens)
    return MockAnswer(
        text=cut,
        tool_calls=(),
        finish_reason="length" if truncated else "stop",
        prompt_tokens=prompt.prompt_tokens,
        completion_tokens=count_words(cut),
    )


def _json_call(
    prompt: MockPrompt, name: str, arguments: Mapping[str, Any], response_id: str
) -> MockAnswer:
    call = MockToolCall(id=f"call_{response_id}_0", name=name, arguments=_json(arguments))
    return MockAnswer(
        text="",
        tool_calls=(call,),
        finish_reason="tool_calls",
        prompt_tokens=prompt.prompt_tokens,
        completion_tokens=max(1, count_words(call.arguments)),
    )


def _xml_call(
    prompt: MockPrompt, name: str, arguments: Mapping[str, Any], response_id: str
) -> MockAnswer:
    text = render_xml_call(name, arguments)
    return MockAnswer(
        text=text,
        tool_calls=(),
        finish_reason="stop",
        prompt_tokens=prompt.prompt_tokens,
        completion_tokens=count_words(text),
    )


_CallRenderer = Callable[[MockPrompt, str, Mapping[str, Any], str], MockAnswer]
_CALL_RENDERERS: dict[str, _CallRenderer] = {"json": _json_call, "xml": _xml_call}


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _xml_value(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _group(units: Sequence[str], pieces: int) -> list[str]:
    if pieces < 1:
        raise ValueError(f"pieces must be at least 1, not {pieces}")
    if not units:
        return []
    count = min(pieces, len(units))
    size, extra = divmod(len(units), count)
    chunks, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append("".join(units[start:end]))
        start = end
    return chunks


def _type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        names = [str(k).lower() for k in kind]
        return next((k for k in names if k != "null"), "null")
    if isinstance(kind, str):
        return kind.lower()  # Gemini spells types upper-case
    if "properties" in schema:
        return "object"
    return "array" if "items" in schema else "string"


def _first_non_null(variants: list[Any]) -> Any:
    return next(
        (v for v in variants if not (isinstance(v, Mapping) and v.get("type") == "null")),
        variants[0],
    )


def _bounded(schema: Mapping[str, Any], fallback: float) -> float:
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    value = minimum if _is_number(minimum) else fallback
    return maximum if _is_number(maximum) and value > maximum else value


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_value(schema: Any, name: str) -> str:
    return f"mock-{name}"


def _integer_value(schema: Mapping[str, Any], name: str) -> Any:
    return _bounded(schema, 1)


def _number_value(schema: Mapping[str, Any], name: str) -> Any:
    return _bounded(schema, 1)


def _array_value(schema: Mapping[str, Any], name: str) -> list[Any]:
    items = schema.get("items", {})
    if isinstance(items, list):  # tuple form: the first position's schema
        items = items[0] if items else {}
    return [value_for(items, name)]


def _object_value(schema: Mapping[str, Any], name: str) -> dict[str, Any]:
    return arguments_for(schema)


_GENERATORS: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
    "string": _string_value,
    "integer": _integer_value,
    "number": _number_value,
    "boolean": lambda schema, name: True,
    "null": lambda schema, name: None,
    "array": _array_value,
    "object": _object_value,
}
