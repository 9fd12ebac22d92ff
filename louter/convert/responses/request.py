"""Responses requests from clients: a `/v1/responses` body -> Request (`parse_request`).

Tools live in `tools`, the opposite
direction (Request -> a Responses backend's body) in `emit_request` below. Errors in a
client's body raise ConversionError(400) naming the place: "input[3].content[1]: ...".

Decisions, client -> neutral
- `instructions` becomes the first message, role "system". `input` is a string (one
  user message) or a list of items, dispatched on `type` (an item with a `role` and no
  `type` is a message).
- Messages: roles user, system and developer (-> "system"), assistant. Content is a
  string or parts: `input_text` (every role), `output_text` and `refusal` (assistant),
  `input_image` with an `image_url` (user; a `file_id` is a 400: louter has no file
  store); `input_file`, `input_audio` and unknown parts are 400s. Empty texts are left out.
- Consecutive assistant-side items (assistant messages, `function_call`,
  `custom_tool_call`, `reasoning`) make one assistant message, and consecutive outputs
  one "tool" message: a backend sees one turn with all its calls, then all the results.
- `function_call` {call_id, name, arguments, namespace?} -> ToolCall(call_id, neutral
  name); `custom_tool_call` {call_id, name, input} -> ToolCall with arguments
  `{"input": ...}`. A namespaced tool's short name sent without its namespace is
  resolved (`tools.ToolNames`). `function_call_output` /
  `custom_tool_call_output` {call_id, output: a string, input_text / input_image parts
  or null} -> ToolResult named after the earlier call with that `call_id` (matched by
  id; an unknown id is a 400).
- `reasoning` items -> Reasoning: the summary texts (then any `reasoning_text` content)
  joined by blank lines; `encrypted_content` -> `redacted`, or `signature` when louter
  put one there (`wire`). It reaches only backends that can take it.
- Items of server-side tools (`web_search_call`, `file_search_call`,
  `code_interpreter_call`, `image_generation_call`, `tool_search_call`,
  `tool_search_output`) are dropped with their tools. `item_reference` and every other
  item type are 400s.
- `previous_response_id`, `conversation`, `prompt` (stored prompts) and `background:
  true` are 400s: louter keeps no state. `store`, `include`, `prompt_cache_key`,
  `client_metadata`, `metadata`, `safety_identifier`, `user`, `service_tier`,
  `truncation`, `stream_options`, `max_tool_calls`, `top_logprobs` and
  `reasoning.summary` / `text.verbosity` are accepted and not passed on.
- `reasoning.effort`: none / low / medium / high as such, minimal -> low, xhigh and max
  -> high. `text.format` text / json_object / json_schema -> ResponseFormat.
  `max_output_tokens` -> max_tokens.

Request -> the body louter sends to a Responses backend (`emit_request`).

Decisions, neutral -> backend
- Always stateless: `store: false`, the whole conversation in `input`. System messages
  stay in place as `role: "system"` messages (no `instructions`).
- Assistant parts become items in their order: runs of text one `message` with
  `output_text` parts, each ToolCall a `function_call`, a Reasoning with opaque data
  (`redacted`) a `reasoning` item with its text as the summary and `encrypted_content`.
  Reasoning without such data is dropped: the API accepts reasoning input only as its
  own encrypted content. `include: ["reasoning.encrypted_content"]` is asked for when the
  request reasons (an effort other than "none") or the history carries such data.
- Each ToolResult is a `function_call_output`: its text as a string, or `input_text` /
  `input_image` parts when it holds several parts or images. The API has no error flag:
  an error result is prefixed "Error:".
- Tools go as flat function tools with `strict: false` (the API defaults function tools
  to strict, which rejects most client schemas). Custom and namespace tools arrive here
  already flattened to functions (`tools`), so a Responses backend sees
  functions too: its grammar constraint is lost, the answers map back all the same.
- `reasoning_effort` -> `reasoning.effort` ("none" is sent only when asked as such,
  `Request.effort_source`: only some models take it); `response_format` -> `text.format`
  (json_schema with `strict: false`).
- No Responses equivalent, not sent: `stop`, `top_k`, `reasoning_budget`, and the
  presence / frequency penalties (`Dialect.drops`: the proxy notes those in the log).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from louter.convert.fields import array, bad_request, join, mapping, option, string
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
    dump_arguments,
)
from louter.convert.responses.tools import ToolNames, parse_tool_choice, parse_tools
from louter.convert.responses.wire import custom_arguments, reasoning_part

__all__ = ["emit_request", "parse_request"]

_NO_STATE = "louter keeps no state: send the whole conversation in `input` (with store: false)"


# --------------------------------------------------------------------------- content parts


def _text_part(part: Mapping[str, Any], path: str) -> list[Text | Image]:
    text = string(part, "text", path)
    return [Text(text)] if text else []


def _refusal_part(part: Mapping[str, Any], path: str) -> list[Text | Image]:
    text = string(part, "refusal", path)
    return [Text(text)] if text else []


def _image_part(part: Mapping[str, Any], path: str) -> list[Text | Image]:
    url = part.get("image_url")
    if isinstance(url, str) and url:
        return [Image.from_url(url)]
    if part.get("file_id") is not None:
        raise bad_request(join(path, "file_id"), "images by file_id cannot be converted")
    raise bad_request(join(path, "image_url"), "must be a URL")


_PartParser = Callable[[Mapping[str, Any], str], list[Text | Image]]
_PARTS: dict[str, _PartParser] = {
    "input_text": _text_part,
    "output_text": _text_part,
    "refusal": _refusal_part,
    "input_image": _image_part,
}


_ROLE_PARTS: dict[str, tuple[str, frozenset[str]]] = {  # wire role -> (neutral role, parts)
    "user": ("user", frozenset({"input_text", "input_image"})),
    "system": ("system", frozenset({"input_text"})),
    "developer": ("system", frozenset({"input_text"})),
    "assistant": ("assistant", frozenset({"input_text", "output_text", "refusal"})),
}


_RESULT_PARTS = frozenset({"input_text", "input_image"})


def _content(value: Any, path: str, allowed: frozenset[str]) -> list[Text | Image]:
    """A string or a list of content parts (or null) -> Text and Image parts."""
    if value is None:
        return []
    if isinstance(value, str):
        return [Text(value)] if value else []
    parts: list[Text | Image] = []
    for position, item in enumerate(array(value, path)):
        where = f"{path}[{position}]"
        part = mapping(item, where)
        kind = part.get("type")
        if not isinstance(kind, str) or kind not in allowed:
            raise bad_request(
                join(where, "type"), f"content part {kind!r} cannot be converted here"
            )
        parts += _PARTS[kind](part, where)
    return parts


# --------------------------------------------------------------------------- input items


class _Conversation:
    """The messages read so far; the open assistant or tool message grows while items of
    its side follow each other. `calls` maps call ids to neutral tool names."""

    __slots__ = ("names", "messages", "calls", "_role", "_parts")

    def __init__(self, names: ToolNames) -> None:
        self.names = names
        self.messages: list[Message] = []
        self.calls: dict[str, str] = {}
        self._role: str | None = None
        self._parts: list[Part] = []

    def add(self, role: str, parts: list[Part], merge: bool = True) -> None:
        if not (merge and role == self._role):
            self.close()
            self._role = role
        self._parts += parts

    def close(self) -> None:
        if self._role is not None and self._parts:
            self.messages.append(Message(self._role, tuple(self._parts)))
        self._role, self._parts = None, []

    def result(self, call_id: str, output: Any, path: str) -> None:
        name = self.calls.get(call_id)
        if name is None:
            raise bad_request(join(path, "call_id"), f"{call_id!r} matches no earlier tool call")
        content = _content(output, join(path, "output"), _RESULT_PARTS)
        self.add("tool", [ToolResult(call_id, name, tuple(content))])


def _message(conv: _Conversation, item: Mapping[str, Any], path: str) -> None:
    role = item.get("role")
    entry = _ROLE_PARTS.get(role) if isinstance(role, str) else None
    if entry is None:
        raise bad_request(join(path, "role"), f"must be one of {', '.join(_ROLE_PARTS)}")
    neutral, allowed = entry
    parts: list[Part] = list(_content(item.get("content"), join(path, "content"), allowed))
    conv.add(neutral, parts, merge=neutral == "assistant")


def _call_name(conv: _Conversation, item: Mapping[str, Any], path: str) -> tuple[str, str]:
    """(call_id, neutral name) of a call item, remembered for its output."""
    call_id = string(item, "call_id", path)
    namespace = option(item, "namespace", "a string", path)
    name = conv.names.neutral(string(item, "name", path), namespace)
    conv.calls[call_id] = name
    return call_id, name


def _function_call(conv: _Conversation, item: Mapping[str, Any], path: str) -> None:
    call_id, name = _call_name(conv, item, path)
    arguments = item.get("arguments")
    if arguments is None:
        arguments = "{}"
    elif not isinstance(arguments, str):
        arguments = dump_arguments(mapping(arguments, join(path, "arguments")))
    conv.add("assistant", [ToolCall(call_id, name, arguments)])


def _custom_call(conv: _Conversation, item: Mapping[str, Any], path: str) -> None:
    call_id, name = _call_name(conv, item, path)
    conv.add("assistant", [ToolCall(call_id, name, custom_arguments(string(item, "input", path)))])


def _call_output(conv: _Conversation, item: Mapping[str, Any], path: str) -> None:
    conv.result(string(item, "call_id", path), item.get("output"), path)


def _texts(value: Any, path: str) -> list[str]:
    """The `text` of each entry of a reasoning item's `summary` or `content`."""
    if value is None:
        return []
    entries = array(value, path)
    return [
        string(mapping(e, f"{path}[{i}]"), "text", f"{path}[{i}]") for i, e in enumerate(entries)
    ]


def _reasoning(conv: _Conversation, item: Mapping[str, Any], path: str) -> None:
    texts = _texts(item.get("summary"), join(path, "summary"))
    texts += _texts(item.get("content"), join(path, "content"))
    encrypted = option(item, "encrypted_content", "a string", path)
    text = "\n\n".join(t for t in texts if t)
    if text or encrypted is not None:
        conv.add("assistant", [reasoning_part(text, encrypted)])


def _dropped(conv: _Conversation, item: Mapping[str, Any], path: str) -> None:
    """An item of a server-side tool: dropped along with its tool."""


def _reference(conv: _Conversation, item: Mapping[str, Any], path: str) -> None:
    raise bad_request(path, f"item_reference cannot be resolved: {_NO_STATE}")


_ItemParser = Callable[[_Conversation, Mapping[str, Any], str], None]
_ITEMS: dict[str, _ItemParser] = {
    "message": _message,
    "function_call": _function_call,
    "custom_tool_call": _custom_call,
    "function_call_output": _call_output,
    "custom_tool_call_output": _call_output,
    "reasoning": _reasoning,
    "item_reference": _reference,
    "web_search_call": _dropped,
    "file_search_call": _dropped,
    "code_interpreter_call": _dropped,
    "image_generation_call": _dropped,
    "tool_search_call": _dropped,
    "tool_search_output": _dropped,
}


def _input(value: Any, names: ToolNames) -> list[Message]:
    if isinstance(value, str):
        return [Message("user", (Text(value),))] if value else []
    conv = _Conversation(names)
    for position, entry in enumerate(array(value, "input")):
        path = f"input[{position}]"
        item = mapping(entry, path)
        kind = item.get("type", "message" if "role" in item else None)
        parse = _ITEMS.get(kind) if isinstance(kind, str) else None
        if parse is None:
            raise bad_request(join(path, "type"), f"input item type {kind!r} cannot be converted")
        parse(conv, item, path)
    conv.close()
    return conv.messages


# --------------------------------------------------------------------------- options

_EFFORTS = {
    "none": "none",
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}


def _effort(value: Any) -> str | None:
    if value is None:
        return None
    effort = option(mapping(value, "reasoning"), "effort", "a string", "reasoning")
    if effort is not None and effort not in _EFFORTS:
        raise bad_request("reasoning.effort", f"must be one of {', '.join(_EFFORTS)}")
    return _EFFORTS[effort] if effort is not None else None


def _text_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    fmt = mapping(value, "text").get("format")
    if fmt is None:
        return None
    fmt = mapping(fmt, "text.format")
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(str(kind))
    if kind == "json_schema":
        schema = dict(mapping(fmt.get("schema"), "text.format.schema"))
        return ResponseFormat("json_schema", schema, option(fmt, "name", "a string", "text.format"))
    raise bad_request("text.format.type", "must be text, json_object or json_schema")


def _refuse_state(body: Mapping[str, Any]) -> None:
    for key in ("previous_response_id", "conversation", "prompt"):
        if body.get(key) is not None:
            raise bad_request(key, f"is not supported: {_NO_STATE}")
    if option(body, "background", "a boolean"):
        raise bad_request("background", f"is not supported: {_NO_STATE}")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_request(body: Mapping[str, Any]) -> Request:
    """A client's Responses request body -> Request.

    Raises:
        ConversionError: (400) the body is malformed, needs stored state, or holds an
            item or part with no neutral form.
    """
    body = mapping(body, "request body")
    _refuse_state(body)
    if body.get("input") is None:
        raise bad_request("input", "is required")
    instructions = option(body, "instructions", "a string")
    system = [Message("system", (Text(instructions),))] if instructions else []
    tools, kinds = parse_tools(body.get("tools"))
    names = ToolNames(tools, kinds)
    model = string(body, "model", "")
    if not model:
        raise bad_request("model", "must not be empty")
    return Request(
        model=model,
        messages=(*system, *_input(body["input"], names)),
        tools=tools,
        tool_choice=parse_tool_choice(body.get("tool_choice"), names),
        parallel_tool_calls=option(body, "parallel_tool_calls", "a boolean"),
        max_tokens=option(body, "max_output_tokens", "an integer"),
        temperature=_float(option(body, "temperature", "a number")),
        top_p=_float(option(body, "top_p", "a number")),
        stream=bool(option(body, "stream", "a boolean")),
        response_format=_text_format(body.get("text")),
        reasoning_effort=_effort(body.get("reasoning")),
    )


def _input_part(part: Text | Image) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "input_text", "text": part.text}
    return {"type": "input_image", "image_url": part.data_url(), "detail": "auto"}


def _message_item(role: str, parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    content = [_input_part(part) for part in parts if isinstance(part, Text | Image)]
    return [{"type": "message", "role": role, "content": content}] if content else []


def _assistant(message: Message) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, Text):
            if part.text:
                texts.append({"type": "output_text", "text": part.text, "annotations": []})
            continue
        if texts:
            items.append({"type": "message", "role": "assistant", "content": texts})
            texts = []
        item = _assistant_item(part)
        if item is not None:
            items.append(item)
    if texts:
        items.append({"type": "message", "role": "assistant", "content": texts})
    return items


def _assistant_item(part: Part) -> dict[str, Any] | None:
    if isinstance(part, ToolCall):
        return {
            "type": "function_call",
            "call_id": part.id,
            "name": part.name,
            "arguments": part.arguments,
        }
    if isinstance(part, Reasoning) and part.redacted is not None:
        summary = [{"type": "summary_text", "text": part.text}] if part.text else []
        return {"type": "reasoning", "summary": summary, "encrypted_content": part.redacted}
    return None


def _output(result: ToolResult) -> str | list[dict[str, Any]]:
    """One text (or none) is a string; several parts, or any image, a list of parts."""
    texts = [part.text for part in result.content if isinstance(part, Text)]
    if len(texts) == len(result.content) <= 1:
        return ("Error: " if result.is_error else "") + "".join(texts)
    head = [{"type": "input_text", "text": "Error:"}] if result.is_error else []
    return head + [_input_part(part) for part in result.content]


def _results(message: Message) -> list[dict[str, Any]]:
    return [
        {"type": "function_call_output", "call_id": result.call_id, "output": _output(result)}
        for result in message.parts
        if isinstance(result, ToolResult)
    ]


def _items(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "assistant":
            items += _assistant(message)
        elif message.role == "tool":
            items += _results(message)
        else:
            items += _message_item(message.role, message.parts)
    return items


def _tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function", "name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["parameters"] = tool.parameters or {"type": "object", "properties": {}}
    out["strict"] = False
    return out


def _choice(choice: ToolChoice) -> Any:
    return {"type": "function", "name": choice.name} if choice.mode == "tool" else choice.mode


def _format(value: ResponseFormat) -> dict[str, Any]:
    if value.kind == "json_schema" and value.schema is not None:
        name = value.name or "response"
        return {"type": "json_schema", "name": name, "schema": value.schema, "strict": False}
    return {"type": "json_object" if value.kind == "json_schema" else value.kind}


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


def _reasons(request: Request) -> bool:
    if request.reasoning_effort not in (None, "none"):
        return True
    return any(
        isinstance(part, Reasoning) and part.redacted is not None
        for message in request.messages
        for part in message.parts
    )


def emit_request(request: Request, model: str) -> dict[str, Any]:
    """Request -> a Responses body for a backend serving `model` (see the module
    docstring for what is kept and what is dropped)."""
    body: dict[str, Any] = {"model": model, "input": _items(request.messages)}
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _choice(request.tool_choice)
        _set(body, "parallel_tool_calls", request.parallel_tool_calls)
    _set(body, "max_output_tokens", request.max_tokens)
    _set(body, "temperature", request.temperature)
    _set(body, "top_p", request.top_p)
    if request.response_format is not None and request.response_format.kind != "text":
        body["text"] = {"format": _format(request.response_format)}
    effort = request.reasoning_effort
    if effort is not None and (effort != "none" or request.effort_source is not None):
        body["reasoning"] = {"effort": effort}
    if _reasons(request):
        body["include"] = ["reasoning.encrypted_content"]
    body["store"] = False
    if request.stream:
        body["stream"] = True
    return body
