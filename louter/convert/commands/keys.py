"""The session settings `!/set(key=value)` accepts: ONE declared table, `KEYS`.

Each entry names its reader (text -> a JSON value, `ValueError` with the reason when the
text is not acceptable), the form shown by `!/help`, a one-line description, and the
neutral `Request` field it overrides (None: the setting is read by whatever stage uses
it, through `Session.get(name)`). Adding a setting is one line here, e.g.

    "loop_detection_enabled": Key(boolean, "true|false", "detect repeated output"),

Names `backend` and `model` are checked against the configured backends by the proxy
(`louter/proxy/sessions/commands.py`), which knows them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

Reader = Callable[[str], Any]
_TOKEN = re.compile(r"[A-Za-z0-9._:/@+-]{1,256}")
TRUE = frozenset({"true", "on", "yes", "1"})
FALSE = frozenset({"false", "off", "no", "0"})


def boolean(text: str) -> bool:
    low = text.lower()
    if low in TRUE or low in FALSE:
        return low in TRUE
    raise ValueError(f"must be true or false, got {text!r}")


def number(low: float, high: float) -> Reader:
    def read(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {text}")
        return value

    return read


def integer(low: int, high: int) -> Reader:
    def read(text: str) -> int:
        if not re.fullmatch(r"[+-]?\d{1,12}", text):
            raise ValueError(f"must be a whole number, got {text!r}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return read


def text(limit: int) -> Reader:
    def read(value: str) -> str:
        if not value or len(value) > limit or not value.isprintable():
            raise ValueError(f"must be 1-{limit} printable characters")
        return value

    return read


def choice(*allowed: str) -> Reader:
    def read(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return read


def token(value: str) -> str:
    """A backend or model name: letters, digits and . _ : / @ + -."""
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"must be 1-256 letters, digits or . _ : / @ + -, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Key:
    read: Reader
    form: str  # how `!/help` shows the value
    help: str
    field: str | None = None  # the neutral Request field it sets on every request


KEYS: Mapping[str, Key] = MappingProxyType(
    {
        "project": Key(text(200), "text", "the name of this session's project"),
        "project_dir": Key(text(4096), "path", "the project's directory (!/pwd shows it)"),
        "backend": Key(token, "NAME", "the backend for the rest of the session"),
        "model": Key(token, "NAME|backend:model", "the model for the rest of the session"),
        "temperature": Key(number(0, 2), "0-2", "sampling temperature", "temperature"),
        "top_p": Key(number(0, 1), "0-1", "nucleus sampling (top_p)", "top_p"),
        "max_tokens": Key(integer(1, 10_000_000), "N", "answer length limit", "max_tokens"),
        "interactive": Key(boolean, "true|false", "false: commands reach the model as text"),
        "loop_detection_enabled": Key(
            boolean, "true|false", "cut streamed text that repeats ([loop_detection])"
        ),
        "tool_loop_detection_enabled": Key(
            boolean, "true|false", "stop repeated identical tool calls ([tool_call_loop])"
        ),
        "tool_loop_max_repeats": Key(integer(2, 100), "N", "identical tool calls that loop"),
        "tool_loop_mode": Key(
            choice("warn", "block", "chance_then_block"),
            "warn|block|chance_then_block",
            "what a tool-call loop gets",
        ),
    }
)


def read_setting(name: str, value: str) -> Any:
    """`value` read for setting `name`; `ValueError` naming the problem (or the keys)."""
    key = KEYS.get(name)
    if key is None:
        raise ValueError(f"unknown setting {name!r}; settings: {', '.join(KEYS)}")
    try:
        return key.read(value)
    except ValueError as exc:
        raise ValueError(f"{name} {exc}") from None
