"""The pure loop detectors: `convert/loops.py` (repeated text, incremental) and
`convert/tool_loops.py` (tool-call loops from a conversation)."""

from __future__ import annotations

import time

import pytest

from louter.convert.loops import LineFilter, Loop, LoopDetector, LoopSettings, find_loop
from louter.convert.model import Message, Text, ToolCall, ToolResult
from louter.convert.tool_loops import canonical_arguments, find_tool_loop

SETTINGS = LoopSettings()
UNIT = "The model says the very same sentence again, word for word, forever. "  # 70


def _feed(text: str, piece: int, settings: LoopSettings = SETTINGS) -> Loop | None:
    detector = LoopDetector(settings)
    for start in range(0, len(text), piece):
        found = detector.feed(text[start : start + piece])
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("piece", [1, 3, 7, 64, 10_000])
def test_a_loop_is_found_however_the_text_is_split(piece: int) -> None:
    found = _feed("Some intro.\n" + UNIT * 6, piece)
    assert found is not None and found.count >= 3
    assert len(found.pattern) == len(UNIT) and found.pattern in UNIT * 2


def test_the_loop_is_found_soon_after_the_third_copy() -> None:
    text = "Intro. " + UNIT * 10
    detector = LoopDetector(SETTINGS)
    at = next(at for at, char in enumerate(text) if detector.feed(char) is not None)
    assert 7 + 3 * len(UNIT) <= at + 1 <= 7 + 3 * len(UNIT) + SETTINGS.min_length // 2


@pytest.mark.parametrize(
    "text",
    [
        UNIT * 2,  # two copies: below min_repetitions
        "abc" * 10,  # too short a text
        " ".join(f"word{i}" for i in range(3000)),  # long, never repeating
        ("x" * 20 + " ") * 5,  # a short pattern: below min_length? (21 chars, 105 total)
    ],
)
def test_no_loop(text: str) -> None:
    assert find_loop(text, SETTINGS) is None


def test_short_periods_count_as_their_multiples() -> None:
    assert find_loop("ab" * 200, SETTINGS) is not None  # 'abab...' is a loop of 50 chars


def test_a_pattern_longer_than_max_is_not_a_loop() -> None:
    unit = " ".join(f"w{i}" for i in range(150)) + ". "  # ~ 640 chars
    assert find_loop(unit * 4, SETTINGS) is None
    assert find_loop(unit * 4, LoopSettings(max_length=800)) is not None


def test_find_loop_says_where_to_cut() -> None:
    text = "Intro. " + UNIT * 10
    found = find_loop(text, SETTINGS)
    assert found is not None
    loop, keep = found
    assert text[:keep].startswith("Intro. " + UNIT * 3) and keep < len(text)


@pytest.mark.parametrize(
    "markup",
    [
        "| a | b | the same row of a long markdown table is here |\n",
        "- the same list item of a long list, on purpose, again |\n",
        "12. the same numbered list item of a long list, on purpose\n",
        "---------------------------------------------------------\n",
    ],
)
def test_markup_lines_are_not_watched(markup: str) -> None:
    assert find_loop(markup * 30, SETTINGS) is None
    unwatched = LoopSettings(ignore_markup=False)
    assert find_loop(markup * 30, unwatched) is not None


def test_code_fences_are_not_watched_but_the_prose_after_them_is() -> None:
    code = "```\n" + "print('the same line of code, over and over again')\n" * 30 + "```\n"
    assert find_loop(code, SETTINGS) is None
    assert find_loop(code + UNIT * 5, SETTINGS) is not None


def test_line_filter_decides_lines_from_their_start() -> None:
    lines = LineFilter()
    out = "".join(lines.feed(c) for c in "prose\n| table |\n  - item\n~~~\ncode\n~~~\nmore\n")
    assert out == "prose\nmore\n"


def test_endless_indentation_is_watched_as_prose() -> None:
    assert find_loop(" " * 2000, SETTINGS) is not None


def test_cost_is_incremental() -> None:
    """Feeding 200,000 characters in 5-character pieces costs about the same per piece
    as feeding 20,000 (no re-scan of the whole text)."""

    def per_piece(total: int) -> float:
        text = " ".join(f"t{i}" for i in range(total // 4))[:total]
        detector = LoopDetector(SETTINGS)
        started = time.perf_counter()
        for start in range(0, len(text), 5):
            detector.feed(text[start : start + 5])
        return (time.perf_counter() - started) / (len(text) / 5)

    small, large = (
        min(per_piece(20_000) for _ in range(3)),
        min(per_piece(200_000) for _ in range(3)),
    )
    assert large < small * 3


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        LoopSettings(min_length=10, max_length=5)
    with pytest.raises(ValueError):
        LoopSettings(repetitions=1)


def test_excerpt() -> None:
    assert Loop("a\n  b " * 40, 3).excerpt(10) == "a b a b a…"


# --------------------------------------------------------------------------- tool loops


def _turn(n: int, name: str = "read", args: str = '{"p": 1}', result: str = "r") -> list[Message]:
    return [
        Message("assistant", (ToolCall(f"c{n}", name, args),)),
        Message("tool", (ToolResult(f"c{n}", name, (Text(result),)),)),
    ]


def _conversation(*turns: list[Message]) -> list[Message]:
    return [Message("user", (Text("go"),)), *(m for turn in turns for m in turn)]


def test_three_identical_calls_in_a_row() -> None:
    found = find_tool_loop(_conversation(*(_turn(n) for n in range(3))), 3)
    assert found is not None and (found.name, found.repeats, found.same_result) == (
        "read",
        3,
        False,
    )
    assert find_tool_loop(_conversation(*(_turn(n) for n in range(2))), 3) is None


def test_arguments_are_compared_canonically() -> None:
    turns = [_turn(0, args='{"a": 1, "b": [1, 2]}'), _turn(1, args='{"b":[1,2],"a":1}')]
    turns.append(_turn(2, args=' {"a" : 1 , "b": [1,2]} '))
    assert find_tool_loop(_conversation(*turns), 3) is not None
    assert canonical_arguments("not json ") == "not json"


def test_a_different_call_breaks_the_run() -> None:
    turns = [_turn(0), _turn(1, result="s"), _turn(2, args='{"p": 2}'), _turn(3, result="t")]
    assert find_tool_loop(_conversation(*turns), 3) is None  # (and no result came 3 times)


def test_text_between_calls_does_not_break_the_run() -> None:
    chatter = [Message("assistant", (Text("let me look again"),)), Message("user", (Text("ok"),))]
    turns = [_turn(0), chatter, _turn(1), chatter, _turn(2)]
    assert find_tool_loop(_conversation(*turns), 3) is not None


def test_the_same_call_with_the_same_result_again_and_again() -> None:
    turns = [_turn(0), _turn(1, "other"), _turn(2), _turn(3, "other"), _turn(4)]
    found = find_tool_loop(_conversation(*turns), 3)
    assert found is not None and found.same_result and found.repeats == 3
    changing = [_turn(0, result="1"), _turn(1, "other"), _turn(2, result="2"), _turn(3, "x")]
    changing.append(_turn(4, result="3"))
    assert find_tool_loop(_conversation(*changing), 3) is None


def test_exempt_tools() -> None:
    turns = [_turn(n, "wait") for n in range(5)]
    assert find_tool_loop(_conversation(*turns), 3, exempt={"wait"}) is None
    assert find_tool_loop(_conversation(*turns), 3) is not None


def test_ttl_with_timestamps() -> None:
    messages = _conversation(*(_turn(n) for n in range(3)))
    # one timestamp per message: the first turn (messages 1, 2) is 1000 s old
    stamps = [0.0, 0.0, 0.0, 900.0, 900.0, 1000.0, 1000.0]
    assert find_tool_loop(messages, 3, ttl_seconds=300, timestamps=stamps) is None
    assert find_tool_loop(messages, 3, ttl_seconds=300) is not None
    assert find_tool_loop(messages, 3, ttl_seconds=5000, timestamps=stamps) is not None
