"""The mock over the neutral model: how it speaks every dialect that has a converter.

A dialect's `parse_request` gives a neutral `Request`; `prompt_of` reads it as the mock's
`MockPrompt` (see `engine`); `response_of` and `stream_of` turn the `MockAnswer` into a
neutral `Response` / stream events for the dialect's emitter (`responder`). Text streams
in `split_text` pieces; tool-call arguments in `split_chars` fragments.
"""

from __future__ import annotations

from louter.convert.model import (
    Image,
    Message,
    MessageStart,
    MessageStop,
    Part,
    Request,
    Response,
    StreamEvent,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
)
from louter.mock.engine import (
    MockAnswer,
    MockPrompt,
    MockTool,
    count_words,
    split_chars,
    split_text,
)


def prompt_of(request: Request) -> MockPrompt:
    """A neutral request as the mock's prompt."""
    messages = request.messages
    last = messages[-1].role if messages else "user"
    user = next((m for m in reversed(messages) if m.role == "user"), None)
    choice = request.tool_choice
    return MockPrompt(
        last_role=last,
        user_text=" ".join(_texts(user.parts)) if user else "",
        tool_results=_trailing_results(messages),
        image_count=sum(_images(m.parts) for m in messages),
        prompt_tokens=sum(count_words(text) for m in messages for text in _texts(m.parts)),
        tools=tuple(MockTool(t.name, t.parameters) for t in request.tools),
        forced_tool=choice.name if choice and choice.mode == "tool" else None,
        tools_disabled=bool(choice and choice.mode == "none"),
        max_tokens=request.max_tokens,
        json_output=_wants_json(request),
        response_schema=request.response_format.schema if request.response_format else None,
    )


def _wants_json(request: Request) -> bool:
    return request.response_format is not None and request.response_format.kind != "text"


def _texts(parts: tuple[Part, ...]) -> list[str]:
    texts = []
    for part in parts:
        if isinstance(part, Text):
            texts.append(part.text)
        elif isinstance(part, ToolResult):
            texts.extend(p.text for p in part.content if isinstance(p, Text))
    return texts


def _images(parts: tuple[Part, ...]) -> int:
    count = 0
    for part in parts:
        if isinstance(part, Image):
            count += 1
        elif isinstance(part, ToolResult):
            count += sum(isinstance(p, Image) for p in part.content)
    return count


def _trailing_results(messages: tuple[Message, ...]) -> tuple[str, ...]:
    results: list[str] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        texts = [p.text() for p in message.parts if isinstance(p, ToolResult)]
        results[:0] = texts
    return tuple(results)


def _usage(answer: MockAnswer) -> Usage:
    return Usage(answer.prompt_tokens, answer.completion_tokens)


def _calls(answer: MockAnswer) -> list[ToolCall]:
    return [ToolCall(c.id, c.name, c.arguments) for c in answer.tool_calls]


def response_of(answer: MockAnswer, *, response_id: str, model: str) -> Response:
    parts: list[Part] = [Text(answer.text)] if answer.text else []
    parts.extend(_calls(answer))
    return Response(response_id, model, tuple(parts), answer.finish_reason, _usage(answer))


def stream_of(answer: MockAnswer, *, response_id: str, model: str) -> list[StreamEvent]:
    events: list[StreamEvent] = [MessageStart(response_id, model)]
    events.extend(TextDelta(piece) for piece in split_text(answer.text) if piece)
    for index, call in enumerate(_calls(answer)):
        events.append(ToolCallStart(index, call.id, call.name))
        events.extend(ToolCallDelta(index, piece) for piece in split_chars(call.arguments))
        events.append(ToolCallEnd(index))
    events.append(MessageStop(answer.finish_reason, _usage(answer)))
    return events
