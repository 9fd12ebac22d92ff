"""Anthropic Messages requests from clients: a request body -> Request (`parse_request`).

The opposite direction (Request -> the body
louter sends to an Anthropic backend) is `emit_request` below. Errors in a
client's body raise ConversionError(400) naming the place:
"messages[3].content[1].tool_use_id: ...".

Decisions, client -> neutral (`parse_request`)
- `system` (a string or text blocks) becomes the first message, role "system", one Text
  per block. `role: "system"` entries inside `messages` stay in place as system messages.
  A message whose content is empty (`[]`) carries nothing and is left out.
- A user message's `tool_result` blocks become one message of role "tool", placed before
  a user message holding the rest of its blocks. A result's function name is that of the
  earlier `tool_use` with the same id (matched by id, never by position); an id no earlier
  `tool_use` has is an error.
- Blocks with no neutral form: `document` with a `text` or `content` source becomes Text
  (and Images; the title, when given, leads the text); a PDF or file `document`, a file
  image, server-tool blocks (`server_tool_use`, `*_tool_result`, `mcp_*`,
  `container_upload`) and unknown types raise ConversionError naming the type.
  `search_result` becomes Text (title, source, then its text); a `tool_reference` in a
  tool result becomes Text holding the tool's name.
- Tools: custom tools (no `type`, or `type: "custom"`) are kept, `defer_loading` ignored;
  Anthropic-defined tools (`web_search_…`, `bash_…`, `text_editor_…`, `mcp_toolset`...)
  have no schema to pass on and are dropped.
- `tool_choice` auto/any/tool/none -> auto/required/tool/none;
  `disable_parallel_tool_use: true` -> `parallel_tool_calls = False` (false leaves None).
- `thinking` enabled -> reasoning_budget; disabled -> budget 0 and effort "none";
  adaptive -> no budget. `output_config.effort` -> reasoning_effort (xhigh and max ->
  "high"). `output_config.format` (or the older top-level `output_format`) json_schema ->
  ResponseFormat.
- Accepted and ignored: `metadata`, `cache_control` and `citations` anywhere,
  `context_management`, `service_tier`, `container`, `mcp_servers`, `display`.
- `max_tokens` is optional here (count_tokens bodies have none).

Anthropic Messages requests to backends: Request -> a request body (`emit_request`).

The client side is
`louter.convert.request`.

Decisions
- `max_tokens`: the request's, else DEFAULT_MAX_TOKENS (the API requires it).
- Every system message, wherever it stands, goes into `system`, in order: a string when
  there is one text, else text blocks. The API has no system role inside `messages`
  (outside a beta), and a system instruction stays a system instruction; its position
  is lost.
- Tool messages become user messages of `tool_result` blocks (`content` a string, or
  blocks when it holds images; `is_error` only when set); consecutive messages of the
  same role are merged (the API requires alternation), with tool results first.
- Reasoning with a signature goes back as `thinking`, redacted reasoning as
  `redacted_thinking`; unsigned reasoning is dropped (the API rejects it). Empty text
  parts are dropped (the API rejects empty text blocks).
- A thinking budget (or an effort mapped through EFFORT_BUDGETS) becomes
  `thinking: {type: enabled, budget_tokens}`, at least 1024 and below max_tokens (left
  out when max_tokens leaves no room). With thinking on, `temperature`, `top_p` and
  `top_k` are left out: the API accepts only its defaults then.
- `response_format` json_schema -> `output_config.format`; json_object has no Messages
  equivalent and is dropped (no invented prompt text).
- `tool_choice` is sent only with tools; `parallel_tool_calls = False` ->
  `disable_parallel_tool_use: true`.
- The presence / frequency penalties have no Messages equivalent and are not sent
  (`Dialect.drops`: the proxy notes them in the log).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from louter.convert.fields import array as _array
from louter.convert.fields import bad_request as _bad
from louter.convert.fields import join as _join
from louter.convert.fields import mapping as _mapping
from louter.convert.fields import option as _option
from louter.convert.fields import string as _string
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
from louter.errors import ConversionError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "EFFORT_BUDGETS",
    "emit_request",
    "parse_count_request",
    "parse_request",
]

# --------------------------------------------------------------------------- validation


# --------------------------------------------------------------------------- parse: blocks

_BlockParser = Callable[["_Conversation", Mapping[str, Any], str], list[Part]]


def _text_block(conv: _Conversation, block: Mapping[str, Any], path: str) -> list[Part]:
    return [Text(_string(block, "text", path))]


def _image_block(conv: _Conversation, block: Mapping[str, Any], path: str) -> list[Part]:
    source = _mapping(block.get("source"), _join(path, "source"))
    kind = source.get("type")
    if kind == "base64":
        path = _join(path, "source")
        return [Image(_string(source, "media_type", path), _string(source, "data", path))]
    if kind == "url":
        return [Image.from_url(_string(source, "url", _join(path, "source")))]
    raise _bad(_join(path, "source.type"), f"image source {kind!r} cannot be converted")


def _document_block(conv: _Conversation, block: Mapping[str, Any], path: str) -> list[Part]:
    source = _mapping(block.get("source"), _join(path, "source"))
    title = _option(block, "title", "a string", path)
    kind = source.get("type")
    if kind == "text":
        text = _string(source, "data", _join(path, "source"))
        return [Text(f"{title}\n\n{text}" if title else text)]
    if kind == "content":
        parts = _tool_result_content(conv, source.get("content"), _join(path, "source.content"))
        return [Text(title), *parts] if title else list(parts)
    raise _bad(_join(path, "source.type"), f"document source {kind!r} cannot be converted")


def _search_result_block(conv: _Conversation, block: Mapping[str, Any], path: str) -> list[Part]:
    head = [_string(block, "title", path), _string(block, "source", path)]
    content = _array(block.get("content"), _join(path, "content"))
    texts = [
        _string(_mapping(item, f"{path}.content[{i}]"), "text", f"{path}.content[{i}]")
        for i, item in enumerate(content)
    ]
    return [Text("\n\n".join([*head, "\n".join(texts)]))]


def _tool_reference_block(conv: _Conversation, block: Mapping[str, Any], path: str) -> list[Part]:
    return [Text(_string(block, "tool_name", path))]


def _tool_use_block(conv: _Conversation, block: Mapping[str, Any], path: str) -> list[Part]:
    call_id, name = _string(block, "id", path), _string(block, "name", path)
    arguments = _mapping(block.get("input", {}), _join(path, "input"))
    conv.calls[call_id] = name
    return [ToolCall(call_id, name, dump_arguments(arguments))]


def _tool_result_block(conv: _Conversation, block: Mapping[str, Any], path: str) -> list[Part]:
    call_id = _string(block, "tool_use_id", path)
    name = conv.calls.get(call_id)
    if name is None:
        raise _bad(_join(path, "tool_use_id"), f"{call_id!r} matches no earlier tool_use block")
    content = _tool_result_content(conv, block.get("content"), _join(path, "content"))
    is_error = bool(_option(block, "is_error", "a boolean", path))
    return [ToolResult(call_id, name, content, is_error)]


def _tool_result_content(conv: _Conversation, value: Any, path: str) -> tuple[Text | Image, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (Text(value),)
    parts = conv.blocks(_array(value, path), path, _RESULT_BLOCKS, "tool result")
    return tuple(part for part in parts if isinstance(part, Text | Image))


def _thinking_block(conv: _Conversation, block: Mapping[str, Any], path: str) -> list[Part]:
    signature = _option(block, "signature", "a string", path)
    return [Reasoning(_string(block, "thinking", path), signature or None)]


def _redacted_block(conv: _Conversation, block: Mapping[str, Any], path: str) -> list[Part]:
    return [Reasoning(redacted=_string(block, "data", path))]


_BLOCKS: dict[str, _BlockParser] = {
    "text": _text_block,
    "image": _image_block,
    "document": _document_block,
    "search_result": _search_result_block,
    "tool_reference": _tool_reference_block,
    "tool_use": _tool_use_block,
    "tool_result": _tool_result_block,
    "thinking": _thinking_block,
    "redacted_thinking": _redacted_block,
}


_ROLE_BLOCKS = {
    "user": frozenset({"text", "image", "document", "search_result", "tool_result"}),
    "assistant": frozenset({"text", "tool_use", "thinking", "redacted_thinking"}),
    "system": frozenset({"text"}),
}


_RESULT_BLOCKS = frozenset({"text", "image", "document", "search_result", "tool_reference"})


# --------------------------------------------------------------------------- parse: messages


class _Conversation:
    """The messages parsed so far, and the tool calls they made (id -> name)."""

    __slots__ = ("messages", "calls")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.calls: dict[str, str] = {}

    def add(self, value: Any, path: str) -> None:
        message = _mapping(value, path)
        role = message.get("role")
        allowed = _ROLE_BLOCKS.get(role) if isinstance(role, str) else None
        if allowed is None:
            raise _bad(_join(path, "role"), f"must be user, assistant or system, not {role!r}")
        assert isinstance(role, str)
        content, where = message.get("content"), _join(path, "content")
        parts: list[Part]
        if isinstance(content, str):
            parts = [Text(content)]
        else:
            parts = self.blocks(_array(content, where), where, allowed, f"{role} message")
        results = tuple(part for part in parts if isinstance(part, ToolResult))
        self._append("tool", results)
        self._append(role, tuple(part for part in parts if not isinstance(part, ToolResult)))

    def blocks(
        self, blocks: list[Any], path: str, allowed: frozenset[str], where: str
    ) -> list[Part]:
        parts: list[Part] = []
        for position, value in enumerate(blocks):
            block_path = f"{path}[{position}]"
            block = _mapping(value, block_path)
            kind = block.get("type")
            if not isinstance(kind, str) or kind not in allowed:
                problem = f"block type {kind!r} cannot be converted in a {where}"
                raise _bad(block_path, problem)
            parts += _BLOCKS[kind](self, block, block_path)
        return parts

    def _append(self, role: str, parts: tuple[Part, ...]) -> None:
        if parts:
            self.messages.append(Message(role, parts))


def _system(value: Any) -> list[Message]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [Message("system", (Text(value),))]
    parts = _Conversation().blocks(
        _array(value, "system"), "system", _ROLE_BLOCKS["system"], "system"
    )
    return [Message("system", tuple(parts))] if parts else []


def _messages(value: Any) -> list[Message]:
    conv = _Conversation()
    for position, message in enumerate(_array(value, "messages")):
        conv.add(message, f"messages[{position}]")
    return conv.messages


# --------------------------------------------------------------------------- parse: options


def _tools(value: Any) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for position, item in enumerate(_array(value, "tools") if value is not None else ()):
        path = f"tools[{position}]"
        tool = _mapping(item, path)
        if tool.get("type") not in (None, "custom"):
            continue  # an Anthropic-defined tool: no schema to pass on
        schema = _mapping(tool.get("input_schema"), _join(path, "input_schema"))
        description = _option(tool, "description", "a string", path) or ""
        tools.append(Tool(_string(tool, "name", path), description, dict(schema)))
    return tuple(tools)


_CHOICE_MODES = {"auto": "auto", "any": "required", "tool": "tool", "none": "none"}


def _tool_choice(value: Any) -> tuple[ToolChoice | None, bool | None]:
    """`tool_choice` -> (ToolChoice, parallel_tool_calls)."""
    if value is None:
        return None, None
    choice = _mapping(value, "tool_choice")
    mode = _CHOICE_MODES.get(_string(choice, "type", "tool_choice"))
    if mode is None:
        raise _bad("tool_choice.type", f"must be one of {', '.join(_CHOICE_MODES)}")
    name = _string(choice, "name", "tool_choice") if mode == "tool" else None
    disable = _option(choice, "disable_parallel_tool_use", "a boolean", "tool_choice")
    return ToolChoice(mode, name), (False if disable else None)


_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def _reasoning(body: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """`thinking` and `output_config.effort` -> (reasoning_budget, reasoning_effort)."""
    config = _mapping(body.get("output_config") or {}, "output_config")
    effort = _option(config, "effort", "a string", "output_config")
    if effort is not None and effort not in _EFFORTS:
        raise _bad("output_config.effort", f"must be one of {', '.join(_EFFORTS)}")
    effort = _EFFORTS.get(effort) if effort else None
    if body.get("thinking") is None:
        return None, effort
    thinking = _mapping(body["thinking"], "thinking")
    kind = _string(thinking, "type", "thinking")
    if kind == "enabled":
        budget = _option(thinking, "budget_tokens", "an integer", "thinking")
        if budget is None:
            raise _bad("thinking.budget_tokens", "is required when thinking is enabled")
        return budget, effort
    if kind == "disabled":
        return 0, "none"
    if kind == "adaptive":
        return None, effort
    raise _bad("thinking.type", "must be enabled, disabled or adaptive")


def _response_format(body: Mapping[str, Any]) -> ResponseFormat | None:
    config = _mapping(body.get("output_config") or {}, "output_config")
    path = "output_config.format" if config.get("format") is not None else "output_format"
    value = config.get("format") or body.get("output_format")
    if value is None:
        return None
    fmt = _mapping(value, path)
    if fmt.get("type") != "json_schema":
        raise _bad(_join(path, "type"), "must be json_schema")
    return ResponseFormat("json_schema", dict(_mapping(fmt.get("schema"), _join(path, "schema"))))


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    sequences = _array(value, "stop_sequences")
    for position, item in enumerate(sequences):
        if not isinstance(item, str):
            raise _bad(f"stop_sequences[{position}]", "must be a string")
    return tuple(sequences)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_request(body: Mapping[str, Any]) -> Request:
    """A client's Messages request body (or count_tokens body) -> Request.

    Raises:
        ConversionError: (400) the body is malformed or holds a block with no neutral form.
    """
    body = _mapping(body, "request body")
    choice, parallel = _tool_choice(body.get("tool_choice"))
    budget, effort = _reasoning(body)
    return Request(
        model=_string(body, "model", ""),
        messages=(*_system(body.get("system")), *_messages(body.get("messages"))),
        tools=_tools(body.get("tools")),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        max_tokens=_option(body, "max_tokens", "an integer"),
        temperature=_float(_option(body, "temperature", "a number")),
        top_p=_float(_option(body, "top_p", "a number")),
        top_k=_option(body, "top_k", "an integer"),
        stop=_stop_sequences(body.get("stop_sequences")),
        stream=bool(_option(body, "stream", "a boolean")),
        response_format=_response_format(body),
        reasoning_effort=effort,
        reasoning_budget=budget,
    )


def parse_count_request(body: Mapping[str, Any], *, model: str) -> Request:
    """A `/v1/messages/count_tokens` body (it carries no `max_tokens`) -> Request."""
    return parse_request({"max_tokens": 1, **body})


DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
EFFORT_BUDGETS = {"low": 1024, "medium": 2048, "high": 4096}


def _emit_text(part: Any) -> dict[str, Any] | None:
    return {"type": "text", "text": part.text} if part.text else None


def _emit_image(part: Any) -> dict[str, Any]:
    if part.data is not None:
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
    else:
        source = {"type": "url", "url": part.url or ""}
    return {"type": "image", "source": source}


def _emit_tool_call(part: Any) -> dict[str, Any]:
    try:
        arguments = part.arguments_object()
    except ConversionError as exc:  # the client sent these arguments: its error
        raise ConversionError(exc.message, status_hint=400) from None
    return {"type": "tool_use", "id": part.id, "name": part.name, "input": arguments}


def _emit_tool_result(part: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id}
    if any(isinstance(item, Image) for item in part.content):
        block["content"] = [b for item in part.content if (b := _emit_part(item)) is not None]
    elif part.content:
        block["content"] = part.text()
    if part.is_error:
        block["is_error"] = True
    return block


def _emit_reasoning(part: Any) -> dict[str, Any] | None:
    if part.redacted is not None:
        return {"type": "redacted_thinking", "data": part.redacted}
    if not part.signature:
        return None  # unsigned reasoning is rejected by the API
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


_PART_EMITTERS: dict[type, Callable[[Any], dict[str, Any] | None]] = {
    Text: _emit_text,
    Image: _emit_image,
    ToolCall: _emit_tool_call,
    ToolResult: _emit_tool_result,
    Reasoning: _emit_reasoning,
}


_WIRE_ROLES = {"user": "user", "tool": "user", "assistant": "assistant"}


def _emit_part(part: Part) -> dict[str, Any] | None:
    return _PART_EMITTERS[type(part)](part)


def _emit_system(messages: tuple[Message, ...]) -> str | list[dict[str, Any]] | None:
    texts = [
        part.text
        for message in messages
        if message.role == "system"
        for part in message.parts
        if isinstance(part, Text) and part.text
    ]
    if len(texts) <= 1:
        return texts[0] if texts else None
    return [{"type": "text", "text": text} for text in texts]


def _emit_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for position, message in enumerate(messages):
        if message.role == "system":
            continue
        role = _WIRE_ROLES.get(message.role)
        if role is None:
            raise _bad(f"messages[{position}].role", f"{message.role!r} has no Messages form")
        blocks = [block for part in message.parts if (block := _emit_part(part)) is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            merged = out[-1]["content"] + blocks
            out[-1]["content"] = sorted(merged, key=lambda b: b["type"] != "tool_result")
        else:
            out.append({"role": role, "content": blocks})
    return out


def _emit_tool(tool: Tool) -> dict[str, Any]:
    schema = {"type": "object", "properties": {}} if not tool.parameters else tool.parameters
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = schema if "type" in schema else {"type": "object", **schema}
    return out


def _emit_tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None:
        return {"type": "auto", "disable_parallel_tool_use": True} if parallel is False else None
    kind = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}.get(choice.mode)
    if kind is None:
        raise _bad("tool_choice", f"mode {choice.mode!r} has no Messages form")
    out: dict[str, Any] = {"type": kind}
    if kind == "tool":
        out["name"] = choice.name or ""
    if parallel is False and kind != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _thinking_budget(request: Request, max_tokens: int) -> int | None:
    budget = request.reasoning_budget
    if budget is None or budget < 0:  # none given, or "dynamic" (-1): ask by effort
        budget = EFFORT_BUDGETS.get(request.reasoning_effort or "")
        if budget is None and request.reasoning_budget is not None:
            budget = EFFORT_BUDGETS["medium"]
    if not budget:
        return None
    budget = max(budget, MIN_THINKING_BUDGET)
    if budget < max_tokens:
        return budget
    return max_tokens - 1 if max_tokens > MIN_THINKING_BUDGET else None


def _emit_options(request: Request, max_tokens: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    budget = _thinking_budget(request, max_tokens)
    if budget is not None:
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        sampling = (("temperature", request.temperature), ("top_p", request.top_p))
        out.update((key, value) for key, value in sampling if value is not None)
        if request.top_k is not None:
            out["top_k"] = request.top_k
    if request.stop:
        out["stop_sequences"] = list(request.stop)
    fmt = request.response_format
    if fmt is not None and fmt.kind == "json_schema" and fmt.schema is not None:
        out["output_config"] = {"format": {"type": "json_schema", "schema": fmt.schema}}
    if request.stream:
        out["stream"] = True
    return out


def emit_request(request: Request, model: str) -> dict[str, Any]:
    """Request -> a Messages request body for a backend serving `model`.

    Raises:
        ConversionError: (400) tool-call arguments that are not a JSON object, or a role
            or tool choice with no Messages form.
    """
    max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    system = _emit_system(request.messages)
    if system is not None:
        body["system"] = system
    body["messages"] = _emit_messages(request.messages)
    if request.tools:
        body["tools"] = [_emit_tool(tool) for tool in request.tools]
        choice = _emit_tool_choice(request.tool_choice, request.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice
    body.update(_emit_options(request, max_tokens))
    return body
