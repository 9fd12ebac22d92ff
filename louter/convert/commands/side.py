"""Agents' side calls: requests an agent makes *about* the person's prompt before it
sends the prompt itself. Their newest user message holds the person's text, commands
included, but the commands are meant for the real request: a side call runs none and
does not use up a `!/oneoff` (the session's other settings still apply to it).

Told apart by what the agent sends, never by the text alone:

- gemini-cli's model router (without `-m`, `ClassifierStrategy` and
  `NumericalClassifierStrategy` in gemini-cli 0.61): a `generateContent` in JSON mode
  (`generationConfig.responseMimeType = "application/json"`) whose response schema asks
  for `reasoning` + `model_choice` or `complexity_reasoning` + `complexity_score`, under
  a system instruction that introduces a "Task Routing AI". A person's own JSON-mode
  request with a schema of their own is not one.

`side_call(dialect, body)` reads the client's wire body; it is asked only when the
newest message holds the command prefix or the session has a one-off pending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ROUTER_SCHEMAS = (
    frozenset({"reasoning", "model_choice"}),
    frozenset({"complexity_reasoning", "complexity_score"}),
)
ROUTER_INSTRUCTION = "Task Routing AI"


def _system_text(body: Mapping[str, Any]) -> str:
    system = body.get("systemInstruction") or body.get("system_instruction")
    parts = system.get("parts") if isinstance(system, dict) else None
    if not isinstance(parts, list):
        return ""
    return "\n".join(
        p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _gemini_router(body: Mapping[str, Any]) -> bool:
    config = body.get("generationConfig")
    if not isinstance(config, dict) or config.get("responseMimeType") != "application/json":
        return False
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return False
    if not any(wanted <= properties.keys() for wanted in ROUTER_SCHEMAS):
        return False
    return ROUTER_INSTRUCTION in _system_text(body)


SIDE_CALLS: Mapping[str, Callable[[Mapping[str, Any]], bool]] = {
    "gemini": _gemini_router,
}


def side_call(dialect: str, body: Mapping[str, Any]) -> bool:
    """Whether `body` is an agent's side call (see the module docstring)."""
    found = SIDE_CALLS.get(dialect)
    return found is not None and found(body)
