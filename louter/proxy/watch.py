"""A watched passthrough: a same-dialect OpenAI Chat Completions stream whose bytes go to
the client unchanged while the pipeline's text-watching observers (the loop guard) read
its text, from the journal tap's own parse (no second parse, no conversion): the full
tap's assembly when the log keeps payloads, else the lean tap's decode of just the keys
the watch reads (`OpenAIUsageTap.watch`).

Each network chunk's new text reaches the observers as one `TextDelta` (a tool call's
beginning as a `ToolCallStart`: a Chat Completions stream ends its calls only at the
finish, so no cut happens after one). When an observer ends the answer, the client gets
the chunk up to its last complete event, then the observers' closing events and a
normal finish written by the OpenAI emitter under the stream's own id and model
(`finish_reason: "stop"`, the usage chunk when asked for, `[DONE]`); the upstream is
not read on (`StreamEnded`: the pump closes its connection).

Cost on a stream no observer ends: one callback per network chunk with that chunk's text
pieces, none for the chunk that finishes the answer (it is passed on whole anyway: its
text is not read); measured on `bin/bench` S3 (see README, Loop detection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from louter.convert import openai
from louter.convert.model import MessageStart, MessageStop, ResponseMeta, TextDelta, ToolCallStart
from louter.proxy.hidden_usage import UsageChunkFilter
from louter.proxy.passthrough import PassthroughRelay, StreamEnded, StreamRelay, StreamTap
from louter.proxy.pipeline import Observers
from louter.proxy.taps import OpenAITap, OpenAIUsageTap

RelayFactory = Callable[[StreamTap, Callable[[str], bytes], UsageChunkFilter | None], StreamRelay]


def openai_watch(
    observers: Observers, request_id: str, created: int, include_usage: bool
) -> RelayFactory:
    """The relay factory a `Forward` plan uses for an OpenAI stream watched by `observers`."""

    def make(
        tap: StreamTap, error_event: Callable[[str], bytes], hidden: UsageChunkFilter | None
    ) -> StreamRelay:
        assert isinstance(tap, OpenAITap | OpenAIUsageTap)
        meta = (request_id, created, include_usage)  # a `ResponseMeta` if it is cut
        return WatchedRelay(tap, error_event, observers, meta, hidden)

    return make


class WatchedRelay(PassthroughRelay):
    """Bytes through unchanged; the text to the observers; a clean end when one says so."""

    def __init__(
        self,
        tap: OpenAITap | OpenAIUsageTap,
        error_event: Callable[[str], bytes],
        observers: Observers,
        meta: tuple[str, int, bool],
        hidden: UsageChunkFilter | None = None,
    ) -> None:
        super().__init__(tap, error_event, hidden)
        self._openai_tap = tap
        self._observers = observers
        self._meta = meta
        self._text = TextWatch(observers)
        self._closing: list[str] = []  # the closing text, for the journal
        self._cut = False  # the answer was ended here (the closing was sent)
        tap.watch(self._text)

    def feed(self, chunk: bytes) -> bytes:
        self._openai_tap.feed(chunk)
        hidden = self._hidden
        if not self._text.ended or self._openai_tap.finished:
            # (an answer that finished in this chunk ends as it is)
            return chunk if hidden is None else hidden.feed(chunk)
        end = _last_event_end(chunk)
        self._cut = True
        sent = chunk[:end] if hidden is None else hidden.feed(chunk[:end]) + hidden.flush()
        raise StreamEnded(sent + self._finish())

    def _finish(self) -> bytes:
        """The closing events and a normal finish, as the upstream's own chunks."""
        upstream_id, model = self._openai_tap.identity
        request_id, created, include_usage = self._meta
        meta = ResponseMeta(id=upstream_id or "chatcmpl-" + request_id, model=model or "",
                            created=created, include_usage=include_usage)  # fmt: skip
        emitter = openai.StreamEmitter(meta)
        emitter.feed(MessageStart())  # the role chunk the upstream sent already
        out = []
        for event in self._observers.closing():
            if isinstance(event, TextDelta):
                self._closing.append(event.text)
            out.append(emitter.feed(event))
        out.append(emitter.feed(MessageStop("stop")))
        return b"".join(out)

    @property
    def complete(self) -> bool:
        return self._cut or super().complete

    def results(self) -> tuple[dict[str, Any], dict[str, Any]]:
        backend, _ = super().results()
        if not self._cut:
            return backend, backend
        client = dict(backend)
        client["content"] = (client.get("content") or "") + "".join(self._closing)
        client["finish_reason"] = "stop"
        client["done"] = True
        return backend, client


class TextWatch:
    """What the tap tells of a watched stream (`taps.Watch`), handed to the observers;
    `ended` once one of them ends the answer. A separate object, not a method of the
    relay: the tap holds it, and a tap holding its relay would make every watched
    stream a reference cycle (its whole exchange left to the cyclic GC)."""

    __slots__ = ("_observers", "_calling", "ended")

    def __init__(self, observers: Observers) -> None:
        self._observers = observers
        self._calling = False  # a tool call has begun
        self.ended = False

    def __call__(self, pieces: list[str], calling: bool, finished: bool) -> None:
        if self.ended or finished:  # (an answer that finished is not cut)
            return
        keep = True
        if calling and not self._calling:
            self._calling = True
            keep = self._observers.event(ToolCallStart(0, "", ""))
        if pieces:
            keep = self._observers.event(TextDelta("".join(pieces))) and keep
        self.ended = not keep


def _last_event_end(chunk: bytes) -> int:
    """Where the last complete SSE event of `chunk` ends (LF or CRLF framing); the
    whole chunk when none ends in it (the event the text came in ended in it)."""
    ends = [chunk.rfind(sep) + len(sep) for sep in _SEPARATORS if sep in chunk]
    return max(ends) if ends else len(chunk)


_SEPARATORS = (b"\n\n", b"\r\n\r\n", b"\r\r")
