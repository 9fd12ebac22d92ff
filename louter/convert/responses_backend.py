"""Request -> the body louter sends to a Responses backend (`emit_request`).

Re-exported by `louter.convert.responses`.

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
  already flattened to functions (`responses_tools`), so a Responses backend sees
  functions too: its grammar constraint is lost, the answers map back all the same.
- `reasoning_effort` -> `reasoning.effort` ("none" is not sent: only some models take
  it); `response_format` -> `text.format` (json_schema with `strict: false`).
- No Responses equivalent, not sent: `stop`, `top_k`, `reasoning_budget`, and the
  presence / frequency penalties (`Dialect.drops`: the proxy notes those in the log).
"""

from __future__ import annotations

from typing import Any

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

__all__ = ["emit_request"]


def _input_part(part: Text | Image) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "input_text", "text": part.text}
    return {"type": "input_image", "image_url": part.data_url(), "detail": "auto"}


def _message(role: str, parts: tuple[Part, ...]) -> list[dict[str, Any]]:
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
            items += _message(message.role, message.parts)
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
    if request.reasoning_effort not in (None, "none"):
        body["reasoning"] = {"effort": request.reasoning_effort}
    if _reasons(request):
        body["include"] = ["reasoning.encrypted_content"]
    body["store"] = False
    if request.stream:
        body["stream"] = True
    return body
