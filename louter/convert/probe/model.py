"""What a probe asks and what it saw, in terms no dialect owns.

An `Ask` is one request: a conversation of turns (`User`, `ToolCalled`, `ToolResult`,
`Assistant`), the declared tools and the generation settings. Each dialect's wire module
writes it in its own shape. What comes back is read into `Seen`: the status, the
`Answer` (text, tool calls, neutral finish reason, token counts, error message) and the
wire problems found while reading it (a malformed body, a stream out of order).
Everything is a frozen dataclass; arguments of calls stay JSON text, as sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from louter.convert.sse import SSEEvent

Json = dict[str, Any]

# What a probe may need of an API besides text (`Probe.needs`, `Wire.lacks`).
TOOLS, IMAGES = "tools", "images"

# Neutral finish reasons. Dialect values map onto these; anything else is kept verbatim.
STOP, LENGTH, TOOL_CALLS = "stop", "length", "tool_calls"


# --------------------------------------------------------------------------- asking


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema for the arguments object


@dataclass(frozen=True, slots=True)
class User:
    text: str
    image_png: bytes | None = None  # one inline PNG next to the text


@dataclass(frozen=True, slots=True)
class ToolCalled:
    """An assistant turn that called a tool."""

    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The result of the call `id`, a JSON object."""

    id: str
    name: str
    content: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Assistant:
    text: str


Turn = User | ToolCalled | ToolResult | Assistant

# What an Ask is sent as: a generation, a token count, or a request that must be refused.
CHAT, COUNT, INVALID = "chat", "count", "invalid"


@dataclass(frozen=True, slots=True)
class Ask:
    turns: tuple[Turn, ...]
    tools: tuple[Tool, ...] = ()
    stream: bool = False
    kind: str = CHAT
    max_tokens: int = 64
    temperature: float = 0.0

    def answered(self, call: SeenCall, arguments: Mapping[str, Any], result: Json) -> Ask:
        """This conversation continued by the model's `call` and its `result` (not streamed)."""
        turns = (
            *self.turns,
            ToolCalled(call.id, call.name, arguments),
            ToolResult(call.id, call.name, result),
        )
        return replace(self, turns=turns, stream=False)


# --------------------------------------------------------------------------- seeing


@dataclass(frozen=True, slots=True)
class SeenCall:
    id: str
    name: str
    arguments: str  # JSON text (Gemini and Anthropic send objects: their compact JSON)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str = ""
    calls: tuple[SeenCall, ...] = ()
    finish: str | None = None  # STOP, LENGTH, TOOL_CALLS, or the wire value
    finishes: int = 0  # how many finish reasons the answer carried (streams: must be 1)
    prompt_tokens: int | None = None
    count: int | None = None  # a token-count endpoint's answer
    error: str | None = None  # the message of an error envelope


@dataclass(frozen=True, slots=True)
class Seen:
    """One exchange as read: `problems` are wire-level faults, empty when well-formed."""

    status: int
    answer: Answer = field(default_factory=Answer)
    problems: tuple[str, ...] = ()
    stream: bool = False
    chunks: int = 0
    log: Any = None  # what the JSONL log records as the response payload


# --------------------------------------------------------------------------- the wire


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request as a dialect writes it. `headers` hold no secrets: the key is
    added when sending, so what is logged never contains it."""

    method: str
    path: str  # with its query string
    body: Json
    headers: Mapping[str, str] = field(default_factory=dict)
    stream: bool = False


Reader = Callable[[Any], tuple[Answer, list[str]]]
StreamReader = Callable[[Sequence[SSEEvent]], tuple[Answer, list[str]]]


class StreamAuditor(Protocol):
    """One dialect's stream audit: fed SSE events in order, then asked for the result."""

    def feed(self, event: SSEEvent) -> None: ...
    def result(self) -> tuple[Answer, list[str]]: ...


def auditing(make: Callable[[], StreamAuditor]) -> StreamReader:
    """A `Wire.audit_stream` that feeds every event to a fresh auditor from `make`."""

    def audit_stream(events: Sequence[SSEEvent]) -> tuple[Answer, list[str]]:
        audit = make()
        for event in events:
            audit.feed(event)
        return audit.result()

    return audit_stream


@dataclass(frozen=True, slots=True)
class Wire:
    """A dialect's probe wire: how it writes an `Ask`, where its key goes, and how its
    answers, counts, errors and streams are read (each reader returns the answer and the
    wire problems found). `default_model` is what `test-runner` asks a backend of this
    dialect for when no model is given (the dialect's `title` names its front door)."""

    name: str
    default_model: str
    write: Callable[[Ask, str], Call]
    key_header: Callable[[str], tuple[str, str]]
    read_answer: Reader
    read_count: Reader
    read_error: Callable[[int, Any], tuple[Answer, list[str]]]
    audit_stream: StreamReader
    # what the API has no way to carry (TOOLS, IMAGES): a probe that needs it is not run
    # through this wire (Completions has neither)
    lacks: frozenset[str] = frozenset()
