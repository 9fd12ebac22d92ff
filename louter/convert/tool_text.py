"""Tool calls written as text: the events and the feed/flush driver shared by the
extractors in `xml_tools` (Qwen-style XML) and `json_tools` (JSON text repair).

Both turn text into `XmlText`, `XmlToolCall` and `XmlError` events (the names come from
the XML stage, the first user), so one pipeline stage can map either extractor's output
to neutral stream events. Contract of every extractor built on `BufferedExtractor`:

- `feed(text)` returns the events that text decides, `flush()` the rest at end of input;
  after `merge_text`, the output is the same however the input was split.
- Text that cannot start a call goes out at once; only text that may still become a call
  is held, and at most `cap` characters of it: when the first `cap` characters of a held
  unit do not decide it, they are released as `XmlText` (never dropped) and scanning
  resumes after them. That decision depends on the text only, never on the chunking.
- Calls are numbered from 0 in order (`XmlToolCall.index`); the id is `ids(index)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from louter.convert.model import IdFactory, ToolCall, dump_arguments

__all__ = [
    "DEFAULT_CAP",
    "BufferedExtractor",
    "XmlError",
    "XmlEvent",
    "XmlText",
    "XmlToolCall",
    "merge_text",
]

DEFAULT_CAP = 64 * 1024


@dataclass(frozen=True, slots=True)
class XmlText:
    """Plain text, outside any call."""

    text: str


@dataclass(frozen=True, slots=True)
class XmlToolCall:
    """A complete call; `index` counts calls from 0 and `call.id == ids(index)`."""

    index: int
    call: ToolCall


@dataclass(frozen=True, slots=True)
class XmlError:
    """Call-like text that is not a call; `raw` is exactly the input it covers.

    `kind` is "unknown_tool", "malformed" or "unterminated".
    """

    message: str
    raw: str
    kind: str


XmlEvent = XmlText | XmlToolCall | XmlError


def merge_text(events: Iterable[XmlEvent]) -> list[XmlEvent]:
    """The events with adjacent `XmlText`s joined into one (and empty ones removed)."""
    merged: list[XmlEvent] = []
    for event in events:
        if isinstance(event, XmlText):
            if not event.text:
                continue
            if merged and isinstance(merged[-1], XmlText):
                event = XmlText(merged[-1].text + event.text)
                merged.pop()
        merged.append(event)
    return merged


_WS = re.compile(r"\s*")


class BufferedExtractor:
    """The feed/flush driver shared by the XML and JSON extractors.

    `_buf` holds the undecided input; it starts where the held unit (a possible tag, a
    call) starts. A subclass's `_step(end, eof)` looks at `_buf[:end]` only and returns
    the events it decided (having consumed input or changed state), or None when more
    input is needed. `end` is the cap window: if the first `cap` characters of the unit
    do not decide it, `_overflow` releases them as text. `eof` is true only when the
    window holds all remaining input and the input has ended.
    """

    __slots__ = ("_buf", "_pos", "_cap", "_ids", "_count")

    def __init__(self, ids: IdFactory, cap: int) -> None:
        if cap < 1:
            raise ValueError(f"cap must be at least 1, not {cap}")
        self._buf = ""
        self._pos = 0  # cursor inside `_buf` for the states that need one
        self._cap = cap
        self._ids = ids
        self._count = 0  # calls emitted so far

    def feed(self, text: str) -> list[XmlEvent]:
        """Consume a piece of text; return the events it decides."""
        if not text:
            return []
        self._buf += text
        return self._drain(eof=False)

    def flush(self) -> list[XmlEvent]:
        """End of input: decide everything still held."""
        return self._drain(eof=True)

    def _drain(self, eof: bool) -> list[XmlEvent]:
        out: list[XmlEvent] = []
        while self._buf:
            end = min(len(self._buf), self._cap)
            events = self._step(end, eof and end == len(self._buf))
            if events is None:
                if len(self._buf) <= self._cap:
                    break
                events = self._overflow()
            out += events
        return out

    def _step(self, end: int, eof: bool) -> list[XmlEvent] | None:
        raise NotImplementedError

    def _restart(self, released: str) -> None:
        """Back to plain text after `released` went out as text (cap overflow)."""
        raise NotImplementedError

    def _overflow(self) -> list[XmlEvent]:
        released = self._take(self._cap)
        self._restart(released)
        return [XmlText(released)]

    def _take(self, stop: int) -> str:
        """Remove and return `_buf[:stop]`; the cursor goes back to the start."""
        taken, self._buf, self._pos = self._buf[:stop], self._buf[stop:], 0
        return taken

    def _skip_ws(self, pos: int, end: int) -> int:
        match = _WS.match(self._buf, pos, end)
        return match.end() if match else pos

    def _call(self, name: str, arguments: Mapping[str, Any]) -> XmlToolCall:
        index, self._count = self._count, self._count + 1
        return XmlToolCall(index, ToolCall(self._ids(index), name, dump_arguments(arguments)))
