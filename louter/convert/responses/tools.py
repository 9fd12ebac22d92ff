"""Responses request tools: `tools` -> neutral Tools plus the `ToolKinds` that map calls
back, and `tool_choice` -> ToolChoice.

Decisions
- `function` tools (the flat shape `{type, name, description, parameters, strict}`) are
  kept; `strict` is not passed on. A missing `parameters` is an empty object schema.
- `custom` tools become a function with one string parameter `input` (see
  `wire.custom_schema`); a grammar `format` is described to the model in that
  parameter's description.
- `namespace` tools are flattened: each inner function or custom tool becomes
  `<namespace>__<name>`. The namespace's own description is not passed on.
- Every other tool type (`web_search`, `tool_search`, `file_search`, `code_interpreter`,
  `image_generation`, `local_shell`, `computer_use_preview`, `mcp`, `shell`,
  `apply_patch`, unknown future types...) runs on OpenAI's side or needs a harness louter
  does not have: it is dropped, never a 400, as clients like Codex always send some.
- Two tools with the same neutral name are a 400 (no backend accepts that).
- `tool_choice`: auto / none / required as such; `{type: function|custom, name}` ->
  ToolChoice("tool", name); `allowed_tools` -> its `mode` (the subset is not kept); a
  hosted tool type (whose tool was dropped) -> "auto".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from louter.convert.fields import array, bad_request, join, mapping, option, string
from louter.convert.model import Tool, ToolChoice
from louter.convert.responses.wire import ToolKinds, WireTool, custom_schema, neutral_name

__all__ = ["ToolNames", "parse_tool_choice", "parse_tools", "tool_kinds"]

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


class _Toolbox:
    """The neutral tools read so far and the kinds of those that are not plain functions."""

    __slots__ = ("tools", "kinds", "_names")

    def __init__(self) -> None:
        self.tools: list[Tool] = []
        self.kinds: dict[str, WireTool] = {}
        self._names: set[str] = set()

    def add(self, tool: Mapping[str, Any], path: str, namespace: str | None = None) -> None:
        """One `function` or `custom` tool (anything else is dropped)."""
        kind = tool.get("type")
        if kind not in ("function", "custom"):
            return
        name = string(tool, "name", path)
        neutral = neutral_name(name, namespace)
        if neutral in self._names:
            raise bad_request(join(path, "name"), f"duplicate tool name {neutral!r}")
        self._names.add(neutral)
        description = option(tool, "description", "a string", path) or ""
        if kind == "custom":
            fmt = tool.get("format")
            schema = custom_schema(mapping(fmt, join(path, "format")) if fmt is not None else None)
        else:
            schema = dict(
                mapping(tool.get("parameters") or _EMPTY_SCHEMA, join(path, "parameters"))
            )
        self.tools.append(Tool(neutral, description, schema))
        if kind == "custom" or namespace is not None:
            self.kinds[neutral] = WireTool(name, namespace, kind == "custom")

    def add_namespace(self, tool: Mapping[str, Any], path: str) -> None:
        namespace = string(tool, "name", path)
        inner = array(tool.get("tools"), join(path, "tools"))
        for position, item in enumerate(inner):
            where = f"{path}.tools[{position}]"
            self.add(mapping(item, where), where, namespace)


def parse_tools(value: Any) -> tuple[tuple[Tool, ...], ToolKinds]:
    """`tools` -> the neutral tools and the kinds of the custom and namespaced ones.

    Raises:
        ConversionError: (400) a malformed tool, or two tools with one neutral name.
    """
    box = _Toolbox()
    for position, item in enumerate(array(value, "tools") if value is not None else ()):
        path = f"tools[{position}]"
        tool = mapping(item, path)
        if tool.get("type") == "namespace":
            box.add_namespace(tool, path)
        else:
            box.add(tool, path)
    return tuple(box.tools), ToolKinds(box.kinds)


def tool_kinds(body: Mapping[str, Any]) -> ToolKinds:
    """The ToolKinds of a request body's `tools`: what the emitters need to write the
    backend's calls back as `custom_tool_call`s and namespaced calls.

    Raises:
        ConversionError: (400) as `parse_tools`.
    """
    return parse_tools(mapping(body, "request body").get("tools"))[1]


class ToolNames:
    """Wire tool names (with their namespace, if any) -> neutral names, for the calls in a
    request's history and its `tool_choice`. A short name given without its namespace
    resolves to the one namespaced tool of that name (a client may drop the namespace
    when it echoes a call), unless a plain tool has it or several namespaces do."""

    __slots__ = ("_plain", "_short")

    def __init__(self, tools: tuple[Tool, ...], kinds: ToolKinds) -> None:
        self._plain = frozenset(tool.name for tool in tools)
        short: dict[str, str | None] = {}
        for neutral, wire in kinds.tools.items():
            if wire.namespace is not None:
                short[wire.name] = None if wire.name in short else neutral
        self._short = {name: neutral for name, neutral in short.items() if neutral is not None}

    def neutral(self, name: str, namespace: str | None = None) -> str:
        if namespace or name in self._plain:
            return neutral_name(name, namespace)
        return self._short.get(name, name)


_MODES = ("auto", "none", "required")


def parse_tool_choice(value: Any, names: ToolNames) -> ToolChoice | None:
    """`tool_choice` -> ToolChoice (None when absent); a named tool through `names`.

    Raises:
        ConversionError: (400) not one of the shapes listed in the module docstring.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value not in _MODES:
            raise bad_request("tool_choice", f"must be one of {', '.join(_MODES)} or an object")
        return ToolChoice(value)
    choice = mapping(value, "tool_choice")
    kind = string(choice, "type", "tool_choice")
    if kind in ("function", "custom"):
        return ToolChoice("tool", names.neutral(string(choice, "name", "tool_choice")))
    if kind == "allowed_tools":
        mode = string(choice, "mode", "tool_choice")
        if mode not in ("auto", "required"):
            raise bad_request("tool_choice.mode", "must be auto or required")
        return ToolChoice(mode)
    return ToolChoice("auto")  # a hosted tool: dropped with its tool
