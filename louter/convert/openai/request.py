"""Chat Completions requests <-> neutral `Request` (both directions; the decisions are in
the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from louter.convert.model import (
    Image,
    Message,
    Part,
    Reasoning,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from louter.convert.openai.wire import tool_call_json
from louter.errors import ConversionError

# --------------------------------------------------------------------------- requests


def parse_request(body: Mapping[str, Any]) -> Request:
    """A Chat Completions request body -> `Request`. ConversionError (400) on bad input."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ConversionError("'model' is required and must be a non-empty string")
    if body.get("n") not in (None, 1):
        raise ConversionError("'n' other than 1 is not supported by this backend")
    stream = bool(_optional(body, "stream", bool))
    options = body.get("stream_options")
    parallel = _optional(body, "parallel_tool_calls", bool)
    return Request(
        model=model,
        messages=_messages(body.get("messages")),
        tools=_tools(body),
        tool_choice=_tool_choice(body),
        parallel_tool_calls=False if parallel is None and legacy_functions(body) else parallel,
        max_tokens=_max_tokens(body),
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        top_k=_optional(body, "top_k", int),
        presence_penalty=_number(body, "presence_penalty"),
        frequency_penalty=_number(body, "frequency_penalty"),
        stop=_stop(body.get("stop")),
        stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        response_format=_response_format(body.get("response_format")),
        reasoning_effort=_optional(body, "reasoning_effort", str),
        effort_source="client" if body.get("reasoning_effort") is not None else None,
    )


def legacy_functions(body: Mapping[str, Any]) -> bool:
    """Whether the client declared legacy `functions` and no `tools`: it reads its answer's
    call from `message.function_call`, not `tool_calls`."""
    return bool(body.get("functions")) and not body.get("tools")


def _messages(raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list):
        raise ConversionError("'messages' is required and must be a list of message objects")
    if not raw:
        raise ConversionError("'messages' must contain at least one message")
    names: dict[str, str] = {}  # tool_call_id -> function name, for tool messages
    pending: list[str] = []  # legacy function_call ids awaiting a `function` message
    messages = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ConversionError(f"{where} must be an object")
        role = message.get("role")
        reader = _ROLE_READERS.get(role) if isinstance(role, str) else None
        if reader is None:
            raise ConversionError(f"{where}: unknown role {role!r}")
        messages.append(reader(message, where, names, pending))
    return tuple(messages)


def _system(message: dict[str, Any], where: str, names: Any, pending: Any) -> Message:
    return Message("system", _content(message.get("content"), where, images=False))


def _user(message: dict[str, Any], where: str, names: Any, pending: Any) -> Message:
    return Message("user", _content(message.get("content"), where, images=True))


def _assistant(
    message: dict[str, Any], where: str, names: dict[str, str], pending: list[str]
) -> Message:
    parts: list[Part] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append(Reasoning(text=reasoning))
    parts.extend(_content(message.get("content"), where, images=False))
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ConversionError(f"{where}.tool_calls must be a list")
    for position, call in enumerate(calls):
        parts.append(_tool_call(call, f"{where}.tool_calls[{position}]"))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        call_id = f"call_legacy_{where[9:-1]}"
        pending.append(call_id)
        parts.append(read_function(legacy, call_id, f"{where}.function_call"))
    elif legacy is not None:
        raise ConversionError(f"{where}.function_call must be an object")
    for part in parts:
        if isinstance(part, ToolCall):
            names[part.id] = part.name
    return Message("assistant", tuple(parts))


def _tool(message: dict[str, Any], where: str, names: dict[str, str], pending: Any) -> Message:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or call_id not in names:
        raise ConversionError(f"{where}: 'tool_call_id' {call_id!r} matches no earlier tool call")
    content = _content(message.get("content"), where, images=True)
    return Message("tool", (ToolResult(call_id, names[call_id], _results(content)),))


def _function_result(
    message: dict[str, Any], where: str, names: dict[str, str], pending: list[str]
) -> Message:
    """A legacy `function` message answers the oldest open `function_call` of its name
    (else the oldest open one)."""
    name = message.get("name")
    if not isinstance(name, str) or not pending:
        raise ConversionError(f"{where}: a 'function' message needs a name and a function_call")
    call_id = next((c for c in pending if names[c] == name), pending[0])
    pending.remove(call_id)
    content = _content(message.get("content"), where, images=False)
    return Message("tool", (ToolResult(call_id, names[call_id], _results(content)),))


def _results(parts: tuple[Part, ...]) -> tuple[Text | Image, ...]:
    return tuple(part for part in parts if isinstance(part, Text | Image))


_ROLE_READERS: dict[str, Callable[..., Message]] = {
    "system": _system,
    "developer": _system,
    "user": _user,
    "assistant": _assistant,
    "tool": _tool,
    "function": _function_result,
}


def _content(content: Any, where: str, *, images: bool) -> tuple[Part, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (Text(content),) if content else ()
    if not isinstance(content, list):
        raise ConversionError(f"{where}.content must be a string, a list of parts or null")
    return tuple(_part(part, f"{where}.content[{i}]", images) for i, part in enumerate(content))


def _part(part: Any, where: str, images: bool) -> Part:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        if isinstance(part.get("text"), str):
            return Text(part["text"])
        raise ConversionError(f"{where}: a text part needs a 'text' string")
    if kind == "image_url" and images:
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str) and url:
            return Image.from_url(url)
        raise ConversionError(f"{where}: image_url needs a 'url'")
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return Text(part["refusal"])
    raise ConversionError(f"{where}: unsupported content part {kind!r}")


def _tool_call(call: Any, where: str) -> ToolCall:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise ConversionError(f"{where} must be an object with a 'function'")
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise ConversionError(f"{where}: 'id' is required")
    return read_function(call["function"], call_id, where)


def read_function(function: dict[str, Any], call_id: str, where: str) -> ToolCall:
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ConversionError(f"{where}: the function needs a 'name'")
    arguments = function.get("arguments")
    if arguments is None:
        arguments = "{}"
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments).decode()
    return ToolCall(call_id, name, arguments)


def _tools(body: Mapping[str, Any]) -> tuple[Tool, ...]:
    out = []
    for index, tool in enumerate(_list(body, "tools")):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise ConversionError(f"{where}: only function tools are supported")
        out.append(_declaration(tool.get("function"), where))
    for index, function in enumerate(_list(body, "functions")):
        out.append(_declaration(function, f"functions[{index}]"))
    return tuple(out)


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConversionError(f"'{key}' must be a list")
    return value


def _declaration(function: Any, where: str) -> Tool:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ConversionError(f"{where}: a function needs a 'name'")
    parameters = function.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise ConversionError(f"{where}: 'parameters' must be a JSON schema object")
    description = function.get("description")
    return Tool(function["name"], description if isinstance(description, str) else "", parameters)


def _first(body: Mapping[str, Any], *keys: str) -> tuple[str, Any]:
    """The first of `keys` with a non-null value, and that value (else the last key, None)."""
    for key in keys:
        if body.get(key) is not None:
            return key, body[key]
    return keys[-1], None


def _tool_choice(body: Mapping[str, Any]) -> ToolChoice | None:
    key, choice = _first(body, "tool_choice", "function_call")
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise ConversionError(f"unknown {key} {choice!r}")
        return ToolChoice(choice)
    if isinstance(choice, dict):
        function = choice.get("function", choice)
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return ToolChoice("tool", name)
    raise ConversionError(f"'{key}' must be 'auto', 'none', 'required' or a function")


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    key, value = _first(body, "max_completion_tokens", "max_tokens")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConversionError(f"'{key}' must be a positive integer")
    return value


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return tuple(stop)
    raise ConversionError("'stop' must be a string or a list of strings")


def _response_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind == "json_schema" and isinstance(value.get("json_schema"), dict):
        spec = value["json_schema"]
        schema = spec.get("schema")
        name = spec.get("name")
        return ResponseFormat(
            kind,
            schema if isinstance(schema, dict) else None,
            name if isinstance(name, str) else None,
        )
    raise ConversionError("response_format must be text, json_object or json_schema")


def _number(body: Mapping[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConversionError(f"'{key}' must be a number")
    return float(value)


def _optional(body: Mapping[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConversionError(f"'{key}' must be of type {kind.__name__}")
    return value


def emit_request(request: Request, model: str) -> dict[str, Any]:
    """`Request` -> a Chat Completions body for an OpenAI-compatible backend."""
    body: dict[str, Any] = {"model": model, "messages": _wire_messages(request.messages)}
    if request.tools:
        body["tools"] = [_wire_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _wire_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    _set(body, "max_tokens", request.max_tokens)
    _set(body, "temperature", request.temperature)
    _set(body, "top_p", request.top_p)
    _set(body, "presence_penalty", request.presence_penalty)
    _set(body, "frequency_penalty", request.frequency_penalty)
    if request.stop:
        body["stop"] = list(request.stop)
    if request.response_format is not None:
        body["response_format"] = _wire_format(request.response_format)
    if request.effort_source is not None and request.reasoning_effort is not None:
        body["reasoning_effort"] = request.reasoning_effort
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


def _wire_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Tool messages carry text only: the images of a run of tool results follow the run
    in one user message (a user message between two tool messages would orphan the
    second from its assistant turn)."""
    out: list[dict[str, Any]] = []
    images: list[Part] = []
    for message in messages:
        if message.role == "tool":
            out.extend(_wire_tool_results(message, images))
            continue
        if images:
            out.append({"role": "user", "content": _wire_content(tuple(images))})
            images = []
        if message.role == "assistant":
            out.append(_wire_assistant(message))
        else:
            out.append({"role": message.role, "content": _wire_content(message.parts)})
    if images:
        out.append({"role": "user", "content": _wire_content(tuple(images))})
    return out


def _wire_content(parts: tuple[Part, ...]) -> str | list[dict[str, Any]]:
    """One text (or none) is a string; several texts or any image, a list of parts (the
    backend joins the parts by its own rules; "".join would glue separate blocks)."""
    texts = [part.text for part in parts if isinstance(part, Text)]
    if len(texts) <= 1 and not any(isinstance(part, Image) for part in parts):
        return "".join(texts)
    wire: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, Text):
            wire.append({"type": "text", "text": part.text})
        elif isinstance(part, Image):
            wire.append({"type": "image_url", "image_url": {"url": part.data_url()}})
    return wire


def _wire_assistant(message: Message) -> dict[str, Any]:
    text = message.text()
    calls = [part for part in message.parts if isinstance(part, ToolCall)]
    wire: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        wire["tool_calls"] = [tool_call_json(call) for call in calls]
    return wire


def _wire_tool_results(message: Message, images: list[Part]) -> list[dict[str, Any]]:
    """One tool message per result; the results' images are added to `images`."""
    out: list[dict[str, Any]] = []
    for result in message.parts:
        if isinstance(result, ToolResult):
            text = result.text()
            if result.is_error:
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": result.call_id, "content": text})
            images.extend(part for part in result.content if isinstance(part, Image))
    return out


def _wire_tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _wire_choice(choice: ToolChoice) -> Any:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def _wire_format(value: ResponseFormat) -> dict[str, Any]:
    if value.kind == "json_schema" and value.schema is not None:
        spec = {"name": value.name or "response", "schema": value.schema}
        return {"type": "json_schema", "json_schema": spec}
    return {"type": "json_object" if value.kind == "json_schema" else value.kind}
