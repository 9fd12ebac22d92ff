"""Does a value match a JSON schema? The subset tool declarations use.

`violations(value, schema)` lists what is wrong, empty when the value matches. Covered:
`type` (a name or a list of names; integers count as numbers, booleans never do),
`enum`, `const`, `properties`, `required`, `additionalProperties: false`, `items`,
`anyOf`/`oneOf` (at least one option matches). Gemini's upper-case type names are read
case-insensitively. Anything else in the schema (formats, bounds) is not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def violations(value: Any, schema: Any, where: str = "arguments") -> list[str]:
    """What keeps `value` from matching `schema` (a JSON schema), as readable lines."""
    if not isinstance(schema, Mapping):
        return []
    problems = _type_problems(value, schema, where)
    if problems:
        return problems
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where} is {value!r}, not one of {schema['enum']!r}"]
    if "const" in schema and value != schema["const"]:
        return [f"{where} is {value!r}, not {schema['const']!r}"]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and not any(not violations(value, o) for o in options):
            return [f"{where} matches none of the {key} options"]
    if isinstance(value, dict):
        return _object_problems(value, schema, where)
    if isinstance(value, list):
        return [
            p
            for i, item in enumerate(value)
            for p in violations(item, schema.get("items"), f"{where}[{i}]")
        ]
    return []


def _type_problems(value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    declared = schema.get("type")
    if declared is None:
        return []
    names = [str(n).lower() for n in (declared if isinstance(declared, list) else [declared])]
    if any(_TYPES.get(name, lambda v: True)(value) for name in names):
        return []
    return [f"{where} should be {' or '.join(names)}, got {_kind(value)}"]


def _object_problems(value: dict[str, Any], schema: Mapping[str, Any], where: str) -> list[str]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    required = schema.get("required")
    problems = [
        f"{where} lacks the required key {key!r}"
        for key in (required if isinstance(required, list) else [])
        if key not in value
    ]
    if schema.get("additionalProperties") is False:
        problems += [
            f"{where} has an undeclared key {key!r}" for key in value if key not in properties
        ]
    for key, item in value.items():
        if key in properties:
            problems += violations(item, properties[key], f"{where}.{key}")
    return problems


def _kind(value: Any) -> str:
    return next(
        (name for name, test in _TYPES.items() if name != "number" and test(value)), "number"
    )
