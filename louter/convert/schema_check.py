"""A small JSON Schema check for tool-call arguments repaired from text (`json_tools`).

Only what tool schemas use in practice: `type` (one or a list; `integer` excludes
booleans and accepts whole floats as JSON does), `properties`, `required`,
`additionalProperties: false`, `enum`, `const`, `items`, `anyOf`/`oneOf` (as any-of).
Other keywords are ignored (the check is for telling a real call from prose, not a
validator of record). Type names may be upper case (Gemini's `OBJECT`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["validates"]

_MAX_DEPTH = 32


def validates(value: Any, schema: Any, depth: int = 0) -> bool:
    """Whether `value` satisfies `schema` (a schema that is not an object allows all)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return True
    if not _type_ok(value, schema.get("type")):
        return False
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        return False
    if "const" in schema and value != schema["const"]:
        return False
    choices = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(choices, list) and choices:
        if not any(validates(value, choice, depth + 1) for choice in choices):
            return False
    if isinstance(value, dict):
        return _object_ok(value, schema, depth)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return all(validates(item, schema["items"], depth + 1) for item in value)
    return True


def _object_ok(value: dict[str, Any], schema: dict[str, Any], depth: int) -> bool:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    if isinstance(required, list) and any(key not in value for key in required):
        return False
    if schema.get("additionalProperties") is False and any(k not in properties for k in value):
        return False
    return all(validates(v, properties[k], depth + 1) for k, v in value.items() if k in properties)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_int,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def _type_ok(value: Any, wanted: Any) -> bool:
    if wanted is None:
        return True
    names = wanted if isinstance(wanted, list) else [wanted]
    checks = [_TYPES.get(str(name).lower()) for name in names]
    if any(check is None for check in checks):
        return True  # a type louter does not know: not its call to refuse
    return any(check(value) for check in checks if check is not None)
