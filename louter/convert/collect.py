"""Neutral stream events -> one `Response`, and the journal's view of an answer.

`StreamCollector` is the consumer every stream shares: the journal tap assembles what
passed, and a non-streaming client served by a streaming stage gets the whole answer.
`log_view` is the dialect-neutral shape the JSONL log records for assembled streams
(design §8): OpenAI-like keys so `log-parser` reads one shape whatever the dialect.
"""

from __future__ import annotations

from typing import Any

from louter.convert.model import (
    MessageStart,
    MessageStop,
    Part,
    Reasoning,
    ReasoningDelta,
    Response,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)


class StreamCollector:
    """Accumulate neutral stream events; `result()` is the answer so far.

    Consecutive text (or reasoning) deltas make one part; a delta with a signature closes
    its part. Until MessageStop arrives the finish reason reads "error" (a stream cut
    short or ended by a StreamError did not stop normally).

    `max_text` bounds the characters kept (text, reasoning and tool-call arguments
    together; for the log): past it the rest is only counted in `text_chars` and
    `truncated` is set. None keeps everything (an answer a client gets whole)."""

    __slots__ = ("id", "model", "_parts", "_calls", "finish_reason", "usage", "error", "events",
                 "max_text", "text_chars", "truncated")  # fmt: skip

    def __init__(self, max_text: int | None = None) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self._parts: list[Part | _Open] = []
        self._calls: dict[int, _Open] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.error: StreamError | None = None
        self.events = 0
        self.max_text = max_text
        self.text_chars = 0  # every character seen, kept or not
        self.truncated = False

    @property
    def done(self) -> bool:
        return self.finish_reason is not None or self.error is not None

    def feed(self, event: StreamEvent) -> None:
        self.events += 1
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def result(self) -> Response:
        parts = [_close(part) for part in self._parts]
        return Response(
            id=self.id or "",
            model=self.model or "",
            parts=tuple(parts),
            finish_reason=self.finish_reason or "error",  # unfinished is never a stop
            usage=self.usage,
        )

    def _start(self, event: MessageStart) -> None:
        self.id = self.id or event.id
        self.model = self.model or event.model

    def _keep(self, text: str) -> str:
        """The part of `text` kept within `max_text` (all of it when there is no cap)."""
        seen = self.text_chars
        self.text_chars = seen + len(text)
        if self.max_text is None or self.text_chars <= self.max_text:
            return text
        self.truncated = True
        return text[: max(self.max_text - seen, 0)]

    def _text(self, event: TextDelta) -> None:
        self._append(Text, event.text, event.signature)

    def _reasoning(self, event: ReasoningDelta) -> None:
        if event.redacted is not None:
            self._parts.append(Reasoning(redacted=event.redacted, signature=event.signature))
            return
        self._append(Reasoning, event.text, event.signature)

    def _append(self, kind: type[Text] | type[Reasoning], text: str, signature: str | None) -> None:
        """Extend the open run of `kind`, or start one. A signature signs the run it
        arrives in (with the text before it, as Anthropic's `signature_delta` and Gemini's
        trailing signed part do) and closes it: what follows starts a new run."""
        text = self._keep(text)
        if not text and self.truncated and signature is None:
            return  # past the cap: nothing to keep
        last = self._parts[-1] if self._parts else None
        if isinstance(last, _Open) and last.kind is kind and last.signature is None:
            last.chunks.append(text)
            last.signature = signature
            return
        run = _Open(kind, signature)
        run.chunks.append(text)
        self._parts.append(run)

    def _call_start(self, event: ToolCallStart) -> None:
        call = self._calls[event.index] = _Open(ToolCall, call=event)
        self._parts.append(call)

    def _call_delta(self, event: ToolCallDelta) -> None:
        call = self._calls.get(event.index)
        if call is not None:
            kept = self._keep(event.arguments)
            if kept or not self.truncated:
                call.chunks.append(kept)

    def _usage(self, event: UsageUpdate) -> None:
        self.usage = event.usage

    def _stop(self, event: MessageStop) -> None:
        self.finish_reason = event.finish_reason
        if event.usage is not None:
            self.usage = event.usage

    def _error(self, event: StreamError) -> None:
        self.error = event


class _Open:
    """A part still being streamed: a text or reasoning run, or a tool call's arguments."""

    __slots__ = ("kind", "chunks", "signature", "call")

    def __init__(
        self, kind: type[Part], signature: str | None = None, call: ToolCallStart | None = None
    ) -> None:
        self.kind = kind
        self.chunks: list[str] = []
        self.signature = signature
        self.call = call

    def close(self) -> Part:
        joined = "".join(self.chunks)
        if self.call is not None:
            return ToolCall(self.call.id, self.call.name, joined or "{}", self.call.signature)
        if self.kind is Reasoning:
            return Reasoning(text=joined, signature=self.signature)
        return Text(text=joined, signature=self.signature)


def _close(part: Part | _Open) -> Part:
    return part.close() if isinstance(part, _Open) else part


def _ignore(collector: StreamCollector, event: Any) -> None:
    return None


_HANDLERS: dict[type, Any] = {
    MessageStart: StreamCollector._start,
    TextDelta: StreamCollector._text,
    ReasoningDelta: StreamCollector._reasoning,
    ToolCallStart: StreamCollector._call_start,
    ToolCallDelta: StreamCollector._call_delta,
    ToolCallEnd: _ignore,
    UsageUpdate: StreamCollector._usage,
    MessageStop: StreamCollector._stop,
    StreamError: StreamCollector._error,
}


def events_of(response: Response) -> list[StreamEvent]:
    """A whole answer as the stream events that would have carried it."""
    events: list[StreamEvent] = [MessageStart(response.id or None, response.model or None)]
    calls = 0
    for part in response.parts:
        if isinstance(part, Text):
            events.append(TextDelta(part.text, part.signature))
        elif isinstance(part, Reasoning):
            events.append(ReasoningDelta(part.text, part.signature, part.redacted))
        elif isinstance(part, ToolCall):
            events.append(ToolCallStart(calls, part.id, part.name, part.signature))
            events.append(ToolCallDelta(calls, part.arguments))
            events.append(ToolCallEnd(calls))
            calls += 1
    events.append(MessageStop(response.finish_reason, response.usage))
    return events


def usage_view(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def log_view(response: Response) -> dict[str, Any]:
    """The journal's dialect-neutral record of an answer (OpenAI-like keys)."""
    reasoning = "".join(p.text for p in response.parts if isinstance(p, Reasoning))
    out: dict[str, Any] = {
        "id": response.id or None,
        "model": response.model or None,
        "content": response.text(),
    }
    if reasoning:
        out["reasoning_content"] = reasoning
    out["tool_calls"] = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in response.tool_calls()
    ]
    out["finish_reason"] = response.finish_reason
    out["usage"] = usage_view(response.usage)
    return out


def stream_view(collector: StreamCollector) -> dict[str, Any]:
    """The journal's record of a stream so far: `log_view` plus whether it finished
    (`done`) and the in-stream error it ended with, if any."""
    view = log_view(collector.result())
    view["done"] = collector.done
    view["error"] = collector.error.message if collector.error is not None else None
    if collector.truncated:
        view["truncated"] = True
        view["text_chars"] = collector.text_chars
    return view
