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

    The forms below are stricter: the tool must declare a JSON schema with `properties`
    and the arguments must validate against it (types, `required`, `enum`, nested
    objects and arrays, `additionalProperties: false`); otherwise the text stays text.

    3. Directive: a line starting with `TOOL CALL:` (any case), then either a tool name
       and its arguments object (`TOOL CALL: get_weather {"city": "Paris"}`) or one call
       object, and nothing else on the line. Here a tool without a schema is accepted
       (the directive says what it is), one with a schema must validate.
    4. Bare fence: as 2., with a line that is exactly ```` ``` ```` as the opening fence.
    5. JSON in prose: a call object (`{"name": ..., "arguments": {...}}`) anywhere in a
       line of text, outside code blocks; the prose around it stays text.

    Not calls, so left as text: all of the above with an unknown tool name, arguments
    that fail the schema, a tool without a schema (forms 4 and 5), a ```` ``` ```` fence
    with another language, indented fences, a block without its closing fence, a block
    holding anything besides one call value, extra keys (`id`, `type`...), arguments
    that are not an object; JSON inside ```` ```lang ```` code blocks.

Streaming
    Plain text goes out at once, line by line. Held back: leading whitespace and a message
    that starts with `{` or `[` (until it closes, or stops looking like a call: a key
    other than those three, prose after `{`, a raw line break in a string...); a line
    start that may become ```` ```json ````; a fenced block until it closes or stops
    looking like a call; a line start that may become `TOOL CALL:`, and such a line until
    it ends; from a `{` in prose until the object closes or stops looking like a call.
    Rejected text is then re-read as plain text, so the result is the same however the
    input was split.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from enum import Enum, auto
from typing import Any

import orjson

from louter.convert.model import IdFactory, Tool
from louter.convert.schema_check import validates
from louter.convert.tool_text import DEFAULT_CAP, BufferedExtractor, XmlEvent, XmlText

__all__ = ["JsonToolExtractor", "may_hold_call"]

_KEYS = frozenset({"name", "arguments", "parameters"})
_FENCE = "```json"
_CLOSE = "```"
_DIRECTIVE = "tool call:"
_PLAIN: list[XmlEvent] = []  # `_line_form`: the line is plain text (compared by identity)
_STARTED: list[XmlEvent] = []  # `_directive_start`: the scanner is set (by identity)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
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
    DIRECTIVE = auto()  # a `TOOL CALL:` line: its name and arguments
    DIRECTIVE_END = auto()  # the directive's call is read: the rest of its line
    PROSE = auto()  # a `{` in a line of text: scanning the object


def may_hold_call(text: str) -> bool:
    """Whether `text` could hold a call (cheap: it starts with `{` or `[`, or has a
    ```` ``` ```` fence, a `"name"` key or a `TOOL CALL:` directive). False means the
    extractor would give `text` back unchanged."""
    if text.lstrip()[:1] in ("{", "[") or _CLOSE in text or '"name"' in text:
        return True
    return _DIRECTIVE in text.lower()


class JsonToolExtractor(BufferedExtractor):
    """Text in, text and tool-call events out; one instance per message.

    Args:
        tools: the request's tools; only their names can become calls (none: all text).
        ids: call number -> call id (deterministic; passed in).
        cap: the most characters held back while undecided.
    """

    __slots__ = ("_state", "_names", "_schemas", "_line_start", "_body", "_scanner", "_found",
                 "_bare", "_in_code", "_call_name")  # fmt: skip

    def __init__(self, tools: Sequence[Tool], *, ids: IdFactory, cap: int = DEFAULT_CAP) -> None:
        super().__init__(ids, cap)
        self._names = frozenset(tool.name for tool in tools)
        # the tools with a schema to check (forms 4 and 5 need one)
        self._schemas = {t.name: t.parameters for t in tools if _has_properties(t.parameters)}
        self._state = _State.START
        self._line_start = True  # `_buf` starts at the start of a line
        self._body = 0  # where the fenced block's content starts in `_buf`
        self._scanner = _Scanner(0)
        self._found: Found = []
        self._bare = False  # the fenced block opened with a bare ``` (strict)
        self._in_code = False  # inside a ``` code block that is not a call
        self._call_name: str | None = None  # a directive's tool name, once read

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
        if self._line_start and self._names:
            found = self._line_form(buf[:stop], newline >= 0, eof)
            if found is not _PLAIN:
                return found
        if self._schemas and not self._in_code:
            brace = buf.find("{", 0, stop)
            if brace >= 0:  # form 5: maybe a call in the prose
                self._line_start = False
                before = self._take(brace)
                self._state, self._scanner = _State.PROSE, _Scanner(0)
                return [XmlText(before)] if before else []
        self._line_start = newline >= 0
        return [XmlText(self._take(stop))]

    def _line_form(self, line: str, complete: bool, eof: bool) -> list[XmlEvent] | None:
        """A line start that opens a fenced block or a directive: the state changed ([]),
        more input is needed (None), or `_PLAIN`."""
        if line.startswith("`"):
            return self._fence_line(line.lower(), complete, eof)
        if self._in_code:
            return _PLAIN
        head = line[: len(_DIRECTIVE)].lower()
        if head == _DIRECTIVE:
            self._state, self._pos, self._call_name = _State.DIRECTIVE, len(_DIRECTIVE), None
            self._scanner = _Scanner(-1)
            return []
        if not complete and not eof and _DIRECTIVE.startswith(head):
            return None
        return _PLAIN

    def _fence_line(self, line: str, complete: bool, eof: bool) -> list[XmlEvent] | None:
        if not complete and not eof and _may_be_fence(line):
            return None
        bare = complete and _is_fence(line, _CLOSE)
        if (complete and _is_fence(line, _FENCE)) or (bare and self._schemas and not self._in_code):
            stop = len(line)
            self._state, self._body, self._scanner = _State.FENCE, stop, _Scanner(stop)
            self._bare, self._in_code = bare, False
            return []
        if bare or line.startswith(_CLOSE):  # a code block's fence: opening or closing
            self._in_code = not self._in_code
        return _PLAIN

    def _directive(self, end: int, eof: bool) -> list[XmlEvent] | None:
        """Form 3: `TOOL CALL: name {arguments}` or `TOOL CALL: {call}` on one line."""
        if self._scanner.pos < 0:  # the name (or the call object) is not read yet
            started = self._directive_start(end, eof)
            if started is not _STARTED:
                return started
        value_end = self._scanner.advance(self._buf, end)
        if value_end is None:
            return self._reject_line() if eof else None
        found = self._directive_verdict(value_end)
        if found is None:
            return self._reject_line()
        self._found, self._pos, self._state = found, value_end, _State.DIRECTIVE_END
        return []

    def _directive_end(self, end: int, eof: bool) -> list[XmlEvent] | None:
        """The directive's call is read: only spaces may follow on its line."""
        rest = self._skip_spaces(self._pos, end)
        if rest == end and not eof:
            return None
        if rest < end and self._buf[rest] != "\n":
            return self._reject_line()
        self._take(min(rest + 1, end))
        self._state, self._line_start = _State.TEXT, True
        return self._calls()

    def _directive_start(self, end: int, eof: bool) -> list[XmlEvent] | None:
        """Reads the name and finds the `{`: `_STARTED` once the scanner is set there,
        None when more input is needed, else the rejection's events."""
        buf = self._buf
        pos = self._skip_spaces(self._pos, end)
        if pos < end and buf[pos] == "{":  # `TOOL CALL: {"name": ..., "arguments": ...}`
            self._scanner = _Scanner(pos)
            return _STARTED
        stop = pos
        while stop < end and buf[stop] in _NAME_CHARS:
            stop += 1
        brace = self._skip_spaces(stop, end)
        if brace == end:
            return self._reject_line() if eof else None
        if stop == pos or buf[brace] != "{":
            return self._reject_line()
        self._call_name = buf[pos:stop]
        self._scanner = _Scanner(brace, free=True)
        return _STARTED

    def _directive_verdict(self, value_end: int) -> Found | None:
        if value_end == _REJECT:
            return None
        try:
            value = orjson.loads(self._buf[self._scanner.start : value_end])
        except orjson.JSONDecodeError:
            return None
        name = self._call_name
        if name is None:
            found = _calls_from(value, self._names)
            found = found if found is not None and len(found) == 1 else None
        else:
            found = [(name, value)] if name in self._names and isinstance(value, dict) else None
        if found is None:
            return None
        name, arguments = found[0]
        schema = self._schemas.get(name)
        return found if schema is None or validates(arguments, schema) else None

    def _reject_line(self) -> list[XmlEvent]:
        """Not a directive: its `TOOL CALL:` is text, the rest is read again as text."""
        self._state, self._line_start, self._found = _State.TEXT, False, []
        return [XmlText(self._take(len(_DIRECTIVE)))]

    def _prose(self, end: int, eof: bool) -> list[XmlEvent] | None:
        """Form 5: the object that starts the buffer, in a line of prose."""
        value_end = self._scanner.advance(self._buf, end)
        if value_end is None:
            return self._reject_prose() if eof else None
        found = self._strict(self._verdict(value_end))
        if found is None or len(found) != 1:
            return self._reject_prose()
        self._take(value_end)
        self._state, self._found = _State.TEXT, found
        return self._calls()

    def _reject_prose(self) -> list[XmlEvent]:
        """Not a call: its `{` is text, the rest is read again as text."""
        self._state = _State.TEXT
        return [XmlText(self._take(1))]

    def _strict(self, found: Found | None) -> Found | None:
        """`found` if every call names a tool with a schema and validates against it."""
        if found is None:
            return None
        schemas = self._schemas
        ok = all(name in schemas and validates(args, schemas[name]) for name, args in found)
        return found if ok else None

    def _fence(self, end: int, eof: bool) -> list[XmlEvent] | None:
        value_end = self._scanner.advance(self._buf, end)
        if value_end is None:
            return self._reject_fence() if eof else None
        found = self._verdict(value_end)
        if self._bare:
            found = self._strict(found)
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
        """Not a call: the opening fence line is text, the content is read again as text
        (a code block: its closing ``` closes it)."""
        self._state, self._line_start, self._in_code = _State.TEXT, True, True
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
    _State.DIRECTIVE: JsonToolExtractor._directive,
    _State.DIRECTIVE_END: JsonToolExtractor._directive_end,
    _State.PROSE: JsonToolExtractor._prose,
}


def _is_fence(line: str, fence: str) -> bool:
    """`line` (lower-cased, with its newline) is exactly `fence` plus trailing spaces."""
    return line.startswith(fence) and not line[len(fence) :].strip(" \t\r\n")


def _may_be_fence(line: str) -> bool:
    """An unfinished line that more input may turn into a fence line (```` ```json ````,
    or a bare ```` ``` ````)."""
    if len(line) <= _FENCE_LEN and _FENCE.startswith(line):
        return True
    return _is_fence(line, _FENCE) or _is_fence(line, _CLOSE)


def _has_properties(schema: Any) -> bool:
    return isinstance(schema, dict) and isinstance(schema.get("properties"), dict)


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

    __slots__ = ("start", "pos", "depth", "level", "in_string", "escape", "expect_key", "key",
                 "free")  # fmt: skip

    def __init__(self, pos: int, *, free: bool = False) -> None:
        self.free = free  # any keys (an arguments object), not only a call's
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
        self.expect_key, self.in_string = False, True
        self.key = -1 if self.free else self.pos
        return None
