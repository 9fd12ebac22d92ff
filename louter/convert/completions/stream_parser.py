"""A Completions backend's stream -> neutral stream events.

The stream is `data: {...}` chunks whose choice 0 carries a `text` fragment, then a chunk
with its `finish_reason`, then (with `stream_options.include_usage`, or always with
llama-server) usage, in the finish chunk or in a last chunk with `"choices": []`, then
`data: [DONE]`. Empty text fragments (llama-server sends some while it holds back a
possible stop sequence) give no event.

The stream stops at `[DONE]`, so usage that follows the finish reason is not lost. A
stream that ends without `[DONE]` but with a finish reason is accepted; one without
either is a StreamError. An `error` chunk (or an `event: error`, or llama-server's bare
JSON error line, which the SSE decoder surfaces as `event="error"`) ends the stream with
a StreamError carrying the error's `code` when it is an HTTP status.
"""

from __future__ import annotations

from typing import Any

from louter.convert.completions.wire import map_finish, message_of, parse_usage
from louter.convert.fields import load_object
from louter.convert.model import (
    IdFactory,
    MessageStart,
    MessageStop,
    StreamError,
    StreamEvent,
    TextDelta,
    Usage,
)
from louter.convert.sse import SSEEvent
from louter.errors import ConversionError

__all__ = ["StreamParser"]


def _fail(problem: str) -> ConversionError:
    return ConversionError(f"completions stream: {problem}", status_hint=502)


class StreamParser:
    """Completions `text_completion` chunks -> neutral stream events. One per response.

    (`ids` is unused: a Completions stream holds no tool calls.)
    """

    __slots__ = ("_started", "_finish", "_usage", "_ended")

    def __init__(self, ids: IdFactory) -> None:
        self._started = False
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._ended = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        """Take one SSE event; the neutral events it completes.

        Raises:
            ConversionError: (502) the event's data is not a JSON object (nor `[DONE]`).
        """
        if self._ended:
            return []
        if event.data == "[DONE]":
            return self._end()
        try:
            chunk = load_object(event.data, _fail)
        except ConversionError:
            if event.event != "error":
                raise
            return self._stop_with(StreamError(event.data or "the backend reported an error"))
        error = chunk.get("error")
        if error is not None or event.event == "error":
            return self._stop_with(_stream_error(chunk if error is None else error), chunk)
        out = self._start(chunk)
        usage = parse_usage(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        choice = _choice_zero(chunk.get("choices"))
        if choice is not None:
            text = choice.get("text")
            if isinstance(text, str) and text:
                out.append(TextDelta(text))
            finish = choice.get("finish_reason")
            if isinstance(finish, str):
                self._finish = finish
        return out

    def flush(self) -> list[StreamEvent]:
        """End of stream: MessageStop if a finish reason came, else a StreamError."""
        if self._ended:
            return []
        if self._finish is None:
            return self._stop_with(StreamError("the backend's stream ended before it finished"))
        return self._end()

    def _start(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        stream_id, model = chunk.get("id"), chunk.get("model")
        return [
            MessageStart(
                stream_id if isinstance(stream_id, str) and stream_id else None,
                model if isinstance(model, str) and model else None,
            )
        ]

    def _stop_with(self, error: StreamError, chunk: dict[str, Any] | None = None) -> list[Any]:
        self._ended = True
        return [*self._start(chunk or {}), error]

    def _end(self) -> list[StreamEvent]:
        self._ended = True
        return [*self._start({}), MessageStop(map_finish(self._finish), self._usage)]


def _choice_zero(choices: Any) -> dict[str, Any] | None:
    if not isinstance(choices, list):
        return None
    return next(
        (c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0),
        None,
    )


def _stream_error(error: Any) -> StreamError:
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and 400 <= code <= 599 else 502
    return StreamError(message_of(error), status)
