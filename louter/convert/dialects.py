"""The dialect table: each wire API's converters bundled under its name.

The proxy looks a backend's dialect up here and calls the same functions whatever it is
(dict dispatch, no provider ladders). Front doors call their own module's
`parse_request` directly: its arguments differ by dialect (Gemini's model is in the path).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from louter.convert import anthropic, gemini, openai, openai_stream, responses
from louter.convert.model import IdFactory, Request, Response, ResponseMeta, StreamEvent
from louter.convert.sse import SSEEvent


class StreamParser(Protocol):
    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...
    def flush(self) -> list[StreamEvent]: ...


class StreamEmitter(Protocol):
    def feed(self, event: StreamEvent) -> bytes: ...
    def flush(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    emit_request: Callable[[Request, str], dict[str, Any]]
    parse_response: Callable[[Mapping[str, Any], IdFactory], Response]
    emit_response: Callable[[Response, ResponseMeta], dict[str, Any]]
    stream_parser: Callable[[IdFactory], StreamParser]
    stream_emitter: Callable[[ResponseMeta], StreamEmitter]
    error_body: Callable[[int, str], dict[str, Any]]
    error_message: Callable[[bytes], str]
    # `Request` settings this dialect's requests cannot carry: dropped, and noted in the log
    drops: tuple[str, ...] = ()

    def dropped(self, request: Request) -> list[str]:
        """The settings of `request` that `emit_request` leaves out for want of a field."""
        return [name for name in self.drops if getattr(request, name) is not None]


PENALTIES = ("presence_penalty", "frequency_penalty")  # OpenAI and Gemini only


OPENAI = Dialect(
    name="openai",
    emit_request=openai.emit_request,
    parse_response=openai.parse_response,
    emit_response=openai.emit_response,
    stream_parser=openai_stream.StreamParser,
    stream_emitter=openai_stream.StreamEmitter,
    error_body=openai.error_body,
    error_message=openai.error_message,
)

GEMINI = Dialect(
    name="gemini",
    emit_request=gemini.emit_request,
    parse_response=gemini.parse_response,
    emit_response=gemini.emit_response,
    stream_parser=gemini.StreamParser,
    stream_emitter=gemini.StreamEmitter,
    error_body=gemini.error_body,
    error_message=gemini.error_message,
)

ANTHROPIC = Dialect(
    name="anthropic",
    emit_request=anthropic.emit_request,
    parse_response=anthropic.parse_response,
    emit_response=anthropic.emit_response,
    stream_parser=anthropic.StreamParser,
    stream_emitter=anthropic.StreamEmitter,
    error_body=anthropic.error_body,
    error_message=anthropic.error_message,
    drops=PENALTIES,
)

RESPONSES = Dialect(
    name="responses",
    emit_request=responses.emit_request,
    parse_response=responses.parse_response,
    emit_response=responses.emit_response,
    stream_parser=responses.StreamParser,
    stream_emitter=responses.StreamEmitter,
    error_body=responses.error_body,
    error_message=responses.error_message,
    drops=PENALTIES,
)

DIALECTS: Mapping[str, Dialect] = {
    "openai": OPENAI,
    "gemini": GEMINI,
    "anthropic": ANTHROPIC,
    "responses": RESPONSES,
}
