"""Gemini schemas -> plain, lower-case JSON Schema (what `Tool.parameters` holds).

Gemini takes two schema flavours:
- `parameters` / `responseSchema`: the `Schema` proto, an OpenAPI 3.0 subset: upper-case
  `type` enum (`OBJECT`, `STRING`...), `nullable`, `propertyOrdering`, `example`, int64
  bounds written as strings, snake_case keys accepted;
- `parametersJsonSchema` / `responseJsonSchema`: JSON Schema, though gemini-cli still
  writes upper-case types in it (captures/gemini-cli/basic.json, the router call).

`to_json_schema` turns either into JSON Schema, recursively through every keyword that
holds subschemas:
- `type` is lower-cased (in a list too); `TYPE_UNSPECIFIED` is dropped;
- `nullable: true` adds `"null"` to `type` (`["string", "null"]`), or appends
  `{"type": "null"}` to `anyOf` when there is no `type`; `nullable` itself is dropped;
- proto spellings become JSON Schema keywords (`any_of`, `max_items`... -> camelCase);
  int64 bounds given as strings ("1") become integers;
- Gemini-only hints are dropped (`propertyOrdering`, `format: "enum"`), and `example`
  becomes `examples: [example]`, since the other dialects' strict validators reject them.

Everything else is kept verbatim (`$schema`, `additionalProperties`, `$ref`, ...);
property *names* are never touched, and a value that is not an object where a schema is
expected (a trimmed capture, a boolean schema) is kept as it is. Emitting needs no reverse
step: `parametersJsonSchema` takes JSON Schema as is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from louter.convert.gemini.fields import snake

Schema = dict[str, Any]
_CAMEL_KEYWORDS = (
    "anyOf", "oneOf", "allOf", "maxItems", "minItems", "maxLength", "minLength",
    "maxProperties", "minProperties", "propertyOrdering", "additionalProperties",
    "prefixItems", "patternProperties",
)  # fmt: skip


_RENAMES: dict[str, str] = {snake(name): name for name in _CAMEL_KEYWORDS}
_INT64 = frozenset(
    ("maxItems", "minItems", "maxLength", "minLength", "maxProperties", "minProperties")
)


_DROPPED = frozenset(("nullable", "propertyOrdering"))


def to_json_schema(schema: Any) -> Any:
    """A Gemini schema (either flavour) as JSON Schema; see the module docstring."""
    if not isinstance(schema, Mapping):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        name = _RENAMES[key] if key in _RENAMES else str(key)
        _KEYWORDS.get(name, _keep)(out, name, value)
    if schema.get("nullable") is True:
        _add_null(out)
    return out


def _keep(out: Schema, name: str, value: Any) -> None:
    if name not in _DROPPED:
        out[name] = _integer(value) if name in _INT64 else value


def _type(out: Schema, name: str, value: Any) -> None:
    if isinstance(value, str):
        if value.upper() != "TYPE_UNSPECIFIED":
            out[name] = value.lower()
    elif isinstance(value, list):
        out[name] = [item.lower() if isinstance(item, str) else item for item in value]
    else:
        out[name] = value


def _one(out: Schema, name: str, value: Any) -> None:
    if isinstance(value, list):
        out[name] = [to_json_schema(v) for v in value]
    else:
        out[name] = to_json_schema(value)


def _many(out: Schema, name: str, value: Any) -> None:
    out[name] = [to_json_schema(v) for v in value] if isinstance(value, list) else value


def _named(out: Schema, name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        out[name] = {key: to_json_schema(v) for key, v in value.items()}
    else:
        out[name] = value


def _format(out: Schema, name: str, value: Any) -> None:
    if value != "enum":
        out[name] = value


def _example(out: Schema, name: str, value: Any) -> None:
    out.setdefault("examples", [value])


def _add_null(out: Schema) -> None:
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"] if kind != "null" else kind
    elif isinstance(kind, list):
        if "null" not in kind:
            out["type"] = [*kind, "null"]
    elif isinstance(out.get("anyOf"), list):
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]


def _integer(value: Any) -> Any:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


_KEYWORDS: dict[str, Callable[[Schema, str, Any], None]] = {
    "type": _type,
    "format": _format,
    "example": _example,
    # keywords holding one schema (or, for `items`, a draft-4 list of them)
    "items": _one,
    "additionalProperties": _one,
    "additionalItems": _one,
    "not": _one,
    "contains": _one,
    "propertyNames": _one,
    "if": _one,
    "then": _one,
    "else": _one,
    # keywords holding a list of schemas
    "anyOf": _many,
    "oneOf": _many,
    "allOf": _many,
    "prefixItems": _many,
    # keywords holding schemas by name
    "properties": _named,
    "patternProperties": _named,
    "$defs": _named,
    "definitions": _named,
    "dependentSchemas": _named,
}
