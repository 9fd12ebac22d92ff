"""`[[processors]]`: request processors, parsed once at start-up into frozen records.

Each table has a `kind` and the keys of that kind, and may have `when`, a table of
conditions that must all hold for the processor to apply:

    when = {model = "glob", key = "name", dialect = "openai", backend = "name", first_turn = true}

`model`, `key`, `dialect` and `backend` take a string or a list of strings (any of them
matches); `model` entries are globs on the client's model name; `key` names client keys
(`[keys.NAME]`), `backend` configured backends. Everything is checked here: an unknown
kind or key, a wrong type, a bad regex or a name that is not configured is a `ConfigError`
naming `[processors[N]]` (N counts from 0, in file order) and the key.

The processors themselves are `louter/proxy/processors.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from louter.errors import ConfigError

ErrorAt = Callable[[str, str | None, str], ConfigError]  # (table, key, problem)

KINDS = ("system_prompt", "validate", "override", "redact", "block")
SYSTEM_MODES = ("if_missing", "prepend", "append", "replace")
ON_EXCEED = ("reject", "clamp")
ROLES = ("system", "user", "assistant", "tool")
EFFORTS = ("none", "minimal", "low", "medium", "high")
BLOCK_STATUSES = (400, 403, 422, 451)
# override: neutral request field -> (config type, check, described)
OVERRIDE_FIELDS: Mapping[str, str] = {
    "temperature": "number",
    "top_p": "number",
    "top_k": "int",
    "max_tokens": "int",
    "presence_penalty": "number",
    "frequency_penalty": "number",
    "stop": "strings",
    "reasoning_effort": "str",
    "reasoning_budget": "int",
}
WHEN_KEYS = ("model", "key", "dialect", "backend", "first_turn")
MAX_PATTERNS = 256  # regexes per processor


@dataclass(frozen=True, slots=True)
class When:
    """Conditions, all of which must hold; an empty tuple (or None) is no condition."""

    models: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    dialects: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    first_turn: bool | None = None


@dataclass(frozen=True, slots=True)
class SystemPrompt:
    text: str
    mode: str = "if_missing"


@dataclass(frozen=True, slots=True)
class Validate:
    allowed_models: tuple[str, ...] = ()  # globs; empty: any model
    max_tokens: int | None = None
    on_exceed: str = "reject"
    max_messages: int | None = None
    max_input_tokens: int | None = None  # louter's estimate (4 characters a token)


@dataclass(frozen=True, slots=True)
class Override:
    set: tuple[tuple[str, Any], ...] = ()  # (neutral field, value)
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Redact:
    patterns: tuple[re.Pattern[str], ...]
    replacement: str = "[REDACTED]"
    roles: tuple[str, ...] = ("user", "tool")


@dataclass(frozen=True, slots=True)
class Block:
    patterns: tuple[re.Pattern[str], ...]
    message: str = "request blocked by policy"
    status: int = 400
    roles: tuple[str, ...] = ("user", "tool")


Action = SystemPrompt | Validate | Override | Redact | Block


@dataclass(frozen=True, slots=True)
class Processor:
    index: int  # its place in the file (`[processors[N]]`), for messages and the log
    kind: str
    action: Action
    when: When = When()


# --------------------------------------------------------------------------- checks


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _str_or_strings(v: Any) -> bool:
    return _str(v) or _strings(v)


CHECKS: Mapping[str, tuple[Callable[[Any], bool], str]] = {
    "str": (_str, "a string"),
    "int": (_int, "an integer"),
    "number": (_number, "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "strings": (_strings, "a list of strings"),
    "names": (_str_or_strings, "a string or a list of strings"),
    "table": (lambda v: isinstance(v, dict), "a table"),
}
COMMON = {"kind": "str", "when": "table"}
SCHEMAS: Mapping[str, Mapping[str, str]] = {
    "system_prompt": {**COMMON, "text": "str", "mode": "str"},
    "validate": {
        **COMMON,
        "allowed_models": "strings",
        "max_tokens": "int",
        "on_exceed": "str",
        "max_messages": "int",
        "max_input_tokens": "int",
    },
    "override": {**COMMON, "set": "table", "remove": "strings"},
    "redact": {**COMMON, "patterns": "strings", "replacement": "str", "roles": "strings"},
    "block": {
        **COMMON,
        "patterns": "strings",
        "message": "str",
        "status": "int",
        "roles": "strings",
    },
}
WHEN_SCHEMA = {
    "model": "names",
    "key": "names",
    "dialect": "names",
    "backend": "names",
    "first_turn": "bool",
}


class _Table:
    """One `[[processors]]` table being read; every error names it."""

    def __init__(self, index: int, data: Mapping[str, Any], error: ErrorAt) -> None:
        self.name = f"processors[{index}]"
        self.data = data
        self._error = error

    def error(self, key: str | None, problem: str) -> ConfigError:
        return self._error(self.name, key, problem)

    def check(self, data: Mapping[str, Any], schema: Mapping[str, str], where: str = "") -> None:
        for key, value in data.items():
            kind = schema.get(key)
            shown = f"{where}.{key}" if where else key
            if kind is None:
                allowed = ", ".join(sorted(schema))
                raise self.error(shown, f"unknown key (allowed here: {allowed})")
            check, described = CHECKS[kind]
            if not check(value):
                raise self.error(shown, f"must be {described}, got {value!r}")

    def choice(self, key: str, choices: Sequence[Any], default: Any) -> Any:
        value = self.data.get(key, default)
        if value not in choices:
            shown = ", ".join(str(c) for c in choices)
            raise self.error(key, f"must be one of {shown}, got {value!r}")
        return value

    def positive(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is not None and value <= 0:
            raise self.error(key, f"must be greater than 0, got {value!r}")
        return value

    def patterns(self) -> tuple[re.Pattern[str], ...]:
        found = self.data.get("patterns")
        if not found:
            raise self.error("patterns", "is required: a non-empty list of regular expressions")
        if len(found) > MAX_PATTERNS:
            raise self.error("patterns", f"at most {MAX_PATTERNS} patterns")
        compiled = []
        for number, pattern in enumerate(found):
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                problem = f"pattern {number} is not a valid regex: {exc}"
                raise self.error("patterns", problem) from None
        return tuple(compiled)

    def roles(self, default: tuple[str, ...]) -> tuple[str, ...]:
        roles = tuple(self.data.get("roles", default))
        for role in roles:
            if role not in ROLES:
                raise self.error("roles", f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if not roles:
            raise self.error("roles", "must name at least one role")
        return roles


def _names(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


# --------------------------------------------------------------------------- kinds


def _system_prompt(table: _Table) -> SystemPrompt:
    text = table.data.get("text")
    if not text:
        raise table.error("text", "is required: the system prompt's text")
    return SystemPrompt(text, table.choice("mode", SYSTEM_MODES, "if_missing"))


def _validate(table: _Table) -> Validate:
    rule = Validate(
        allowed_models=tuple(table.data.get("allowed_models", ())),
        max_tokens=table.positive("max_tokens"),
        on_exceed=table.choice("on_exceed", ON_EXCEED, "reject"),
        max_messages=table.positive("max_messages"),
        max_input_tokens=table.positive("max_input_tokens"),
    )
    if rule == Validate(on_exceed=rule.on_exceed):
        keys = "allowed_models, max_tokens, max_messages or max_input_tokens"
        raise table.error(None, f"a validate processor needs at least one of {keys}")
    if "on_exceed" in table.data and rule.max_tokens is None:
        raise table.error("on_exceed", "only applies with max_tokens")
    return rule


def _override(table: _Table) -> Override:
    values = table.data.get("set", {})
    table.check(values, OVERRIDE_FIELDS, "set")
    remove = tuple(table.data.get("remove", ()))
    for name in remove:
        if name not in OVERRIDE_FIELDS:
            fields = ", ".join(OVERRIDE_FIELDS)
            raise table.error("remove", f"unknown field {name!r} (fields: {fields})")
        if name in values:
            raise table.error("remove", f"{name!r} is both set and removed")
    if not values and not remove:
        raise table.error(None, "an override processor needs `set` or `remove`")
    checked = [(name, _override_value(table, name, value)) for name, value in values.items()]
    return Override(tuple(checked), remove)


_RANGES = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}


def _override_value(table: _Table, name: str, value: Any) -> Any:
    key = f"set.{name}"
    if name in _RANGES:
        low, high = _RANGES[name]
        if not low <= value <= high:
            raise table.error(key, f"must be between {low:g} and {high:g}, got {value!r}")
        return float(value)
    if name in ("max_tokens", "top_k") and value <= 0:
        raise table.error(key, f"must be greater than 0, got {value!r}")
    if name == "reasoning_budget" and value < 0:
        raise table.error(key, f"must be 0 (off) or more, got {value!r}")
    if name == "reasoning_effort" and value not in EFFORTS:
        raise table.error(key, f"must be one of {', '.join(EFFORTS)}, got {value!r}")
    if name == "stop":
        return tuple(value)
    return value


def _redact(table: _Table) -> Redact:
    return Redact(
        table.patterns(),
        str(table.data.get("replacement", "[REDACTED]")),
        table.roles(("user", "tool")),
    )


def _block(table: _Table) -> Block:
    message = table.data.get("message", "request blocked by policy")
    if not message:
        raise table.error("message", "must not be empty")
    return Block(
        table.patterns(),
        message,
        table.choice("status", BLOCK_STATUSES, 400),
        table.roles(("user", "tool")),
    )


PARSERS: Mapping[str, Callable[[_Table], Action]] = {
    "system_prompt": _system_prompt,
    "validate": _validate,
    "override": _override,
    "redact": _redact,
    "block": _block,
}


def _when(table: _Table, known: Mapping[str, Sequence[str]]) -> When:
    data = table.data.get("when", {})
    table.check(data, WHEN_SCHEMA, "when")
    found: dict[str, tuple[str, ...]] = {}
    for key in ("model", "key", "dialect", "backend"):
        names = _names(data.get(key, ()))
        if key in data and not names:
            raise table.error(f"when.{key}", "must name at least one")
        allowed = known.get(key)
        unknown = [name for name in names if name not in allowed] if allowed is not None else []
        if unknown:
            shown = ", ".join(allowed or ()) or "none"
            raise table.error(f"when.{key}", f"{unknown[0]!r} is not configured (known: {shown})")
        found[key] = names
    return When(
        found["model"], found["key"], found["dialect"], found["backend"], data.get("first_turn")
    )


def parse_processors(
    tables: Sequence[Mapping[str, Any]],
    error: ErrorAt,
    *,
    keys: Sequence[str],
    backends: Sequence[str],
    dialects: Sequence[str],
) -> tuple[Processor, ...]:
    """The `[[processors]]` tables, checked; `keys`, `backends` and `dialects` are the
    names `when` may use."""
    known = {"key": keys, "backend": backends, "dialect": dialects}
    out = []
    for index, data in enumerate(tables):
        table = _Table(index, data, error)
        kind = data.get("kind")
        if kind is None:
            raise table.error("kind", f"is required (one of {', '.join(KINDS)})")
        if kind not in PARSERS:
            raise table.error("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
        table.check(data, SCHEMAS[kind])
        out.append(Processor(index, kind, PARSERS[kind](table), _when(table, known)))
    return tuple(out)
