"""The XML tool-call extractor: grammar and tolerance tables, typing, errors, the cap,
incremental delivery, and re-chunking invariance (every split, byte by byte, hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from louter.convert.model import Tool, ToolCall, dump_arguments
from louter.convert.tool_text import (
    DEFAULT_CAP,
    BufferedExtractor,
    XmlError,
    XmlEvent,
    XmlText,
    XmlToolCall,
    merge_text,
)
from louter.convert.xml_tools import XmlToolExtractor, typed_arguments, typed_value
from louter.mock.engine import render_xml_call


def ids(index: int) -> str:
    return f"call_{index}"


def T(text: str) -> XmlText:
    return XmlText(text)


def C(index: int, name: str, arguments: dict[str, Any]) -> XmlToolCall:
    return XmlToolCall(index, ToolCall(ids(index), name, dump_arguments(arguments)))


def E(kind: str, raw: str) -> tuple[str, str]:
    """An expected error, compared by kind and raw text (messages are for humans)."""
    return (kind, raw)


def extract(
    chunks: list[str], tools: list[Tool] | None = None, cap: int = DEFAULT_CAP
) -> list[XmlEvent]:
    extractor = XmlToolExtractor(tools, ids=ids, cap=cap)
    events: list[XmlEvent] = []
    for chunk in chunks:
        events += extractor.feed(chunk)
    events += extractor.flush()
    assert all(e.text for e in events if isinstance(e, XmlText)), "empty text event"
    return merge_text(events)


def comparable(events: list[XmlEvent]) -> list[Any]:
    return [E(e.kind, e.raw) if isinstance(e, XmlError) else e for e in events]


def run(text: str, tools: list[Tool] | None = None, cap: int = DEFAULT_CAP) -> list[Any]:
    return comparable(extract([text], tools, cap))


WRAP = "<tool_call>\n<function=f>\n<parameter=v>\n{}\n</parameter>\n</function>\n</tool_call>"


def value_case(value: str) -> str:
    return WRAP.format(value)


# (id, input, expected) with no tools: any name, values untyped (JSON when valid).
CASES: list[tuple[str, str, list[Any]]] = [
    ("empty", "", []),
    ("plain text", "Hello, world.\n", [T("Hello, world.\n")]),
    ("angle brackets in text", "a < b > c <b>bold</b> <", [T("a < b > c <b>bold</b> <")]),
    ("opener prefix at end", "see <tool_", [T("see <tool_")]),
    ("function prefix at end", "x <function", [T("x <function")]),
    ("stray closers are text", "</tool_call></function>", [T("</tool_call></function>")]),
    (
        "seed example",
        "<tool_call><function=test><parameter=x>5\n</parameter></function></tool_call>",
        [C(0, "test", {"x": 5})],
    ),
    (
        "canonical format with text around",
        "Let me look.\n\n" + render_xml_call("read", {"path": "a.py", "n": 3}) + "\nDone.",
        [T("Let me look.\n\n"), C(0, "read", {"path": "a.py", "n": 3}), T("\nDone.")],
    ),
    (
        "no parameters",
        "<tool_call>\n<function=ping>\n</function>\n</tool_call>",
        [C(0, "ping", {})],
    ),
    ("value with < > &", value_case("a < b && c > d"), [C(0, "f", {"v": "a < b && c > d"})]),
    ("entities are not decoded", value_case("&amp; &lt;"), [C(0, "f", {"v": "&amp; &lt;"})]),
    ("quotes", value_case("say \"hi\" and 'bye'"), [C(0, "f", {"v": "say \"hi\" and 'bye'"})]),
    (
        "html in value",
        value_case("<div>\n<p>x</p>\n</div>"),
        [C(0, "f", {"v": "<div>\n<p>x</p>\n</div>"})],
    ),
    (
        "code spanning lines",
        value_case("def f(x):\n    return x < 3 and x > 1\n"),
        [C(0, "f", {"v": "def f(x):\n    return x < 3 and x > 1\n"})],
    ),
    (
        "</parameter> inside code, not followed by a tag",
        value_case('s = "</parameter>"\nprint(s)'),
        [C(0, "f", {"v": 's = "</parameter>"\nprint(s)'})],
    ),
    (
        "tag-looking text inside a value",
        value_case("<function=x> <parameter=y> </function <tool_call>"),
        [C(0, "f", {"v": "<function=x> <parameter=y> </function <tool_call>"})],
    ),
    (
        "</parameter> followed by a body tag ends the value (unsupported inside values)",
        value_case("a</parameter>\n</function>b"),
        [C(0, "f", {"v": "a"}), T("b\n</parameter>\n</function>\n</tool_call>")],
    ),
    ("one format newline each side", value_case("\n\nx\n\n"), [C(0, "f", {"v": "\n\nx\n\n"})]),
    ("JSON value without schema", value_case('{"a": [1, 2]}'), [C(0, "f", {"v": {"a": [1, 2]}})]),
    ("number without schema", value_case("2.5"), [C(0, "f", {"v": 2.5})]),
    ("text without schema", value_case("hello"), [C(0, "f", {"v": "hello"})]),
    ("empty value", value_case(""), [C(0, "f", {"v": ""})]),
    (
        "value without newlines",
        "<function=f><parameter=a>x</parameter></function>",
        [C(0, "f", {"a": "x"})],
    ),
    (
        "several parameters, last duplicate wins",
        "<function=f>\n<parameter=a>\n1\n</parameter>\n<parameter=b>\nx\n</parameter>\n"
        "<parameter=a>\n2\n</parameter>\n</function>",
        [C(0, "f", {"a": 2, "b": "x"})],
    ),
    (
        "several calls",
        render_xml_call("a", {"x": 1}) + "\n" + render_xml_call("b", {"y": "z"}) + " end",
        [C(0, "a", {"x": 1}), T("\n"), C(1, "b", {"y": "z"}), T(" end")],
    ),
    (
        "two functions in one wrapper",
        "<tool_call>\n<function=a>\n</function>\n<function=b>\n</function>\n</tool_call>",
        [C(0, "a", {}), T("\n"), C(1, "b", {})],
    ),
    (
        "missing <tool_call> wrapper",
        "Sure: <function=f>\n<parameter=a>\n1\n</parameter>\n</function> ok",
        [T("Sure: "), C(0, "f", {"a": 1}), T(" ok")],
    ),
    (
        "missing </tool_call>",
        "<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n</function>\nafter",
        [C(0, "f", {"a": 1}), T("\nafter")],
    ),
    (
        "missing </tool_call> before the next call",
        "<tool_call>\n<function=a>\n</function><tool_call>\n<function=b>\n</function>",
        [C(0, "a", {}), C(1, "b", {})],
    ),
    (
        "missing </function> before </tool_call>",
        "<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n</tool_call>x",
        [C(0, "f", {"a": 1}), T("x")],
    ),
    (
        "<function=name without >",
        "<tool_call>\n<function=f\n<parameter=a>\n1\n</parameter>\n</function>\n</tool_call>",
        [C(0, "f", {"a": 1})],
    ),
    (
        "<function=name directly followed by a tag",
        "<function=f<parameter=a>1</parameter></function>",
        [C(0, "f", {"a": 1})],
    ),
    (
        "<parameter=key without >",
        "<function=f>\n<parameter=a\n\nx\n</parameter>\n</function>",
        [C(0, "f", {"a": "\nx"})],
    ),
    (
        "stray whitespace",
        "<tool_call>  \n\n<function= f >\t\n  <parameter= a >\n1\n</parameter>  \n\n"
        "</function>  \n\n </tool_call>!",
        [C(0, "f", {"a": 1}), T("!")],
    ),
    (
        "<tool_call> without a function is text",
        '<tool_call>\n{"name": "f"}\n</tool_call>',
        [T('<tool_call>\n{"name": "f"}\n</tool_call>')],
    ),
    (
        "empty function name",
        "<function=>\n</function>",
        [E("malformed", "<function="), T(">\n</function>")],
    ),
    (
        "function name with a space",
        "<function=get weather>\n</function>",
        [E("malformed", "<function=get weather"), T(">\n</function>")],
    ),
    (
        "text inside the function body",
        "<function=f>\nhello\n</function>",
        [E("malformed", "<function=f>\n"), T("hello\n</function>")],
    ),
    (
        "empty parameter name",
        "<function=f>\n<parameter=>\n1\n</parameter>\n</function>",
        [E("malformed", "<function=f>\n<parameter="), T(">\n1\n</parameter>\n</function>")],
    ),
    (
        "parameter name cut by a tag",
        "<function=f>\n<parameter=a<b>",
        [E("malformed", "<function=f>\n<parameter=a"), T("<b>")],
    ),
    (
        "a new call inside a call: the first is malformed, the second parses",
        "<tool_call>\n<function=a>\n<tool_call>\n<function=b>\n</function>\n</tool_call>",
        [E("malformed", "<tool_call>\n<function=a>\n"), C(0, "b", {})],
    ),
    (
        "unterminated wrapper",
        "text <tool_call>\n",
        [T("text "), E("unterminated", "<tool_call>\n")],
    ),
    (
        "unterminated name",
        "<tool_call>\n<function=rea",
        [E("unterminated", "<tool_call>\n<function=rea")],
    ),
    ("unterminated body", "<function=f>\n", [E("unterminated", "<function=f>\n")]),
    (
        "unterminated key",
        "<function=f>\n<parameter=pa",
        [E("unterminated", "<function=f>\n<parameter=pa")],
    ),
    (
        "unterminated value",
        "<function=f>\n<parameter=a>\nsome code <",
        [E("unterminated", "<function=f>\n<parameter=a>\nsome code <")],
    ),
    (
        "cut after </parameter>",
        "<function=f>\n<parameter=a>\n1\n</parameter>\n",
        [E("unterminated", "<function=f>\n<parameter=a>\n1\n</parameter>\n")],
    ),
    (
        "missing </parameter> is unterminated (unsupported)",
        "<function=f>\n<parameter=a>\n1\n</function>\nlater text",
        [E("unterminated", "<function=f>\n<parameter=a>\n1\n</function>\nlater text")],
    ),
    ("cut in </tool_call>", render_xml_call("f", {})[:-3], [C(0, "f", {}), T("\n</tool_ca")]),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_grammar_table(text: str, expected: list[Any]) -> None:
    assert run(text) == expected


# --- tools: names and typing ----------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "count": {"type": "integer"},
        "ratio": {"type": "number"},
        "force": {"type": "boolean"},
        "nothing": {"type": "null"},
        "meta": {"type": "object"},
        "lines": {"type": "array"},
        "maybe": {"type": ["integer", "null"]},
        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    },
}
TOOLS = [Tool("write", "", SCHEMA), Tool("ping")]


def test_schema_typing_through_the_extractor() -> None:
    params = {
        "path": "007",
        "count": " 42 ",
        "ratio": "0.5",
        "force": "False",
        "nothing": "null",
        "meta": '{"a": {"b": [1]}}',
        "lines": '["x", "y"]',
        "maybe": "null",
        "either": "12",
        "extra": "[1, 2]",
    }
    text = render_xml_call("write", params)
    expected = {
        "path": "007",
        "count": 42,
        "ratio": 0.5,
        "force": False,
        "nothing": None,
        "meta": {"a": {"b": [1]}},
        "lines": ["x", "y"],
        "maybe": None,
        "either": 12,
        "extra": [1, 2],
    }
    assert run(text, TOOLS) == [C(0, "write", expected)]


TYPING: list[tuple[str, Any, Any]] = [
    ("5", {"type": "integer"}, 5),
    (" -5\n", {"type": "integer"}, -5),
    ("5.0", {"type": "integer"}, 5),
    ("1e3", {"type": "integer"}, 1000),
    ("5.5", {"type": "integer"}, 5.5),  # fits no declared type: JSON when valid
    ("five", {"type": "integer"}, "five"),
    ("99999999999999999999", {"type": "integer"}, "99999999999999999999"),  # beyond 64 bits
    ("1e400", {"type": "number"}, "1e400"),
    ("2", {"type": "number"}, 2),
    ("-0.25", {"type": "number"}, -0.25),
    ("NaN", {"type": "number"}, "NaN"),
    ("true", {"type": "boolean"}, True),
    ("TRUE", {"type": "boolean"}, True),
    ("yes", {"type": "boolean"}, "yes"),
    ("null", {"type": "null"}, None),
    ("none", {"type": "null"}, "none"),
    ('{"a": 1}', {"type": "object"}, {"a": 1}),
    ("[1]", {"type": "object"}, [1]),
    ("{bad", {"type": "object"}, "{bad"),
    ("[1, {}]", {"type": "array"}, [1, {}]),
    ("5", {"type": "string"}, "5"),
    (' "q" ', {"type": "string"}, ' "q" '),
    ("null", {"type": ["string", "null"]}, None),
    ("x", {"type": ["string", "null"]}, "x"),
    ("5", {"type": ["string", "integer"]}, 5),
    ("7", {"oneOf": [{"type": "integer"}, {"type": "string"}]}, 7),
    ("7", {"type": "INTEGER"}, 7),
    ("7", {"enum": ["7", "8"]}, 7),  # no type: untyped
    ("7", {"type": "whatever"}, 7),
    ("7", True, 7),  # not a schema: untyped
    ("7", None, 7),
    ("hello", None, "hello"),
    ('"quoted"', None, "quoted"),
    ("007", None, "007"),
    ("", None, ""),
    ("99999999999999999999", None, "99999999999999999999"),
]


@pytest.mark.parametrize(("text", "schema", "expected"), TYPING)
def test_typed_value(text: str, schema: Any, expected: Any) -> None:
    value = typed_value(text, schema)
    assert value == expected and type(value) is type(expected)


def test_typed_arguments_without_usable_properties() -> None:
    params = [("a", "1"), ("b", "x")]
    assert typed_arguments(params, None) == {"a": 1, "b": "x"}
    assert typed_arguments(params, {"type": "object"}) == {"a": 1, "b": "x"}
    assert typed_arguments(params, {"properties": ["a"]}) == {"a": 1, "b": "x"}
    assert typed_arguments(params, {"properties": {"a": {"type": "string"}}}) == {
        "a": "1",
        "b": "x",
    }


def test_unknown_tool_is_reported_with_its_raw_text() -> None:
    call = render_xml_call("delete_everything", {"x": 1})
    unknown = [T("a"), E("unknown_tool", call[:-13]), T(call[-13:] + "b")]  # nothing lost
    assert run("a" + call + "b", TOOLS) == unknown
    (error,) = [e for e in extract([call], TOOLS) if isinstance(e, XmlError)]
    assert "delete_everything" in error.message


def test_known_tools_are_calls_and_numbering_skips_errors() -> None:
    text = render_xml_call("nope", {}) + render_xml_call("ping", {}) + render_xml_call("write", {})
    assert run(text, TOOLS) == [
        E("unknown_tool", render_xml_call("nope", {})[:-13]),
        T(render_xml_call("nope", {})[-13:]),  # an error's `</tool_call>` stays text
        C(0, "ping", {}),
        C(1, "write", {}),
    ]


def test_empty_tool_list_allows_no_name() -> None:
    assert run("<function=ping>\n</function>", []) == [
        E("unknown_tool", "<function=ping>\n</function>")
    ]


def test_ids_come_from_the_factory() -> None:
    extractor = XmlToolExtractor(ids=lambda n: f"toolu_{n * 10}")
    events = extractor.feed(render_xml_call("a", {}) + render_xml_call("b", {}))
    assert [e.call.id for e in events if isinstance(e, XmlToolCall)] == ["toolu_0", "toolu_10"]


# --- the cap -------------------------------------------------------------------------------


def test_cap_overflow_is_released_as_text_never_dropped() -> None:
    call = render_xml_call("f", {"v": "x" * 40})
    text = "ab" + call + "cd"
    events = run(text, cap=32)
    assert all(isinstance(e, XmlText) for e in events)
    assert "".join(e.text for e in events) == text
    assert events == [T(text)]


def test_cap_releases_exactly_cap_characters_then_rescans() -> None:
    held = "<tool_call>" + " " * 80  # undecided for longer than the cap
    extractor = XmlToolExtractor(ids=ids, cap=64)
    events = extractor.feed(held)
    assert events[0] == T(held[:64])
    assert merge_text(events) == [T(held)]
    assert extractor.feed(render_xml_call("f", {})) == [C(0, "f", {})]
    assert extractor.flush() == []


def test_call_within_the_cap_is_a_call() -> None:
    call = render_xml_call("f", {"v": "x"})
    assert run(call, cap=len(call)) == [C(0, "f", {"v": "x"})]
    assert run(call, cap=len(call) - 13) == [C(0, "f", {"v": "x"})]  # up to </function>
    assert run(call, cap=len(call) - 14) == [T(call)]


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cap"):
        XmlToolExtractor(ids=ids, cap=0)


# --- incremental delivery ------------------------------------------------------------------


def test_plain_text_streams_out_at_once() -> None:
    extractor = XmlToolExtractor(ids=ids)
    assert extractor.feed("Hello ") == [T("Hello ")]
    assert extractor.feed("a < b, ") == [T("a "), T("< b, ")]
    assert extractor.feed("<tool") == []
    assert extractor.feed("s>") == [T("<tools>")]
    assert extractor.feed("") == []
    assert extractor.flush() == []


def test_call_is_emitted_at_its_closing_tag() -> None:
    extractor = XmlToolExtractor(ids=ids)
    assert extractor.feed("x<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>") == [T("x")]
    assert extractor.feed("\n</functio") == []
    assert extractor.feed("n>") == [C(0, "f", {"a": 1})]
    assert extractor.feed("\n</tool_call>") == []
    assert extractor.feed("bye") == [T("bye")]
    assert extractor.flush() == []


def test_flush_reports_the_unterminated_call() -> None:
    extractor = XmlToolExtractor(ids=ids)
    assert extractor.feed("<function=f>\n<parameter=a>\n1") == []
    (error,) = extractor.flush()
    assert isinstance(error, XmlError) and error.kind == "unterminated"
    assert error.raw == "<function=f>\n<parameter=a>\n1"
    assert extractor.flush() == []


def test_the_driver_needs_a_subclass() -> None:
    with pytest.raises(NotImplementedError):
        BufferedExtractor(ids, 1).feed("x")
    with pytest.raises(NotImplementedError):
        BufferedExtractor(ids, 1)._restart("x")


def test_merge_text() -> None:
    events: list[XmlEvent] = [T("a"), T(""), T("b"), C(0, "f", {}), T(""), T("c")]
    assert merge_text(events) == [T("ab"), C(0, "f", {}), T("c")]


# --- re-chunking invariance ----------------------------------------------------------------

FIXTURES = [c[1] for c in CASES if c[1]] + [
    render_xml_call("write", {"path": "a", "count": 3}) + " tail <func",
]


@pytest.mark.parametrize("text", FIXTURES, ids=[c[0] for c in CASES if c[1]] + ["typed"])
@pytest.mark.parametrize("tools", [None, TOOLS], ids=["untyped", "tools"])
def test_every_split_offset_and_byte_by_byte(text: str, tools: list[Tool] | None) -> None:
    whole = extract([text], tools)
    assert extract(list(text), tools) == whole
    for cut in range(len(text) + 1):
        assert extract([text[:cut], text[cut:]], tools) == whole, cut


def split(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(c % (len(text) + 1) for c in cuts), len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


# Generated calls: values of every JSON type, typed by a matching schema, rendered like the
# mock (or with a tolerated malformation), between texts that contain no complete tag.
SAFE = ["a", " ", "\n", "<", ">", "&", '"', "'", "=", "/", "<tool", "<func", "tion", "_call",
        "</", "<div>", "</parameter>", "<parameter", "{", "}", "é", "😀"]  # fmt: skip
FORBIDDEN = ("<tool_call>", "<function=", "</tool_call>", "<parameter=", "</function>")


def no_tags(text: str) -> bool:
    return not any(tag in text for tag in FORBIDDEN)


texts = st.lists(st.sampled_from(SAFE), max_size=8).map("".join).filter(no_tags)
json_scalars = st.none() | st.booleans() | st.integers(-(2**62), 2**62) | texts
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
KINDS = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null",
         list: "array", dict: "object"}  # fmt: skip
names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
arguments = st.dictionaries(names, json_values, max_size=4)
STYLES = ["full", "no_wrapper", "no_close", "no_gt", "key_no_gt"]


def render(name: str, args: dict[str, Any], style: str) -> str:
    text = render_xml_call(name, args)
    if style == "no_wrapper":
        return text.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>")
    if style == "no_close":
        return text.removesuffix("\n</tool_call>")
    if style == "no_gt":
        return text.replace(f"<function={name}>", f"<function={name}")
    if style == "key_no_gt":
        for key in args:
            text = text.replace(f"<parameter={key}>\n", f"<parameter={key}\n")
    return text


def schema_for(args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": KINDS[type(v)]} for k, v in args.items()}}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(texts, names, arguments, st.sampled_from(STYLES)), max_size=3),
    texts,
    st.lists(st.integers(0), max_size=12),
)
def test_generated_calls_survive_any_split(
    calls: list[tuple[str, str, dict[str, Any], str]], tail: str, cuts: list[int]
) -> None:
    text = "".join(before + render(name, args, style) for before, name, args, style in calls)
    text += tail
    tools = [Tool(name, "", schema_for(args)) for _, name, args, _ in calls]
    expected: list[XmlEvent] = []
    for index, (before, name, args, _) in enumerate(calls):
        expected += [T(before), C(index, name, args)]
    expected = merge_text([*expected, T(tail)])
    # Tools of the same name: the last one's schema wins in the extractor; use unique ones.
    if len({name for _, name, _, _ in calls}) == len(calls):
        got = extract(split(text, cuts), tools)
        assert [_parsed(e) for e in got] == [_parsed(e) for e in expected]
    assert extract(split(text, cuts)) == extract([text])


def _parsed(event: XmlEvent) -> Any:
    if isinstance(event, XmlToolCall):
        return (event.index, event.call.id, event.call.name, event.call.arguments_object())
    return event


SOUP = ["<tool_call>", "</tool_call>", "<function=f>", "<function=g", "<function=", "<parameter=a>",
        "<parameter=b", "</parameter>", "</function>", "<tool_", "call>", "</para", "meter>",
        "<", ">", "\n", " ", "x", "5", '"', "=", "&", "{", "}"]  # fmt: skip
SOUP_TOOLS = [Tool("f", "", {"properties": {"a": {"type": "integer"}}})]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(SOUP), max_size=40),
    st.lists(st.integers(0), max_size=20),
    st.sampled_from([None, SOUP_TOOLS]),
    st.sampled_from([5, 12, 30, DEFAULT_CAP]),
)
def test_any_input_any_split_same_output(
    tokens: list[str], cuts: list[int], tools: list[Tool] | None, cap: int
) -> None:
    text = "".join(tokens)
    whole = extract([text], tools, cap)
    assert extract(split(text, cuts), tools, cap) == whole
    if not any(isinstance(e, XmlToolCall) for e in whole):  # nothing is lost
        assert "".join(kept(e) for e in whole) == text


def kept(event: XmlEvent) -> str:
    return (
        event.raw
        if isinstance(event, XmlError)
        else event.text
        if isinstance(event, XmlText)
        else ""
    )
