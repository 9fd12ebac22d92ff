"""The pipeline's recorders (`Recorder`, e.g. the response cache's) fed from what an
answer goes through anyway, so recording costs no conversion:

- a same-dialect answer passes through as bytes: a whole one is read from its parsed
  body (`whole`, parsed once for the log and the usage already), a stream from the
  journal tap's assembly (`stream`), once, after the client got it;
- a converted answer is already neutral: `observer` collects its events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from louter.convert.collect import StreamCollector
from louter.convert.dialect import DIALECTS
from louter.convert.model import MessageStop, Reasoning, Response, StreamError, StreamEvent, Text
from louter.errors import ConversionError

if TYPE_CHECKING:
    from louter.proxy.pipeline import Recorder


def _no_ids(n: int) -> str:
    return f"call_{n}"


def text_chars(response: Response) -> int:
    """The characters a recorder's `limit` counts: text, reasoning, tool-call arguments."""
    total = 0
    for part in response.parts:
        if isinstance(part, Text | Reasoning):
            total += len(part.text)
    return total + sum(len(call.arguments) for call in response.tool_calls())


class Recording:
    """The recorders of one call's answer."""

    __slots__ = ("_all", "limit")

    def __init__(self, recorders: Sequence[Recorder]) -> None:
        self._all = tuple(recorders)
        self.limit = max(r.limit for r in self._all)  # the most any of them keeps

    def answer(self, response: Response) -> None:
        """Give the complete answer to each recorder it fits."""
        size = text_chars(response)
        for recorder in self._all:
            if size <= recorder.limit:
                recorder.answer(response)

    def whole(self, dialect: str, data: Any) -> None:
        """A same-dialect whole 200 answer, its body parsed (not an answer: nothing)."""
        if not isinstance(data, dict):
            return
        try:
            response = DIALECTS[dialect].parse_response(data, _no_ids)
        except ConversionError:
            return
        self.answer(response)

    def stream(self, answer: Response | None) -> None:
        """A same-dialect stream's answer as its tap assembled it (None: not complete)."""
        if answer is not None and answer.finish_reason != "error":
            self.answer(answer)

    def observer(self) -> Collecting:
        """For a converted answer: an `Observer` that gives it to the recorders."""
        return Collecting(self)


class Collecting:
    """An `Observer` that only reads: a whole answer, or a stream's events collected (up
    to the recorders' `limit`) until its normal end."""

    __slots__ = ("_recording", "_collector", "_over")

    def __init__(self, recording: Recording) -> None:
        self._recording = recording
        self._collector: StreamCollector | None = None
        self._over = False

    def whole(self, response: Response) -> Response:
        self._recording.answer(response)
        return response

    def event(self, event: StreamEvent) -> bool:
        if self._over:
            return True
        if self._collector is None:
            self._collector = StreamCollector()
        collector = self._collector
        collector.feed(event)
        if collector.text_chars > self._recording.limit or isinstance(event, StreamError):
            self._over, self._collector = True, None  # not recorded: stop keeping it
        elif isinstance(event, MessageStop):
            self._over, self._collector = True, None
            self._recording.answer(collector.result())
        return True
