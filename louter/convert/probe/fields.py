"""Reading wire JSON defensively: typed field access that notes what is malformed.

A probe must report a bad answer, never crash on it, so the readers ask a `Notes` for
each field they need; a missing or mistyped field is noted (once) and a neutral value
is returned in its place.
"""

from __future__ import annotations

from typing import Any

import orjson

from louter.convert.probe.model import Answer


class Notes:
    """The problems found while reading one answer, in order, without repeats."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        self.add(f"{where} is not an object")
        return {}

    def items(self, value: Any, where: str) -> list[Any]:
        if isinstance(value, list):
            return value
        self.add(f"{where} is not a list")
        return []

    def string(self, value: Any, where: str) -> str:
        if isinstance(value, str):
            return value
        self.add(f"{where} is not a string")
        return ""

    def arguments(self, value: Any, where: str) -> str:
        """Call arguments given as an object: their compact JSON text."""
        return compact(self.mapping(value, where))


def compact(value: Any) -> str:
    """Compact JSON text."""
    return orjson.dumps(value).decode()


def load_json(raw: bytes | str) -> tuple[Any, str | None]:
    """The JSON value of `raw`, or None and why not."""
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON ({exc})"


def count(value: Any) -> int | None:
    """A token count: a non-negative integer, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def short(text: str, limit: int = 160) -> str:
    """One line of at most `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def read_token_count(body: Any, key: str) -> tuple[Answer, list[str]]:
    """A token-counting answer whose count is the top-level `key`."""
    notes = Notes()
    tokens = count(notes.mapping(body, "the answer").get(key))
    if tokens is None:
        notes.add(f"{key} is missing or not a count")
    return Answer(count=tokens), notes.problems
