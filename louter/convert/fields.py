"""Reading wire JSON with precise errors: each reader names the path of what is wrong
(`messages[3].content[1].text: must be a string`) in a ConversionError (400). Shared by
the dialect parsers of client requests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from louter.errors import ConversionError


def bad_request(path: str, problem: str) -> ConversionError:
    return ConversionError(f"{path}: {problem}" if path else problem, status_hint=400)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    if type(value) is dict:  # the JSON case: no ABC check (a tenth of its cost)
        return value
    if not isinstance(value, Mapping):
        raise bad_request(path, "must be an object")
    return value


def array(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad_request(path, "must be an array")
    return value


def string(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise bad_request(join(path, key), "must be a string")
    return value


_KINDS: dict[str, tuple[type, ...]] = {
    "an integer": (int,),
    "a number": (int, float),
    "a boolean": (bool,),
    "a string": (str,),
}


def option(obj: Mapping[str, Any], key: str, kind: str, path: str = "") -> Any:
    """`obj[key]` when present and not null, checked against `kind` (a _KINDS key)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, _KINDS[kind]) or (isinstance(value, bool) and kind != "a boolean"):
        raise bad_request(join(path, key), f"must be {kind}")
    return value


# Upstream stream events: errors are the caller's (`fail`, a 502 naming the dialect).


def load_object(data: str, fail: Callable[[str], ConversionError]) -> dict[str, Any]:
    """One event's data as a JSON object."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise fail(f"event data is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise fail("event data is not a JSON object")
    return value


def typed(
    obj: Mapping[str, Any], key: str, kind: type, where: str, fail: Callable[[str], ConversionError]
) -> Any:
    """`obj[key]`, which must be a `kind` (a bool is not an int here)."""
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise fail(f"{where}.{key} is missing or not a {kind.__name__}")
    return value
