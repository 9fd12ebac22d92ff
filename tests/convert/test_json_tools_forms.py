"""The text tool-call forms added to `JsonToolExtractor` for issue 20: `TOOL CALL:`
directives, bare ``` fences and a call in JSON inside prose. Each whole and split at
every index (streamed), and the negatives: a tool not in the request, arguments that
fail the schema, a tool without a schema (forms that need one), calls in code blocks.
Also the schema check itself."""

from __future__ import annotations

from typing import Any

import pytest

from louter.convert.json_tools import JsonToolExtractor, may_hold_call
from louter.convert.model import Tool, ToolCall, dump_arguments
from louter.convert.schema_check import validates
from louter.convert.tool_text import XmlEvent, XmlText, XmlToolCall, merge_text

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS = [Tool("get_weather", parameters=WEATHER_SCHEMA), Tool("ping")]  # ping: no schema


def ids(index: int) -> str:
    return f"call_{index}"


def T(text: str) -> XmlText:
    return XmlText(text)


def C(index: int, name: str, arguments: dict[str, Any]) -> XmlToolCall:
    return XmlToolCall(index, ToolCall(ids(index), name, dump_arguments(arguments)))


def extract(chunks: list[str], tools: list[Tool] = TOOLS) -> list[XmlEvent]:
    extractor = JsonToolExtractor(tools, ids=ids)
    events: list[XmlEvent] = []
    for chunk in chunks:
        events += extractor.feed(chunk)
    events += extractor.flush()
    assert all(e.text for e in events if isinstance(e, XmlText)), "empty text event"
    return merge_text(events)


PARIS = C(0, "get_weather", {"city": "Paris"})
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'

CASES: list[tuple[str, str, list[XmlEvent] | None]] = [
    # 3. directives
    ("directive", 'TOOL CALL: get_weather {"city": "Paris"}', [PARIS]),
    ("directive, any case", 'Tool call: get_weather {"city": "Paris"}\n', [PARIS]),
    (
        "directive in a message",
        'I will look.\nTOOL CALL: get_weather {"city": "Paris"}\nOK',
        [T("I will look.\n"), PARIS, T("OK")],
    ),  # fmt: skip
    ("directive with a call object", "TOOL CALL: " + CALL, [PARIS]),
    ("directive, tool without schema", "TOOL CALL: ping {}", [C(0, "ping", {})]),
    ("directive, unknown tool", 'TOOL CALL: rm {"path": "/"}', None),
    ("directive, invalid arguments", 'TOOL CALL: get_weather {"town": "Paris"}', None),
    ("directive, wrong type", 'TOOL CALL: get_weather {"city": 7}', None),
    ("directive, text after", 'TOOL CALL: get_weather {"city": "Paris"} please', None),
    ("directive, no arguments", "TOOL CALL: get_weather", None),
    ("directive, parentheses", "TOOL CALL: get_weather(city='Paris')", None),
    ("directive mid-line", 'Then TOOL CALL: get_weather {"city": "Paris"}', None),
    # 4. bare fences
    ("bare fence", f"```\n{CALL}\n```", [PARIS]),
    (
        "bare fence with prose",
        f"Here:\n```\n{CALL}\n```\nDone.",
        [T("Here:\n"), PARIS, T("Done.")],
    ),  # fmt: skip
    ("bare fence, unknown tool", '```\n{"name": "rm", "arguments": {}}\n```', None),
    (
        "bare fence, invalid arguments",
        '```\n{"name": "get_weather", "arguments": {"city": "P", "x": 1}}\n```',
        None,
    ),  # fmt: skip
    ("bare fence, tool without schema", '```\n{"name": "ping", "arguments": {}}\n```', None),
    ("bare fence, code", "```\nprint('hi')\n```\n", None),
    # 5. JSON in prose
    ("prose", f"Calling {CALL} now.", [T("Calling "), PARIS, T(" now.")]),
    ("prose at a line start", f"Sure.\n{CALL}\nDone.", [T("Sure.\n"), PARIS, T("\nDone.")]),
    (
        "prose, parameters key",
        'Use {"name": "get_weather", "parameters": {"city": "Paris", "days": 2}}.',
        [T("Use "), C(0, "get_weather", {"city": "Paris", "days": 2}), T(".")],
    ),  # fmt: skip
    ("prose, unknown tool", 'Calling {"name": "rm", "arguments": {"city": "x"}} now.', None),
    (
        "prose, invalid arguments",
        'Calling {"name": "get_weather", "arguments": {"days": 2}} now.',
        None,
    ),  # fmt: skip
    ("prose, tool without schema", 'Calling {"name": "ping", "arguments": {}} now.', None),
    ("prose, braces", "Sets look like {1, 2} and {a: b}.", None),
    ("prose, other JSON", 'The answer is {"name": "Bob", "age": 3}.', None),
    ("prose in a code block", f"```python\nx = {CALL}\n```\n", None),
    (
        "prose after a code block",
        f"```python\nx = 1\n```\nNow {CALL}.",
        [T("```python\nx = 1\n```\nNow "), PARIS, T(".")],
    ),  # fmt: skip
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_whole(text: str, expected: list[XmlEvent] | None) -> None:
    assert extract([text]) == (expected if expected is not None else [T(text)])


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_streamed_split_anywhere(text: str, expected: list[XmlEvent] | None) -> None:
    want = expected if expected is not None else [T(text)]
    for cut in range(1, len(text)):
        assert extract([text[:cut], text[cut:]]) == want, cut
    assert extract(list(text)) == want


def test_text_before_a_prose_call_streams_at_once() -> None:
    extractor = JsonToolExtractor(TOOLS, ids=ids)
    assert extractor.feed("Calling ") == [T("Calling ")]
    assert extractor.feed('{"name": "get_weather", ') == []
    assert extractor.feed('"arguments": {"city": "Paris"}}') == [PARIS]
    assert extractor.feed(" now") == [T(" now")]


def test_schemaless_tools_keep_the_old_rules() -> None:
    """Without a schema to check, bare fences and prose stay text (issue 16's rules)."""
    tools = [Tool("get_weather")]
    assert extract([f"```\n{CALL}\n```"], tools) == [T(f"```\n{CALL}\n```")]
    assert extract([f"Calling {CALL} now."], tools) == [T(f"Calling {CALL} now.")]


def test_may_hold_call_covers_the_new_forms() -> None:
    assert may_hold_call("TOOL CALL: x {}") and may_hold_call("a ```\n{}\n```")
    assert may_hold_call(f"Calling {CALL}") and not may_hold_call("Just prose {here}.")


@pytest.mark.parametrize(
    ("value", "schema", "ok"),
    [
        ({"city": "P"}, WEATHER_SCHEMA, True),
        ({"city": "P", "days": 2.0}, WEATHER_SCHEMA, True),
        ({"city": "P", "days": True}, WEATHER_SCHEMA, False),
        ({"city": "P", "days": 2.5}, WEATHER_SCHEMA, False),
        ({}, WEATHER_SCHEMA, False),
        ({"city": "P", "other": 1}, WEATHER_SCHEMA, False),
        ({"u": "c"}, {"properties": {"u": {"enum": ["c", "f"]}}}, True),
        ({"u": "k"}, {"properties": {"u": {"enum": ["c", "f"]}}}, False),
        (
            {"xs": [1, 2]},
            {"properties": {"xs": {"type": "ARRAY", "items": {"type": "integer"}}}},
            True,
        ),  # fmt: skip
        (
            {"xs": [1, "a"]},
            {"properties": {"xs": {"type": "array", "items": {"type": "integer"}}}},
            False,
        ),  # fmt: skip
        ({"v": None}, {"properties": {"v": {"type": ["string", "null"]}}}, True),
        (
            {"v": 1},
            {"properties": {"v": {"anyOf": [{"type": "string"}, {"type": "null"}]}}},
            False,
        ),  # fmt: skip
        ({"v": 1}, {"properties": {"v": {"type": "uuid"}}}, True),  # unknown type: allowed
        ("x", None, True),
    ],
)
def test_schema_check(value: Any, schema: Any, ok: bool) -> None:
    assert validates(value, schema) is ok
