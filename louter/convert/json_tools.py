"""Tool calls a `tool_format = "json"` backend wrote as JSON text -> real tool calls.

Some models, given tools, answer with the call as text instead of a structured
`tool_calls` entry. `JsonToolExtractor` repairs that, incrementally, with the same
feed/flush driver, hold-back cap and events as `xml_tools` (see `tool_text`): `XmlText`
and `XmlToolCall`; it never emits `XmlError`, since anything that does not qualify is
plain text. Run it only on a response that had tools available and carries no
structured calls.

What qualifies, precisely (conservative: when in doubt it is text)
    A *call value* is a JSON object whose keys are `name` plus exactly one of `arguments`
    or `parameters` (nothing else), where `name` is one of the request's tools and the
    arguments are an object (or a JSON string holding an object); or a non-empty array of
    such objects (several calls).

    1. Whole message: the message, apart from leading and trailing whitespace, is one
       call value. That whitespace is dropped. Decided at the end of input, since any
       later text makes it prose.
    2. Fenced block: a line that is exactly ```` ```json ```` (any case; trailing spaces
       allowed) at the start of the message or right after a newline, then one call value
       (whitespace around it allowed), then a line that is exactly ```` ``` ```` (trailing
       spaces allowed) ending in a newline or the end of input. The block, its fences and
       the closing line's newline become the call(s); the prose around it stays text.
       Several blocks give several calls.

    Not calls, so left as text: JSON inside a sentence or after prose on the same line,
    an unfenced object with prose before or after it, a ```` ``` ```` fence without
    `json` or with another language, indented fences, a block without its closing fence,
    a block holding anything besides one call value, unknown tool names, extra keys
    (`id`, `type`...), arguments that are not an object.

Streaming
    Plain text goes out at once, line by line. Held back: leading whitespace and a message
    that starts with `{` or `[` (until it closes, or stops looking like a call: a key
    other than those three, prose after `{`, a raw line break in a string...); a line
    start that may become ```` ```json ````; a fenced block until it closes or stops
    looking like a call. Rejected text is then re-read as plain text, so the result is
    the same however the input was split.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from enum import Enum, auto
from typing import Any

import orjson

from louter.convert.model import IdFactory, Tool
from louter.convert.tool_text import DEFAULT_CAP, BufferedExtractor, XmlEvent, XmlText

__all__ = ["JsonToolExtractor", "may_hold_call"]

_KEYS = frozenset({"name", "arguments", "parameters"})
_FENCE = "```json"
_CLOSE = "```"
_REJECT = -1
_WHITESPACE = frozenset(" \t\r\n")

Found = list[tuple[str, dict[str, Any]]]


class _State(Enum):
    START = auto()  # only whitespace so far
    TEXT = auto()  # plain text, emitted line by line
    FENCE = auto()  # inside a ```json block, scanning its value
    FENCE_END = auto()  # the block's value is a call: waiting for the closing fence line
    WHOLE = auto()  # the message starts with `{` or `[`: scanning the value
    WHOLE_END = auto()  # the message's value is a call: only whitespace may follow


def may_hold_call(text: str) -> bool:
    """Whether `text` could hold a call (cheap: it starts with `{` or `[`, or has a
    ```` ```json ```` fence). False means the extractor would give `text` back unchanged."""
    return text.lstrip()[:1] in ("{", "[") or _FENCE in text.lower()


class JsonToolExtractor(BufferedExtractor):
    """Text in, text and tool-call events out; one instance per message.

    Args:
        tools: the request's tools; only their names can become calls (none: all text).
        ids: call number -> call id (deterministic; passed in).
        cap: the most characters held back while undecided.
    """

    __slots__ = ("_state", "_names", "_line_start", "_body", "_scanner", "_found")

    def __init__(self, tools: Sequence[Tool], *, ids: IdFactory, cap: int = DEFAULT_CAP) -> None:
        super().__init__(ids, cap)
        self._names = frozenset(tool.name for tool in tools)
        self._state = _State.START
        self._line_start = True  # `_buf` starts at the start of a line
        self._body = 0  # where the fenced block's content starts in `_buf`
        self._scanner = _Scanner(0)
        self._found: Found = []

    def _step(self, end: int, eof: bool) -> list[XmlEvent] | None:
        return _HANDLERS[self._state](self, end, eof)

    def _restart(self, released: str) -> None:
        self._state = _State.TEXT
        self._line_start = released.endswith("\n")

    def _start(self, end: int, eof: bool) -> list[XmlEvent] | None:
        first = self._skip_ws(0, end)
        if first == end and not eof:
            return None
        if first < end and self._buf[first] in "{[":
            self._state, self._scanner = _State.WHOLE, _Scanner(first)
        else:
            self._state = _State.TEXT
        return []

    def _text(self, end: int, eof: bool) -> list[XmlEvent] | None:
        buf = self._buf
        newline = buf.find("\n", 0, end)
        stop = end if newline < 0 else newline + 1
        if self._line_start and buf.startswith("`"):
            line = buf[:stop].lower()
            if newline >= 0 and _is_fence(line, _FENCE):
                self._state, self._body, self._scanner = _State.FENCE, stop, _Scanner(stop)
                return []
            if newline < 0 and not eof and _may_be_fence(line):
                return None
        self._line_start = newline >= 0
        return [XmlText(self._take(stop))]

    def _fence(self, end: int, eof: bool) -> list[XmlEvent] | None:
        value_end = self._scanner.advance(self._buf, end)
        if value_end is None:
            return self._reject_fence() if eof else None
        found = self._verdict(value_end)
        if found is None:
            return self._reject_fence()
        self._found, self._pos, self._state = found, value_end, _State.FENCE_END
        return []

    def _fence_end(self, end: int, eof: bool) -> list[XmlEvent] | None:
        buf = self._buf
        fence = self._skip_ws(self._pos, end)
        if fence + len(_CLOSE) > end and _CLOSE.startswith(buf[fence:end]):
            return self._reject_fence() if eof else None
        if buf[fence - 1] != "\n" or not buf.startswith(_CLOSE, fence, end):
            return self._reject_fence()
        stop = self._skip_spaces(fence + len(_CLOSE), end)
        if stop == end and not eof:
            return None
        if stop < end:
            if buf[stop] != "\n":
                return self._reject_fence()
            stop += 1
        self._take(stop)
        self._state, self._line_start = _State.TEXT, True
        return self._calls()

    def _whole(self, end: int, eof: bool) -> list[XmlEvent] | None:
        value_end = self._scanner.advance(self._buf, end)
        if value_end is None:
            return self._reject_whole() if eof else None
        found = self._verdict(value_end)
        if found is None:
            return self._reject_whole()
        self._found, self._pos, self._state = found, value_end, _State.WHOLE_END
        return []

    def _whole_end(self, end: int, eof: bool) -> list[XmlEvent] | None:
        if self._skip_ws(self._pos, end) < end:
            return self._reject_whole()
        if not eof:
            return None
        self._take(end)
        self._state = _State.TEXT
        return self._calls()

    def _skip_spaces(self, pos: int, end: int) -> int:
        while pos < end and self._buf[pos] in " \t\r":
            pos += 1
        return pos

    def _verdict(self, value_end: int) -> Found | None:
        if value_end == _REJECT:
            return None
        try:
            value = orjson.loads(self._buf[self._scanner.start : value_end])
        except orjson.JSONDecodeError:
            return None
        return _calls_from(value, self._names)

    def _calls(self) -> list[XmlEvent]:
        found, self._found = self._found, []
        return [self._call(name, arguments) for name, arguments in found]

    def _reject_fence(self) -> list[XmlEvent]:
        """Not a call: the opening fence line is text, the content is read again as text."""
        self._state, self._line_start = _State.TEXT, True
        return [XmlText(self._take(self._body))]

    def _reject_whole(self) -> list[XmlEvent]:
        """Not a call: the whole message so far is read again as text."""
        self._state, self._line_start, self._pos = _State.TEXT, True, 0
        return []


_FENCE_LEN = len(_FENCE)

_HANDLERS: dict[_State, Callable[[JsonToolExtractor, int, bool], list[XmlEvent] | None]] = {
    _State.START: JsonToolExtractor._start,
    _State.TEXT: JsonToolExtractor._text,
    _State.FENCE: JsonToolExtractor._fence,
    _State.FENCE_END: JsonToolExtractor._fence_end,
    _State.WHOLE: JsonToolExtractor._whole,
    _State.WHOLE_END: JsonToolExtractor._whole_end,
}


def _is_fence(line: str, fence: str) -> bool:
    """`line` (lower-cased, with its newline) is exactly `fence` plus trailing spaces."""
    return line.startswith(fence) and not line[len(fence) :].strip(" \t\r\n")


def _may_be_fence(line: str) -> bool:
    """An unfinished line that more input may turn into the opening fence line."""
    if len(line) <= _FENCE_LEN:
        return _FENCE.startswith(line)
    return _is_fence(line, _FENCE)


def _calls_from(value: Any, names: Collection[str]) -> Found | None:
    items = value if isinstance(value, list) else [value]
    found = [_call_from(item, names) for item in items]
    calls = [call for call in found if call is not None]
    return calls if calls and len(calls) == len(found) else None


def _call_from(item: Any, names: Collection[str]) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(item, dict) or not item.keys() <= _KEYS:
        return None
    name = item.get("name")
    keys = [key for key in ("arguments", "parameters") if key in item]
    if not isinstance(name, str) or name not in names or len(keys) != 1:
        return None
    arguments = item[keys[0]]
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return None
    return (name, arguments) if isinstance(arguments, dict) else None


class _Scanner:
    """The structure of one JSON value, character by character, to find where it ends
    and to give up early on text that cannot be a call value. It does not validate
    JSON (orjson does, on the finished value); it only rejects what is surely not one.

    `advance` returns the index after the value, None when more input is needed, or
    `_REJECT`. Call objects live at `level` 1 (a bare object) or 2 (in a top-level array).
    """

    __slots__ = ("start", "pos", "depth", "level", "in_string", "escape", "expect_key", "key")

    def __init__(self, pos: int) -> None:
        self.start = -1  # where the value starts (after leading whitespace)
        self.pos = pos  # the next character to look at
        self.depth = 0
        self.level = 1
        self.in_string = False
        self.escape = False
        self.expect_key = False  # the next token at `level` is an object key
        self.key = -1  # where the key being read starts, when reading one

    def advance(self, buf: str, end: int) -> int | None:
        while self.pos < end:
            index = self.pos
            self.pos += 1
            step = self._string(buf, index) if self.in_string else self._token(buf[index])
            if step is not None:
                return step
        return None

    def _string(self, buf: str, index: int) -> int | None:
        char = buf[index]
        if self.escape:
            self.escape = False
        elif char == "\\":
            self.escape = True
        elif char == "\n":
            return _REJECT  # JSON strings hold no raw line breaks
        elif char == '"':
            self.in_string = False
            if self.key >= 0:
                key, self.key = buf[self.key : index], -1
                if key not in _KEYS:
                    return _REJECT
        return None

    def _token(self, char: str) -> int | None:
        if char in _WHITESPACE:
            return None
        if self.depth == 0:
            return self._open(char)
        if char in "{[":
            self.depth += 1
            self.expect_key = char == "{" and self.depth == self.level
        elif char in "}]":
            self.depth -= 1
            return self.pos if self.depth == 0 else None
        elif self.expect_key:
            return self._key(char)
        elif char == "," and self.depth == self.level:
            self.expect_key = True
        elif self.depth < self.level and char != ",":
            return _REJECT  # a top-level array holds call objects only
        elif char == '"':
            self.in_string = True
        return None

    def _open(self, char: str) -> int | None:
        if char not in "{[":
            return _REJECT
        self.start, self.depth = self.pos - 1, 1
        self.level = 1 if char == "{" else 2
        self.expect_key = char == "{"
        return None

    def _key(self, char: str) -> int | None:
        if char != '"':
            return _REJECT  # `{` followed by prose, or a key that is not a string
        self.expect_key, self.in_string, self.key = False, True, self.pos
        return None
