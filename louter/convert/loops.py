"""Repeated text in an answer (`[loop_detection]`): a pure, incremental detector.

A *loop* is a stretch of `min_length`..`max_length` characters that repeats back to back
`repetitions` times at the end of the text seen so far. `LoopDetector.feed(text)` takes
the answer a delta at a time and returns the `Loop` once found.

Cost: each delta is appended to a bounded tail (the last `(repetitions + 1) * max_length`
characters); the tail is checked only once `min_length // 2` new characters have arrived,
with one `str.rfind` of a `min_length` probe and a few slice comparisons (C speed). So the
work per delta is amortised O(delta), never a re-scan of the whole answer. A loop is
reported at most `min_length // 2` characters after its last repetition is complete (a
loop that runs on, as runaway loops do, is always caught; exactly `repetitions` copies
followed by other text may be let through: the detector errs on the side of not cutting).

Markup is not watched by default (`ignore_markup`): lines inside ``` / ~~~ code fences,
markdown table rows (`|`...), list items (`-`, `*`, `+`, `1.`, `1)`) and rules (`---`,
`***`, `___`, `===`) are dropped before the check, so a 200-row table, a list of similar
tests or code with repeated lines is never taken for a loop. Such lines are decided from
their first few characters, incrementally (`LineFilter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

__all__ = ["Loop", "LoopDetector", "LoopSettings", "LineFilter", "find_loop"]

_CANDIDATES = 8  # nearest recurrences of the probe tried per check


@dataclass(frozen=True, slots=True)
class LoopSettings:
    min_length: int = 50
    max_length: int = 500
    repetitions: int = 3
    ignore_markup: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError("need 1 <= min_length <= max_length")
        if self.repetitions < 2:
            raise ValueError("repetitions must be at least 2")


@dataclass(frozen=True, slots=True)
class Loop:
    """A loop found: the repeated `pattern` and how many times it repeats at the end."""

    pattern: str
    count: int

    def excerpt(self, size: int = 60) -> str:
        """The pattern's start, on one line, for notes and logs."""
        text = " ".join(self.pattern.split())
        return text if len(text) <= size else text[: size - 1] + "…"


class LoopDetector:
    """Feed an answer's text piece by piece; `feed` returns the loop once one is found
    (and keeps returning it). One instance per answer."""

    __slots__ = ("_settings", "_filter", "_tail", "_pieces", "_pending", "_step", "_keep", "found")

    def __init__(self, settings: LoopSettings) -> None:
        self._settings = settings
        self._filter = LineFilter() if settings.ignore_markup else None
        self._tail = ""
        self._pieces: list[str] = []
        self._pending = 0  # characters received since the last check
        self._step = max(1, settings.min_length // 2)
        self._keep = (settings.repetitions + 1) * settings.max_length
        self.found: Loop | None = None

    def feed(self, text: str) -> Loop | None:
        if self.found is not None or not text:
            return self.found
        lines = self._filter
        if lines is not None and (lines.watching is not _Line.PROSE or "\n" in text):
            text = lines.feed(text)  # else: more of a prose line, as it is
            if not text:
                return None
        self._pieces.append(text)
        self._pending += len(text)
        if self._pending >= self._step:
            self._check()
        return self.found

    def _check(self) -> None:
        tail = self._tail + "".join(self._pieces)
        self._pieces.clear()
        self._pending = 0
        if len(tail) > self._keep:
            tail = tail[-self._keep :]
        self._tail = tail
        self.found = _loop_at_end(tail, self._settings)


def find_loop(text: str, settings: LoopSettings) -> tuple[Loop, int] | None:
    """A loop in a whole text, and how many characters of it to keep (up to where a
    stream would have been cut), or None."""
    detector = LoopDetector(settings)
    step = max(1, settings.min_length // 2)
    for start in range(0, len(text), step):
        found = detector.feed(text[start : start + step])
        if found is not None:
            return found, min(len(text), start + step)
    return None


def _loop_at_end(tail: str, settings: LoopSettings) -> Loop | None:
    """The loop `tail` ends with, if any: its nearest recurrences of the last
    `min_length` characters give the candidate periods, each checked with one slice
    comparison of `repetitions - 1` periods."""
    size, shortest, longest = len(tail), settings.min_length, settings.max_length
    times = settings.repetitions
    if size < times * shortest:
        return None
    probe_start = size - shortest
    probe = tail[probe_start:]
    low = max(0, probe_start - longest)
    high = size - 1
    for _ in range(_CANDIDATES):
        found = tail.rfind(probe, low, high)
        if found < 0:
            return None
        shift = probe_start - found
        period = shift * -(-shortest // shift)  # the smallest multiple >= min_length
        if period <= longest and size >= times * period:
            if tail[size - times * period : size - period] == tail[size - (times - 1) * period :]:
                return Loop(tail[size - period :], _count(tail, period))
        high = found + shortest - 1
    return None


def _count(tail: str, period: int) -> int:
    """How many times the last `period` characters repeat back to back in `tail`."""
    unit = tail[-period:]
    count, end = 1, len(tail) - period
    while end >= period and tail[end - period : end] == unit:
        count, end = count + 1, end - period
    return count


class _Line(Enum):
    UNDECIDED = auto()  # the line's first characters do not tell yet
    PROSE = auto()  # watched
    MARKUP = auto()  # not watched (fence, table row, list item, rule, code)


_FENCES = ("```", "~~~")
_RULES = ("---", "***", "___", "===")
_BULLETS = frozenset("-*+")
_MAX_HEAD = 256  # characters held while a line start is undecided


class LineFilter:
    """Text in, the prose part of it out: markup lines are dropped (see the module
    docstring). Incremental: a line is decided from its first few characters; until
    then it is held (at most a line's indentation and a few characters)."""

    __slots__ = ("_kind", "_head", "_in_fence")

    def __init__(self) -> None:
        self._kind = _Line.UNDECIDED
        self._head = ""
        self._in_fence = False

    @property
    def watching(self) -> _Line:
        """What the current line is (PROSE: more of it passes unchanged)."""
        return self._kind

    def feed(self, text: str) -> str:
        if "\n" not in text:  # the usual delta: part of one line
            return self._piece(text, False)
        out = []
        for line in text.splitlines(keepends=True):
            out.append(self._piece(line, line.endswith(("\n", "\r"))))
        return "".join(out)

    def _piece(self, piece: str, complete: bool) -> str:
        kind = self._kind
        if kind is _Line.UNDECIDED:
            self._head += piece
            long = len(self._head) > _MAX_HEAD  # endless indentation: watch it as prose
            kind = self._kind = _Line.PROSE if long else self._classify(self._head, complete)
            piece = self._head if kind is not _Line.UNDECIDED else ""
            if kind is not _Line.UNDECIDED:
                self._head = ""
        if complete:
            self._kind = _Line.UNDECIDED
        return piece if kind is _Line.PROSE else ""

    def _classify(self, head: str, complete: bool) -> _Line:
        start = head.lstrip(" \t")
        if len(start) < 3 and not complete:
            if not start or _may_grow(start, self._in_fence):
                return _Line.UNDECIDED
        if start.startswith(_FENCES):
            self._in_fence = not self._in_fence
            return _Line.MARKUP
        if self._in_fence:
            return _Line.MARKUP
        if start.startswith("|") or start.startswith(_RULES) or _is_list_item(start, complete):
            return _Line.MARKUP
        if not complete and _may_be_number(start):
            return _Line.UNDECIDED
        return _Line.PROSE


def _may_grow(start: str, in_fence: bool) -> bool:
    """Whether a line start shorter than 3 characters may still become markup."""
    if any(f.startswith(start) for f in _FENCES):
        return True
    if in_fence:
        return False
    return start[0] in _BULLETS or start[0] in "|_=" or start[0].isdigit()


def _is_list_item(start: str, complete: bool) -> bool:
    if start[:1] in _BULLETS:
        return len(start) == 1 or start[1] in " \t\r\n"
    digits = len(start) - len(start.lstrip("0123456789"))
    return 0 < digits <= 9 and start[digits : digits + 1] in (".", ")")


def _may_be_number(start: str) -> bool:
    """A line that is so far only digits (at most 9): may become `12.` or `12)`."""
    return start.isdigit() and len(start) <= 9
