"""Anthropic Messages requests to backends: Request -> a request body (`emit_request`).

Re-exported by `louter.convert.anthropic`; the client side is
`louter.convert.anthropic_request`.

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

from collections.abc import Callable
from typing import Any

from louter.convert.model import (
    Image,
    Message,
    Part,
    Reasoning,
    Request,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from louter.errors import ConversionError

__all__ = ["DEFAULT_MAX_TOKENS", "EFFORT_BUDGETS", "emit_request"]

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
EFFORT_BUDGETS = {"low": 1024, "medium": 2048, "high": 4096}


def _bad(path: str, problem: str) -> ConversionError:
    return ConversionError(f"{path}: {problem}", status_hint=400)


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
