"""The neutral model: what every dialect parses into and emits from (design §1, §6).

A conversion is `emit_B(parse_A(x))`; no dialect knows another. Everything here is a
frozen dataclass; wire data stays plain dicts at the dialect modules' edges.

Requests
    `Request` holds the conversation as `Message`s in order. System text is a message of
    role "system" wherever the client put it (Anthropic's `system` and Gemini's
    `systemInstruction` become the first message; OpenAI and Anthropic may have more
    later). Roles: "system", "user", "assistant", "tool" (a message of `ToolResult`s).

Parts
    `Text`, `Image`, `ToolCall`, `ToolResult`, `Reasoning`. `ToolCall.arguments` is JSON
    text (what OpenAI carries and what streams deliver piecewise); `arguments_object()`
    parses it for the dialects that need an object. `signature` fields carry opaque
    provider tokens (Gemini `thoughtSignature`, Anthropic thinking `signature`) so a
    same-provider round trip keeps them.

Responses and streams
    `Response` is one assistant turn. A stream is a sequence of `StreamEvent`s with this
    contract, which every `StreamParser` guarantees and every `StreamEmitter` relies on:

    MessageStart                          exactly once, first
    (TextDelta | ReasoningDelta |
     ToolCallStart ToolCallDelta* ToolCallEnd | Usage)*
    MessageStop | StreamError             exactly once, last

    Tool calls are numbered 0, 1, 2... in order of appearance (`index`); a call's deltas
    follow its start and precede its end; calls may interleave only in that order.
    `Usage` may come any time; the last one wins (`MessageStop.usage` too).

Finish reasons are one closed set: FINISH_REASONS. "error" is never reported as a stop.

Per dialect (`louter.convert.<dialect>`), the same surface:
    parse_request(body) -> Request              client wire -> neutral (ConversionError 400)
    emit_request(request, model) -> dict        neutral -> backend wire
    parse_response(body, ids) -> Response       backend wire -> neutral (ConversionError 502)
    emit_response(response, meta) -> dict       neutral -> client wire
    StreamParser(ids).feed(SSEEvent) / .flush() -> list[StreamEvent]
    StreamEmitter(meta).feed(StreamEvent) / .flush() -> bytes
    error_body(status, message) -> dict         the dialect's error envelope
    error_message(body: bytes) -> str           the message inside an upstream error body
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from louter.errors import ConversionError

FINISH_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "error"})

# --------------------------------------------------------------------------- parts


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    signature: str | None = None  # Gemini thoughtSignature on a text part


@dataclass(frozen=True, slots=True)
class Image:
    """An image: inline base64 `data` with its `media_type`, or a `url` (http or data:)."""

    media_type: str = "image/png"
    data: str | None = None
    url: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Image:
        """An image from a URL; a `data:<type>;base64,<data>` URL becomes inline data."""
        if url.startswith("data:"):
            header, comma, data = url[5:].partition(",")
            media_type, _, encoding = header.partition(";")
            if comma and encoding == "base64":
                return cls(media_type=media_type or "image/png", data=data)
        return cls(url=url)

    def data_url(self) -> str:
        """The image as one URL: its own, or a `data:` URL built from the inline bytes."""
        if self.data is not None:
            return f"data:{self.media_type};base64,{self.data}"
        return self.url or ""


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str = "{}"  # JSON text
    signature: str | None = None  # Gemini thoughtSignature

    def arguments_object(self) -> dict[str, Any]:
        """The arguments as a JSON object; ConversionError (502) when they are not one."""
        return arguments_object(self.arguments, self.name)


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    name: str  # the called function's real name
    content: tuple[Text | Image, ...] = ()
    is_error: bool = False

    def text(self) -> str:
        return "\n".join(part.text for part in self.content if isinstance(part, Text))


@dataclass(frozen=True, slots=True)
class Reasoning:
    text: str = ""
    signature: str | None = None  # Anthropic thinking signature, Gemini thoughtSignature
    redacted: str | None = None  # opaque data (Anthropic redacted_thinking, encrypted content)


Part = Text | Image | ToolCall | ToolResult | Reasoning


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant" | "tool"
    parts: tuple[Part, ...]

    def text(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, Text))


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)  # JSON schema, lower-case types


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: str  # "auto" | "none" | "required" | "tool"
    name: str | None = None  # with mode "tool"


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    kind: str  # "text" | "json_object" | "json_schema"
    schema: dict[str, Any] | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None  # OpenAI and Gemini only (`record.PENALTIES`)
    frequency_penalty: float | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False  # OpenAI stream_options.include_usage
    response_format: ResponseFormat | None = None
    reasoning_effort: str | None = None  # "low" | "medium" | "high" | "none"
    reasoning_budget: int | None = None  # thinking token budget (0 = off)
    # Who asked `reasoning_effort` as such: "client" (a Chat Completions client's own
    # field) or "operator" (an override); None when derived from another dialect's
    # thinking settings. Only an effort asked as such reaches a Chat Completions backend
    # (models that do not reason reject the field), and "none" a Responses backend.
    effort_source: str | None = None

    def tool(self, name: str) -> Tool | None:
        return next((tool for tool in self.tools if tool.name == name), None)


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Response:
    id: str
    model: str
    parts: tuple[Part, ...]
    finish_reason: str = "stop"
    usage: Usage | None = None

    def text(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, Text))

    def tool_calls(self) -> list[ToolCall]:
        return [part for part in self.parts if isinstance(part, ToolCall)]


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """What an emitter needs that the neutral answer does not carry: passed in, never read
    from a clock. `model` is the name the client asked for."""

    id: str
    model: str
    created: int
    include_usage: bool = False
    input_tokens: int = 0  # an estimate for dialects that announce usage up front
    legacy_functions: bool = False  # an OpenAI client that declared `functions`, not `tools`


# --------------------------------------------------------------------------- stream events


@dataclass(frozen=True, slots=True)
class MessageStart:
    id: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str = ""
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    index: int
    arguments: str  # a fragment of the JSON text


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    index: int


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    usage: Usage


@dataclass(frozen=True, slots=True)
class MessageStop:
    finish_reason: str
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class StreamError:
    message: str
    status: int = 502


StreamEvent = (
    MessageStart
    | TextDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageUpdate
    | MessageStop
    | StreamError
)

IdFactory = Callable[[int], str]  # n -> a fresh tool-call id, deterministic per response


# --------------------------------------------------------------------------- helpers


def arguments_object(arguments: str, name: str) -> dict[str, Any]:
    """Parse tool-call arguments JSON text into an object ("" counts as `{}`)."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise ConversionError(
            f"tool call {name!r} has arguments that are not valid JSON: {exc}", status_hint=502
        ) from None
    if not isinstance(value, dict):
        raise ConversionError(
            f"tool call {name!r} has arguments that are not a JSON object", status_hint=502
        )
    return value


def number_calls(parts: Iterable[Part], ids: IdFactory) -> tuple[Part, ...]:
    """The parts with every tool call lacking an id given `ids(n)`, n counting the calls."""
    calls = 0
    out: list[Part] = []
    for part in parts:
        if isinstance(part, ToolCall):
            if not part.id:
                part = dataclasses.replace(part, id=ids(calls))
            calls += 1
        out.append(part)
    return tuple(out)


def dump_arguments(value: Any) -> str:
    """Arguments object -> JSON text (the neutral form)."""
    return orjson.dumps(value if value is not None else {}).decode()
