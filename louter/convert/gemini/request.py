"""Gemini requests: generateContent bodies <-> neutral `Request`.

The model name and `stream` come from the URL, never the body. Decisions:
- `systemInstruction` (a string, `{parts}` or `{role, parts}`) becomes the first message,
  role "system" (text parts only). Going out, the *leading* system messages become
  `systemInstruction`; a system message later in the conversation (Claude Code's
  reminders) stays at its position as a `user` content with its text: Gemini has no
  system role there, and merging it away would move it.
- Roles: user -> "user", model -> "assistant", function (the old API) -> "user"; a
  content's `functionResponse` parts become "tool" messages at their position.
- Call ids: a `functionCall` without `id` gets `call_<content index>_<part index>`. A
  `functionResponse` takes the id of the call it answers: the call with its `id`, else the
  first unanswered call of the same name in the preceding model turn (order + name), else
  its own id, else a fresh `call_<content>_<part>`.
- Going out: consecutive "tool" messages become one `user` content of functionResponse
  parts and consecutive assistant messages one `model` content (Gemini pairs a call turn
  with the next response turn, part for part); user contents stay separate (Gemini takes
  consecutive user turns). Empty text parts without a signature are dropped (Gemini
  rejects them), and so is a content left without parts. A model turn whose calls carry
  no `thoughtSignature` gets the documented placeholder `skip_thought_signature_validator`
  on its first call, as gemini-cli does, so Gemini 3 accepts histories from other
  dialects.
- Tools: `functionDeclarations` with `parametersJsonSchema` (preferred) or `parameters`,
  normalised by `schema.to_json_schema`; other Gemini tools (googleSearch,
  codeExecution, ...) are dropped. Out: one `functionDeclarations` list with
  `parametersJsonSchema`.
- `toolConfig.functionCallingConfig.mode`: AUTO/VALIDATED -> auto, ANY -> required (with
  exactly one `allowedFunctionNames` -> tool), NONE -> none. A longer allow-list is not
  expressible and is dropped.
- `thinkingConfig`: `thinkingBudget` -> reasoning_budget (-1, "dynamic", -> None; 0 also
  sets effort "none"); `thinkingLevel` -> effort (MINIMAL -> "low"). Out, effort becomes a
  budget (low 1024, medium 8192, high 24576; none 0) because every Gemini model takes a
  budget while 2.5 models reject `thinkingLevel`; `includeThoughts` is set when thinking
  is on, so the thoughts come back as reasoning.
- `responseMimeType: application/json` -> json_object, plus a schema (`responseJsonSchema`
  or `responseSchema`) -> json_schema. `presencePenalty` / `frequencyPenalty` <->
  presence_penalty / frequency_penalty. Ignored: candidateCount, safetySettings,
  cachedContent, labels, seed, modalities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from itertools import groupby
from typing import Any

from louter.convert.gemini.fields import (
    fail,
    get,
    integer,
    join,
    mapping,
    number,
    sequence,
    snake,
    strings,
    text,
)
from louter.convert.gemini.parts import SKIP_SIGNATURE, read_part, write_part
from louter.convert.gemini.schema import to_json_schema
from louter.convert.model import (
    Message,
    Part,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from louter.errors import ConversionError

Wire = dict[str, Any]
_SCHEMA_KEYS = ("responseJsonSchema", "_responseJsonSchema", "responseSchema")


# --------------------------------------------------------------------------- parsing


def parse_request(body: Mapping[str, Any], *, model: str, stream: bool) -> Request:
    """A generateContent body -> Request (`model` and `stream` come from the URL path).

    Raises:
        ConversionError: (400) the body's shape is wrong; the message names the path.
    """
    obj = mapping(body, "request body")
    config = mapping(get(obj, "generationConfig"), "generationConfig")
    system = get(obj, "systemInstruction")
    head = _system(system) if system is not None else ()
    return Request(
        model=model,
        messages=(*head, *_Conversation().read(obj)),
        tools=_tools(obj),
        tool_choice=_tool_choice(obj),
        stream=stream,
        **(_read_config(config) if config else {}),
    )


# generationConfig's keys read into a Request (both spellings) -> the camelCase name
_READ: tuple[str, ...] = ("maxOutputTokens", "temperature", "topP", "topK", "presencePenalty")
_READ += ("frequencyPenalty", "stopSequences", "responseMimeType", "thinkingConfig")
_READ += _SCHEMA_KEYS
_CONFIG_KEYS = {name: name for name in _READ} | {snake(name): name for name in _READ}
_SCALAR_READS = (
    ("max_tokens", "maxOutputTokens", integer),
    ("temperature", "temperature", number),
    ("top_p", "topP", number),
    ("top_k", "topK", integer),
    ("presence_penalty", "presencePenalty", number),
    ("frequency_penalty", "frequencyPenalty", number),
)
_FORMAT_KEYS = frozenset(("responseMimeType", *_SCHEMA_KEYS))


def _read_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The Request fields `generationConfig` sets: only its keys present are read (a
    config names a few of the dozen it may hold)."""
    where = "generationConfig"
    present = {_CONFIG_KEYS[key] for key in config if key in _CONFIG_KEYS}
    fields: dict[str, Any] = {}
    for field, key, read in _SCALAR_READS:
        if key in present:
            fields[field] = read(config, key, where)
    if "stopSequences" in present:
        fields["stop"] = strings(config, "stopSequences", where)
    if not present.isdisjoint(_FORMAT_KEYS):
        fields["response_format"] = _response_format(config)
    if "thinkingConfig" in present:
        fields.update(_thinking(config))
    return fields


def parse_count_request(body: Mapping[str, Any], *, model: str) -> Request:
    """A countTokens body (`{contents}` or `{generateContentRequest: {...}}`) -> Request."""
    obj = mapping(body, "request body")
    inner = get(obj, "generateContentRequest")
    if inner is not None:
        obj = mapping(inner, "generateContentRequest")
    return parse_request(obj, model=model, stream=False)


def _system(value: Any) -> tuple[Message, ...]:
    if isinstance(value, str):
        return (Message("system", (Text(value),)),) if value else ()
    content = mapping(value, "systemInstruction")
    where = "systemInstruction.parts"
    parts = [
        read_part(p, f"{where}[{i}]") for i, p in enumerate(sequence(get(content, "parts"), where))
    ]
    for index, part in enumerate(parts):
        if not isinstance(part, Text):
            raise fail(f"{where}[{index}]", "only text parts are allowed", 400)
    return (Message("system", tuple(parts)),) if parts else ()


_ROLES = {"user": "user", "model": "assistant", "function": "user"}


class _Conversation:
    """`contents` -> messages, pairing each functionResponse with the call it answers."""

    __slots__ = ("_messages", "_pending")

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._pending: list[ToolCall] = []  # the last model turn's unanswered calls

    def read(self, obj: Mapping[str, Any]) -> list[Message]:
        contents = sequence(get(obj, "contents"), "contents")
        if not contents:
            raise fail("contents", "missing or empty", 400)
        for index, content in enumerate(contents):
            self._content(mapping(content, f"contents[{index}]"), index)
        return self._messages

    def _content(self, content: Mapping[str, Any], index: int) -> None:
        where = f"contents[{index}]"
        role = _ROLES.get(text(content, "role", where) or "user")
        if role is None:
            raise fail(join(where, "role"), f"unknown role {get(content, 'role')!r}", 400)
        wire = sequence(get(content, "parts"), join(where, "parts"))
        if not wire:
            raise fail(join(where, "parts"), "missing or empty (a content needs parts)", 400)
        parts = [self._part(p, f"{where}.parts[{j}]", role, index, j) for j, p in enumerate(wire)]
        if role == "assistant":
            self._pending = [part for part in parts if isinstance(part, ToolCall)]
        for is_tool, run in groupby(parts, key=lambda part: isinstance(part, ToolResult)):
            self._messages.append(Message("tool" if is_tool else role, tuple(run)))

    def _part(self, wire: Any, where: str, role: str, index: int, position: int) -> Part:
        part = read_part(wire, where)
        if isinstance(part, ToolCall):
            if role != "assistant":
                raise fail(where, "a functionCall belongs in a model turn", 400)
            return part if part.id else replace(part, id=f"call_{index}_{position}")
        if isinstance(part, ToolResult):
            if role == "assistant":
                raise fail(where, "a functionResponse belongs in a user turn", 400)
            return self._pair(part, f"call_{index}_{position}")
        return part

    def _pair(self, result: ToolResult, fresh_id: str) -> ToolResult:
        """By id; else the first unanswered call of that name; else its own or a fresh id."""
        by_id = [call for call in self._pending if result.call_id and call.id == result.call_id]
        by_name = [call for call in self._pending if call.name == result.name]
        for call in by_id or by_name[:1]:
            self._pending.remove(call)
            return replace(result, call_id=call.id)
        return result if result.call_id else replace(result, call_id=fresh_id)


def _tools(obj: Mapping[str, Any]) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for index, entry in enumerate(sequence(get(obj, "tools"), "tools")):
        where = f"tools[{index}].functionDeclarations"
        declarations = sequence(
            get(mapping(entry, f"tools[{index}]"), "functionDeclarations"), where
        )
        tools += [_declaration(d, f"{where}[{j}]") for j, d in enumerate(declarations)]
    return tuple(tools)


def _declaration(value: Any, where: str) -> Tool:
    declaration = mapping(value, where)
    name = text(declaration, "name", where)
    if not name:
        raise fail(join(where, "name"), "missing", 400)
    schema = get(declaration, "parametersJsonSchema")
    if schema is None:
        schema = get(declaration, "parameters")
    parameters = to_json_schema(mapping(schema, join(where, "parameters")))
    return Tool(name, text(declaration, "description", where) or "", parameters)


_MODES = {"AUTO": "auto", "VALIDATED": "auto", "ANY": "required", "NONE": "none"}


def _tool_choice(obj: Mapping[str, Any]) -> ToolChoice | None:
    where = "toolConfig.functionCallingConfig"
    value = get(obj, "toolConfig")
    if value is None:
        return None
    tool_config = mapping(value, "toolConfig")
    config = mapping(get(tool_config, "functionCallingConfig"), where)
    name = text(config, "mode", where)
    if name is None or name.upper() == "MODE_UNSPECIFIED":
        return None
    mode = _MODES.get(name.upper())
    if mode is None:
        raise fail(join(where, "mode"), f"unknown mode {name!r}", 400)
    allowed = strings(config, "allowedFunctionNames", where)
    if mode == "required" and len(allowed) == 1:
        return ToolChoice("tool", allowed[0])
    return ToolChoice(mode)


def _response_format(config: Mapping[str, Any]) -> ResponseFormat | None:
    where = "generationConfig"
    mime = text(config, "responseMimeType", where)
    if mime not in (None, "application/json"):
        return None
    for key in _SCHEMA_KEYS:
        schema = get(config, key)
        if schema is not None:
            return ResponseFormat("json_schema", to_json_schema(mapping(schema, join(where, key))))
    return ResponseFormat("json_object") if mime else None


_LEVELS = {"MINIMAL": "low", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}


def _thinking(config: Mapping[str, Any]) -> dict[str, Any]:
    where = "generationConfig.thinkingConfig"
    thinking = mapping(get(config, "thinkingConfig"), where)
    budget = integer(thinking, "thinkingBudget", where)
    level = text(thinking, "thinkingLevel", where)
    effort = _LEVELS.get(level.upper()) if level else None
    if level and effort is None and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
        raise fail(join(where, "thinkingLevel"), f"unknown level {level!r}", 400)
    if budget is not None and budget < 0:
        budget = None  # -1: dynamic thinking, the model decides
    if budget == 0 and effort is None:
        effort = "none"
    return {"reasoning_budget": budget, "reasoning_effort": effort}


# --------------------------------------------------------------------------- emitting


def emit_request(request: Request, model: str) -> dict[str, Any]:
    """Request -> a generateContent body. `model` is unused (it goes in the URL, which the
    proxy builds) and kept for the dialects' uniform signature.

    Raises:
        ConversionError: (400) a tool call in the history has arguments that are not a
            JSON object.
    """
    leading = list(_leading_system(request.messages))
    body: Wire = {"contents": _contents(request.messages[len(leading) :])}
    system = [wire for message in leading for wire in _parts(message.parts, "system")]
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_write_tool(t) for t in request.tools]}]
    if request.tool_choice is not None:
        body["toolConfig"] = {"functionCallingConfig": _write_choice(request.tool_choice)}
    config = _generation(request)
    if config:
        body["generationConfig"] = config
    return body


def _leading_system(messages: Iterable[Message]) -> Iterable[Message]:
    for message in messages:
        if message.role != "system":
            return
        yield message


_WIRE_ROLES = {"user": "user", "system": "user", "tool": "user", "assistant": "model"}
_MERGED = frozenset(("tool", "assistant"))  # kinds whose consecutive messages form one turn


def _contents(messages: Iterable[Message]) -> list[Wire]:
    contents: list[Wire] = []
    previous = ""
    for message in messages:
        role = _WIRE_ROLES.get(message.role)
        if role is None:
            raise ConversionError(f"unknown message role {message.role!r}", status_hint=400)
        parts = _parts(message.parts, message.role)
        if not parts:
            continue
        if message.role == previous and previous in _MERGED:
            contents[-1]["parts"] += parts
        else:
            contents.append({"role": role, "parts": parts})
        previous = message.role
    for content in contents:
        _sign_first_call(content["parts"])
    return contents


def _parts(parts: Iterable[Part], role: str) -> list[Wire]:
    out: list[Wire] = []
    for part in parts:
        try:
            wire = write_part(part)
        except ConversionError as exc:
            raise ConversionError(f"{role} message: {exc.message}", status_hint=400) from None
        if wire is not None and (wire.get("text") != "" or "thoughtSignature" in wire):
            out.append(wire)
    return out


def _sign_first_call(parts: list[Wire]) -> None:
    calls = [part for part in parts if "functionCall" in part]
    if calls and not any("thoughtSignature" in call for call in calls):
        calls[0]["thoughtSignature"] = SKIP_SIGNATURE


def _write_tool(tool: Tool) -> Wire:
    declaration: Wire = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    if tool.parameters:
        declaration["parametersJsonSchema"] = tool.parameters
    return declaration


_WIRE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}


def _write_choice(choice: ToolChoice) -> Wire:
    mode = _WIRE_MODES.get(choice.mode)
    if mode is None:
        raise ConversionError(f"unknown tool_choice mode {choice.mode!r}", status_hint=400)
    config: Wire = {"mode": mode}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    return config


_SCALARS = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("max_tokens", "maxOutputTokens"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)


def _generation(request: Request) -> Wire:
    config: Wire = {}
    for field, key in _SCALARS:
        value = getattr(request, field)
        if value is not None:
            config[key] = value
    if request.stop:
        config["stopSequences"] = list(request.stop)
    config.update(_write_format(request.response_format))
    thinking = _write_thinking(request)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _write_format(response_format: ResponseFormat | None) -> Wire:
    if response_format is None or response_format.kind == "text":
        return {}
    if response_format.kind == "json_schema" and response_format.schema is not None:
        return {
            "responseMimeType": "application/json",
            "responseJsonSchema": response_format.schema,
        }
    return {"responseMimeType": "application/json"}


_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def _write_thinking(request: Request) -> Wire:
    budget = request.reasoning_budget
    if budget is None and request.reasoning_effort is not None:
        budget = _BUDGETS.get(request.reasoning_effort)
    if budget is None:
        return {}
    if budget == 0:
        return {"thinkingBudget": 0}
    return {"includeThoughts": True, "thinkingBudget": budget}
