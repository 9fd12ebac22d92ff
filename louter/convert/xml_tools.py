"""Qwen-style XML tool calls written as text -> real tool calls, incrementally (design §7).

The format (Qwen3-Coder; the mock's `render_xml_call` writes exactly this)::

    <tool_call>
    <function=NAME>
    <parameter=KEY>
    VALUE
    </parameter>
    ...
    </function>
    </tool_call>

`XmlToolExtractor.feed(text)` / `.flush()` turn text into `XmlText`, `XmlToolCall` and
`XmlError` events. After merging adjacent `XmlText`s (`merge_text`) the output is the same
however the input is split. Nothing is dropped: every input character ends up in an
`XmlText`, in a call, or in an `XmlError.raw`.

Grammar, precisely
    A call opens at `<tool_call>` or, without the wrapper, at `<function=`. Whitespace may
    stand between `<tool_call>`, `<function=...>`, each parameter, `</function>` and
    `</tool_call>`. A `<tool_call>` not followed (after whitespace) by `<function=` is
    plain text. The function name and a parameter key end at `>`, or at a line end (a
    missing `>`); a function name may also end where the next `<` begins. Both are
    stripped; an empty name, or a function name with whitespace inside, is malformed.
    A value ends at the first `</parameter>` that is followed, after optional whitespace,
    by `<parameter=`, `</function>` or `</tool_call>`. So a value may hold anything else:
    `<`, `>`, `&`, quotes, code, `<div>`, XML, even `</parameter>` not followed by one of
    those three tags. NOT supported: a value containing `</parameter>` followed by one of
    those tags (the value ends there), and a missing `</parameter>` (the call then
    never ends and is reported as unterminated). Exactly one LF after `<parameter=KEY>`
    and one before `</parameter>` belong to the format and are removed. String values
    are otherwise verbatim: no trimming, no CR handling, no XML entity decoding (`&amp;`
    stays `&amp;`); other types are parsed from the trimmed text.
    A call is complete at `</function>`, or at `</tool_call>` when `</function>` is
    missing; a `</tool_call>` right after `</function>` (after whitespace) is consumed
    whether or not the call opened with `<tool_call>` (not after an unknown tool's call:
    that call is reported as an error whose raw text is shown, so it stays text too).

Events
    `XmlToolCall(index, call)` as soon as a call is complete; `index` counts calls from 0
    and the id is `ids(index)`; `call.arguments` is JSON text (`model.dump_arguments`).
    `XmlText(text)` for everything outside calls, at once; only text that may still
    become an opening tag is held back. `XmlError(message, raw, kind)` for call-like text
    that is not a call, with `raw` the exact input it covers (to be shown as text, logged,
    or both): kind "unknown_tool" (the name is not among the request's tools, when tools
    were given), "malformed" (the structure broke; `raw` runs up to the break and parsing
    resumes as text there), "unterminated" (the input ended inside a call).

Typing (`typed_arguments`)
    With a schema for the key, values are typed by its `type` (a string, a list of types,
    or the types of `anyOf`/`oneOf` members): null, boolean (`true`/`false`, any case),
    integer, number, object, array (as JSON); non-string types are tried in order, then
    string (the value verbatim). A value that fits no declared type is JSON-parsed when
    valid, else kept as a string. Without a schema (no tools, unknown key, no type):
    JSON-parsed when valid, else the string.

Hold-back cap
    Everything held (a possible tag prefix, or an incomplete call) is capped at `cap`
    characters counted from where it starts: if the first `cap` characters do not decide
    it, they are released as `XmlText` and scanning resumes after them. The decision
    depends only on the text, never on the chunking. A call longer than the cap (say, a
    `write_file` of a large file) therefore comes out as text: size the cap to the
    largest call a backend is expected to write (default 64 KiB).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum, auto
from typing import Any

import orjson

from louter.convert.model import IdFactory, Tool
from louter.convert.tool_text import DEFAULT_CAP, BufferedExtractor, XmlError, XmlEvent, XmlText

__all__ = ["XmlToolExtractor", "typed_arguments", "typed_value"]

# --------------------------------------------------------------------------- XML


class _State(Enum):
    TEXT = auto()  # plain text; a `<` that may open a call is held
    WRAPPER = auto()  # after `<tool_call>`: whitespace, then `<function=`
    NAME = auto()  # after `<function=`: the name, up to `>` or a line end
    BODY = auto()  # between parameters: `<parameter=`, `</function>` or `</tool_call>`
    KEY = auto()  # after `<parameter=`: the key, up to `>` or a line end
    VALUE = auto()  # the value, up to a `</parameter>` followed by a body tag
    AFTER = auto()  # after `</function>`: whitespace and an optional `</tool_call>`


_OPENERS = ("<tool_call>", "<function=")
_FUNCTION = ("<function=",)
_BODY_TAGS = ("<parameter=", "</function>", "</tool_call>")
_WRAPPER_END = ("</tool_call>",)
_VALUE_END = "</parameter>"
_NAME_END = re.compile(r"[^>\n<]*")
_LONGEST = 12  # the longest tag above


def _match(buf: str, pos: int, end: int, tags: Sequence[str]) -> str | None:
    """The tag at `buf[pos:end]`; "" while the text there may still become one (more
    input decides); None when no tag of `tags` starts there."""
    rest = buf[pos : min(end, pos + _LONGEST)]
    for tag in tags:
        if rest.startswith(tag):
            return tag
    return "" if any(tag.startswith(rest) for tag in tags) else None


def may_hold_call(text: str) -> bool:
    """Whether `text` could hold a call (cheap: an opener appears in it). False means the
    extractor would give `text` back unchanged."""
    return any(opener in text for opener in _OPENERS)


class XmlToolExtractor(BufferedExtractor):
    """Text in, text and tool-call events out; one instance per message.

    Args:
        tools: the request's tools: names are checked against them and values typed
            from their `parameters` schemas. None: any name, values untyped (JSON when
            valid). An empty sequence allows no name at all.
        ids: call number -> call id (deterministic; passed in).
        cap: the most characters held back while undecided.
    """

    __slots__ = ("_state", "_tools", "_name", "_key", "_params", "_start", "_scan", "_lead")

    def __init__(
        self, tools: Sequence[Tool] | None = None, *, ids: IdFactory, cap: int = DEFAULT_CAP
    ) -> None:
        super().__init__(ids, cap)
        self._tools = None if tools is None else {tool.name: tool for tool in tools}
        self._state = _State.TEXT
        self._name = ""  # the current call's function name
        self._key = ""  # the current parameter's key
        self._params: list[tuple[str, str]] = []  # (key, value text) in order
        self._start = 0  # where the current value starts in `_buf`
        self._scan = 0  # no real `</parameter>` starts before this in `_buf`
        self._lead = True  # the value may start with the format's newline

    def _step(self, end: int, eof: bool) -> list[XmlEvent] | None:
        return _HANDLERS[self._state](self, end, eof)

    def _restart(self, released: str) -> None:
        self._state = _State.TEXT

    def _text(self, end: int, eof: bool) -> list[XmlEvent] | None:
        buf = self._buf
        lt = buf.find("<", 0, end)
        if lt != 0:
            return [XmlText(self._take(end if lt < 0 else lt))]
        tag = _match(buf, 0, end, _OPENERS)
        if tag == "" and not eof:
            return None
        if tag:
            self._pos = len(tag)
            self._state = _State.WRAPPER if tag == "<tool_call>" else _State.NAME
            return []
        lt = buf.find("<", 1, end)
        return [XmlText(self._take(end if lt < 0 else lt))]

    def _wrapper(self, end: int, eof: bool) -> list[XmlEvent] | None:
        self._pos = self._skip_ws(self._pos, end)
        tag = _match(self._buf, self._pos, end, _FUNCTION)
        if tag == "":
            return self._unterminated() if eof else None
        if tag is None:  # `<tool_call>` without a function: plain text
            self._state = _State.TEXT
            return [XmlText(self._take(self._pos))]
        self._pos += len(tag)
        self._state = _State.NAME
        return []

    def _function_name(self, end: int, eof: bool) -> list[XmlEvent] | None:
        stop = self._name_end(end)
        if stop == end:
            return self._unterminated() if eof else None
        name = self._buf[self._pos : stop].strip()
        if not name or len(name.split()) > 1:
            return self._malformed(stop, f"bad function name {name!r}")
        self._name, self._params = name, []
        self._pos = stop if self._buf[stop] == "<" else stop + 1
        self._state = _State.BODY
        return []

    def _body(self, end: int, eof: bool) -> list[XmlEvent] | None:
        self._pos = self._skip_ws(self._pos, end)
        tag = _match(self._buf, self._pos, end, _BODY_TAGS)
        if tag == "":
            return self._unterminated() if eof else None
        if tag is None:
            return self._malformed(self._pos, "expected <parameter=...> or </function>")
        self._pos += len(tag)
        if tag == "<parameter=":
            self._state = _State.KEY
            return []
        return self._finish(_State.AFTER if tag == "</function>" else _State.TEXT)

    def _parameter_key(self, end: int, eof: bool) -> list[XmlEvent] | None:
        stop = self._name_end(end)
        if stop == end:
            return self._unterminated() if eof else None
        key = self._buf[self._pos : stop].strip()
        if not key or self._buf[stop] == "<":
            return self._malformed(stop, f"bad parameter name {key!r}")
        self._key, self._lead = key, self._buf[stop] == ">"
        self._pos = self._start = self._scan = stop + 1
        self._state = _State.VALUE
        return []

    def _value(self, end: int, eof: bool) -> list[XmlEvent] | None:
        buf = self._buf
        while True:
            close = buf.find(_VALUE_END, self._scan, end)
            if close < 0:
                self._scan = max(self._scan, end - len(_VALUE_END) + 1)
                return self._unterminated() if eof else None
            after = close + len(_VALUE_END)
            tag = _match(buf, self._skip_ws(after, end), end, _BODY_TAGS)
            if tag == "" and not eof:
                self._scan = close
                return None
            if tag:
                self._params.append(
                    (self._key, _strip_format(buf[self._start : close], self._lead))
                )
                self._pos = after
                self._state = _State.BODY
                return []
            self._scan = close + 1

    def _after(self, end: int, eof: bool) -> list[XmlEvent] | None:
        stop = self._skip_ws(0, end)
        tag = _match(self._buf, stop, end, _WRAPPER_END)
        if tag == "" and not eof:
            return None
        if tag:
            self._take(stop + len(tag))
        self._state = _State.TEXT
        return []

    def _name_end(self, end: int) -> int:
        match = _NAME_END.match(self._buf, self._pos, end)
        return match.end() if match else self._pos

    def _finish(self, state: _State) -> list[XmlEvent]:
        raw = self._take(self._pos)
        self._state = state
        if self._tools is None:
            return [self._call(self._name, typed_arguments(self._params, None))]
        tool = self._tools.get(self._name)
        if tool is None:  # shown as text, and so is a `</tool_call>` after it: nothing lost
            self._state = _State.TEXT
            return [XmlError(f"unknown tool {self._name!r}", raw, "unknown_tool")]
        return [self._call(self._name, typed_arguments(self._params, tool.parameters))]

    def _malformed(self, stop: int, why: str) -> list[XmlEvent]:
        self._state = _State.TEXT
        return [XmlError(f"malformed tool call: {why}", self._take(stop), "malformed")]

    def _unterminated(self) -> list[XmlEvent]:
        self._state = _State.TEXT
        raw = self._take(len(self._buf))
        return [XmlError("tool call not terminated at end of input", raw, "unterminated")]


_HANDLERS: dict[_State, Callable[[XmlToolExtractor, int, bool], list[XmlEvent] | None]] = {
    _State.TEXT: XmlToolExtractor._text,
    _State.WRAPPER: XmlToolExtractor._wrapper,
    _State.NAME: XmlToolExtractor._function_name,
    _State.BODY: XmlToolExtractor._body,
    _State.KEY: XmlToolExtractor._parameter_key,
    _State.VALUE: XmlToolExtractor._value,
    _State.AFTER: XmlToolExtractor._after,
}


def _strip_format(value: str, lead: bool) -> str:
    """Remove the newline the format puts after `<parameter=KEY>` (when `lead`) and the
    one before `</parameter>`: exactly one LF each, nothing else."""
    if lead and value.startswith("\n"):
        value = value[1:]
    return value[:-1] if value.endswith("\n") else value


# --------------------------------------------------------------------------- typing


class _Unfit:
    """Marker: the text does not fit the type."""


_UNFIT = _Unfit()
_INTEGER = re.compile(r"-?\d+")
_INT_LIMIT = 2**63  # orjson writes 64-bit integers only


def typed_arguments(
    params: Iterable[tuple[str, str]], schema: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Parameter texts -> arguments, typed by the tool's JSON schema (module docstring)."""
    properties = schema.get("properties") if schema is not None else None
    if not isinstance(properties, Mapping):
        properties = {}
    return {key: typed_value(text, properties.get(key)) for key, text in params}


def typed_value(text: str, schema: Any) -> Any:
    """One value, typed by its property schema (None or not a schema: untyped)."""
    types = _types(schema) if isinstance(schema, Mapping) else ()
    for kind in types:
        parser = _PARSERS.get(kind)
        value = parser(text.strip()) if parser is not None else _UNFIT
        if value is not _UNFIT:
            return value
    return text if "string" in types else _json_or_text(text)


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind.lower()]
    if isinstance(kind, list):
        return [str(item).lower() for item in kind]
    members = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(members, list):
        return [t for member in members if isinstance(member, Mapping) for t in _types(member)]
    return []


def _json_or_text(text: str) -> Any:
    value = _json(text)
    return text if value is _UNFIT else value


def _json(text: str) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _UNFIT
    if isinstance(value, float) and _INTEGER.fullmatch(text.strip()):
        return _UNFIT  # an integer beyond 64 bits: orjson would round it to a float
    return _UNFIT if isinstance(value, int) and abs(value) >= _INT_LIMIT else value


def _as_null(text: str) -> Any:
    return None if text == "null" else _UNFIT


def _as_boolean(text: str) -> Any:
    return {"true": True, "false": False}.get(text.lower(), _UNFIT)


def _as_integer(text: str) -> Any:
    value = int(text) if _INTEGER.fullmatch(text) else _as_number(text)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and abs(value) < _INT_LIMIT else _UNFIT


def _as_number(text: str) -> Any:
    value = _json(text)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else _UNFIT


def _as_object(text: str) -> Any:
    value = _json(text)
    return value if isinstance(value, dict) else _UNFIT


def _as_array(text: str) -> Any:
    value = _json(text)
    return value if isinstance(value, list) else _UNFIT


_PARSERS = {
    "null": _as_null,
    "boolean": _as_boolean,
    "integer": _as_integer,
    "number": _as_number,
    "object": _as_object,
    "array": _as_array,
}
