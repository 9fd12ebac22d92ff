"""JSON tool-call repair: what qualifies (whole message, fenced block), the conservative
rejections, incremental delivery and re-chunking invariance."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from louter.convert.json_tools import JsonToolExtractor
from louter.convert.model import Tool, ToolCall, dump_arguments
from louter.convert.tool_text import DEFAULT_CAP, XmlEvent, XmlText, XmlToolCall, merge_text

TOOLS = [Tool("get_weather"), Tool("read_file")]


def ids(index: int) -> str:
    return f"call_{index}"


def T(text: str) -> XmlText:
    return XmlText(text)


def C(index: int, name: str, arguments: dict[str, Any]) -> XmlToolCall:
    return XmlToolCall(index, ToolCall(ids(index), name, dump_arguments(arguments)))


def extract(chunks: list[str], tools: list[Tool] = TOOLS, cap: int = DEFAULT_CAP) -> list[XmlEvent]:
    extractor = JsonToolExtractor(tools, ids=ids, cap=cap)
    events: list[XmlEvent] = []
    for chunk in chunks:
        events += extractor.feed(chunk)
    events += extractor.flush()
    assert all(e.text for e in events if isinstance(e, XmlText)), "empty text event"
    return merge_text(events)


WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
PARIS = C(0, "get_weather", {"city": "Paris"})


def fenced(body: str, fence: str = "```json") -> str:
    return f"{fence}\n{body}\n```"


CASES: list[tuple[str, str, list[XmlEvent] | None]] = [
    ("empty", "", []),
    ("plain text", "Hello.\nBye.", [T("Hello.\nBye.")]),
    ("whitespace only", " \n ", [T(" \n ")]),
    # whole message
    ("whole message", WEATHER, [PARIS]),
    ("whole message, whitespace around", "\n  " + WEATHER + "\n\n", [PARIS]),
    (
        "parameters key",
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
        [PARIS],
    ),
    ("key order", '{"arguments": {"city": "Paris"}, "name": "get_weather"}', [PARIS]),
    (
        "arguments as a JSON string",
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',
        [PARIS],
    ),
    (
        "an array of calls",
        '[{"name": "read_file", "arguments": {"path": "a"}}, ' + WEATHER + "]",
        [C(0, "read_file", {"path": "a"}), C(1, "get_weather", {"city": "Paris"})],
    ),
    (
        "nested braces and strings in arguments",
        '{"name": "read_file", "arguments": {"path": "a}{\\"]", "opts": {"n": [1, {"x": "}"}]}}}',
        [C(0, "read_file", {"path": 'a}{"]', "opts": {"n": [1, {"x": "}"}]}})],
    ),
    # fenced blocks
    ("fenced block alone", fenced(WEATHER), [PARIS]),
    ("fenced block, upper-case tag", fenced(WEATHER, "```JSON  "), [PARIS]),
    ("fenced block, closing fence then newline", fenced(WEATHER) + "\n", [PARIS]),
    (
        "fenced block between prose",
        "Let me check.\n" + fenced("\n" + WEATHER + "\n") + "\nOne moment.",
        [T("Let me check.\n"), PARIS, T("One moment.")],
    ),
    (
        "two fenced blocks",
        fenced(WEATHER) + "\nand\n" + fenced('{"name": "read_file", "arguments": {}}'),
        [PARIS, T("and\n"), C(1, "read_file", {})],
    ),
    (
        "closing fence with trailing spaces",
        "```json\n" + WEATHER + "\n```  \nok",
        [PARIS, T("ok")],
    ),
    # conservative: text
    (
        "JSON mid-sentence",
        f"The call is {WEATHER} as shown.",
        [T(f"The call is {WEATHER} as shown.")],
    ),
    ("JSON after prose on a line", f"Call:\n{WEATHER}", [T(f"Call:\n{WEATHER}")]),
    ("JSON then prose", f"{WEATHER}\nDone.", [T(f"{WEATHER}\nDone.")]),
    ("two objects", WEATHER + WEATHER, [T(WEATHER + WEATHER)]),
    (
        "unknown tool",
        '{"name": "rm_rf", "arguments": {}}',
        [T('{"name": "rm_rf", "arguments": {}}')],
    ),
    ("extra key", '{"name": "get_weather", "arguments": {}, "id": "1"}', None),
    ("both argument keys", '{"name": "get_weather", "arguments": {}, "parameters": {}}', None),
    ("no arguments", '{"name": "get_weather"}', None),
    ("arguments not an object", '{"name": "get_weather", "arguments": [1]}', None),
    ("arguments string not JSON", '{"name": "get_weather", "arguments": "city=Paris"}', None),
    ("name not a string", '{"name": 1, "arguments": {}}', None),
    ("ordinary JSON answer", '{"result": 42, "name": "get_weather"}', None),
    ("empty object", "{}", None),
    ("empty array", "[]", None),
    ("array of numbers", "[1, 2]", None),
    ("array with one bad item", "[" + WEATHER + ', {"name": "x", "arguments": {}}]', None),
    ("array of arrays", "[[" + WEATHER + "]]", None),
    ("invalid JSON", '{"name": "get_weather", "arguments": {"a": tru}}', None),
    ("brace prose", "{braces} are fine", None),
    ("unclosed object", '{"name": "get_weather", "arguments": {', None),
    ("line break in a string", '{"name": "get_\nweather", "arguments": {}}', None),
    ("escaped key", '{"n\\u0061me": "get_weather", "arguments": {}}', None),
    ("number key", '{1: "get_weather"}', None),
    ("fence of another language", fenced(WEATHER, "```python"), None),
    ("bare fence", fenced(WEATHER, "```"), None),
    ("indented fence", fenced(WEATHER, "  ```json"), None),
    ("fence mid-line", "Here: " + fenced(WEATHER), None),
    ("inline fence", "```json " + WEATHER + " ```", None),
    ("fence without closing", "```json\n" + WEATHER + "\n", None),
    ("closing fence not on its own line", "```json\n" + WEATHER + "```", None),
    ("closing fence followed by text", "```json\n" + WEATHER + "\n```x", None),
    ("closing fence cut short", "```json\n" + WEATHER + "\n``", None),
    ("empty fenced block", "```json\n```\n", None),
    ("prose in a fenced block", fenced("see " + WEATHER), None),
    ("two objects in a block", fenced(WEATHER + "\n" + WEATHER), None),
    ("unknown tool in a block", fenced('{"name": "x", "arguments": {}}'), None),
    ("fence tag with more letters", fenced(WEATHER, "```jsonc"), None),
    ("fence prefix at end", "Text\n```js", None),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_table(text: str, expected: list[XmlEvent] | None) -> None:
    """`None` means: all text, unchanged."""
    assert extract([text]) == (expected if expected is not None else [T(text)])


def test_no_tools_means_no_calls() -> None:
    assert extract([WEATHER], []) == [T(WEATHER)]


def test_rejected_block_is_reread_so_a_later_block_still_counts() -> None:
    text = "```json\nnot json\n```json\n" + WEATHER + "\n```\n"
    assert extract([text]) == [T("```json\nnot json\n"), PARIS]


def test_text_streams_line_by_line() -> None:
    extractor = JsonToolExtractor(TOOLS, ids=ids)
    assert extractor.feed("Hello") == [T("Hello")]
    assert extractor.feed(" there\n``") == [T(" there\n")]
    assert extractor.feed("`py") == [T("```py")]
    assert extractor.feed("\n```") == [T("\n")]
    assert extractor.feed("\n") == [T("```\n")]
    assert extractor.flush() == []


def test_ordinary_json_is_released_at_the_first_foreign_key() -> None:
    extractor = JsonToolExtractor(TOOLS, ids=ids)
    assert extractor.feed('  {"name": "Bob",') == []
    assert extractor.feed(' "ag') == []
    assert extractor.feed('e": 3}') == [T('  {"name": "Bob", "age": 3}')]


def test_code_block_is_released_at_the_first_non_json_character() -> None:
    extractor = JsonToolExtractor(TOOLS, ids=ids)
    assert extractor.feed("Code:\n```json\n  ") == [T("Code:\n")]
    assert extractor.feed("// a comment") == [T("```json\n"), T("  // a comment")]


def test_whole_message_call_waits_for_the_end() -> None:
    extractor = JsonToolExtractor(TOOLS, ids=ids)
    assert extractor.feed(WEATHER + "\n") == []
    assert extractor.flush() == [PARIS]


def test_fenced_call_is_emitted_at_its_closing_line() -> None:
    extractor = JsonToolExtractor(TOOLS, ids=ids)
    assert extractor.feed("ok\n```json\n" + WEATHER + "\n```") == [T("ok\n")]
    assert extractor.feed("\nmore") == [PARIS, T("more")]


def test_cap_overflow_is_released_as_text() -> None:
    text = '{"name": "get_weather", "arguments": {"city": "' + "x" * 100 + '"}}'
    assert extract([text], cap=40) == [T(text)]
    block = "a\n" + fenced(text)
    assert extract([block], cap=40) == [T(block)]
    assert extract(["```json" + " " * 50 + "\nx"], cap=20) == [T("```json" + " " * 50 + "\nx")]


# --- re-chunking invariance ----------------------------------------------------------------

FIXTURES = [c[1] for c in CASES if c[1]]


@pytest.mark.parametrize("text", FIXTURES, ids=[c[0] for c in CASES if c[1]])
def test_every_split_offset_and_byte_by_byte(text: str) -> None:
    whole = extract([text])
    assert extract(list(text)) == whole
    for cut in range(len(text) + 1):
        assert extract([text[:cut], text[cut:]]) == whole, cut


def split(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(c % (len(text) + 1) for c in cuts), len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


prose = st.lists(st.sampled_from(["a", " ", "\n", "{", "`", "x"]), max_size=10).map("".join)
args = st.dictionaries(
    st.text("abc", min_size=1, max_size=3),
    st.none()
    | st.integers(-(2**62), 2**62)
    | st.text(max_size=5)
    | st.lists(st.booleans(), max_size=2),
    max_size=3,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["get_weather", "read_file"]), args), min_size=1, max_size=3
    ),
    st.lists(st.integers(0), max_size=12),
)
def test_generated_fenced_calls_between_prose_lines(
    calls: list[tuple[str, dict[str, Any]]], cuts: list[int]
) -> None:
    blocks = [fenced(orjson.dumps({"name": n, "arguments": a}).decode()) for n, a in calls]
    text = "Intro line\n" + "\nmiddle line\n".join(blocks) + "\nbye"
    expected: list[XmlEvent] = [T("Intro line\n")]
    for index, (name, arguments) in enumerate(calls):
        expected += [C(index, name, arguments), T("middle line\n")]
    expected[-1] = T("bye")
    assert extract(split(text, cuts)) == expected


SOUP = ["```json\n", "```\n", "```", "`", "json", "\n", " ", "{", "}", "[", "]", '"name"',
        '"arguments"', '"parameters"', '"other"', ":", ",", '"get_weather"', '"x"', '"', "\\",
        "1", "a", "{}"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(SOUP), max_size=40),
    st.lists(st.integers(0), max_size=20),
    st.sampled_from([6, 16, 40, DEFAULT_CAP]),
)
def test_any_input_any_split_same_output(tokens: list[str], cuts: list[int], cap: int) -> None:
    text = "".join(tokens)
    whole = extract([text], cap=cap)
    assert extract(split(text, cuts), cap=cap) == whole
    if not any(isinstance(e, XmlToolCall) for e in whole):  # nothing is lost
        assert "".join(e.text for e in whole if isinstance(e, XmlText)) == text
