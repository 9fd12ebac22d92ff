"""Reading Gemini proto-JSON: both key spellings, and typed values with error paths.

Google's proto-JSON parser accepts `functionCall` and `function_call` alike, and real
clients mix them (google-genai sends `thinking_budget` and `parameters_json_schema`
inside camelCase objects), so every read goes through `get`, which tries the camelCase
name first, then its snake_case twin.

The typed readers raise `ConversionError` naming the path of the bad value
(`contents[2].parts[0].functionCall.args: expected an object`); `status` is 400 for a
client's request and 502 for an upstream's answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from louter.errors import ConversionError

_UPPER = re.compile(r"(?<!^)(?=[A-Z])")


@cache
def snake(name: str) -> str:
    """`functionCall` -> `function_call` (memoised: the key set is small and fixed)."""
    return _UPPER.sub("_", name).lower()


def get(obj: Mapping[str, Any], name: str) -> Any:
    """The value of camelCase `name` or of its snake_case spelling; None when absent."""
    value = obj.get(name)
    if value is None:
        value = obj.get(snake(name))
    return value


def fail(path: str, problem: str, status: int) -> ConversionError:
    return ConversionError(f"{path}: {problem}" if path else problem, status_hint=status)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def mapping(value: Any, path: str, status: int = 400) -> Mapping[str, Any]:
    """`value` as an object; None counts as `{}`."""
    if type(value) is dict:  # the JSON case: no ABC check (a tenth of its cost)
        return value
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(path, f"expected an object, got {_kind(value)}", status)
    return value


def sequence(value: Any, path: str, status: int = 400) -> list[Any]:
    """`value` as a list; None counts as `[]`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(path, f"expected a list, got {_kind(value)}", status)
    return value


def text(obj: Mapping[str, Any], name: str, path: str, status: int = 400) -> str | None:
    value = get(obj, name)
    if value is None or isinstance(value, str):
        return value
    raise fail(join(path, name), f"expected a string, got {_kind(value)}", status)


def number(obj: Mapping[str, Any], name: str, path: str) -> float | None:
    value = get(obj, name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise fail(join(path, name), f"expected a number, got {_kind(value)}", 400)


def integer(obj: Mapping[str, Any], name: str, path: str, status: int = 400) -> int | None:
    """An integer; proto-JSON may write int64 values as decimal strings ("8192")."""
    value = get(obj, name)
    if value is None:
        return None
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise fail(join(path, name), f"expected an integer, got {_kind(value)}", status)


def strings(obj: Mapping[str, Any], name: str, path: str) -> tuple[str, ...]:
    """A list of strings (a lone string counts as a list of one)."""
    value = get(obj, name)
    if isinstance(value, str):
        return (value,)
    items = sequence(value, join(path, name))
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise fail(f"{join(path, name)}[{index}]", "expected a string", 400)
    return tuple(items)


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


_KINDS: dict[type, str] = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "an object",
    type(None): "null",
}
