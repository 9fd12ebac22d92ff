"""OpenAI Responses wire vocabulary shared by requests, answers and streams.

https://platform.openai.com/docs/api-reference/responses. Everything here is small and
pure: the tool-kind table, custom-tool arguments, reasoning opaque data, statuses, usage,
output item ids, error envelopes and the validators the request parsers share.

Tool kinds (`ToolKinds`)
    The neutral model knows only function tools. A Responses client may also offer
    `custom` tools (free-form text input) and `namespace` tools (a group of tools under a
    prefix). Both are flattened into neutral function tools when the request is parsed,
    and `ToolKinds` remembers how to write their calls back:
    - a custom tool `apply_patch` is the neutral tool `apply_patch` taking one string
      argument `input` (CUSTOM_INPUT); its calls go back as `custom_tool_call` items
      whose `input` is that string;
    - a namespace `ns` holding `tool` is the neutral tool `ns__tool` (NAMESPACE_SEPARATOR
      is two underscores: valid in every backend's function names); its calls go back as
      items with `name: "tool"` and `namespace: "ns"`, the shape the API itself answers.
    Plain function tools need no entry; `FUNCTIONS` (no entries) is the default.

Reasoning opaque data
    A reasoning item's `encrypted_content` is the neutral `Reasoning.redacted` (OpenAI's
    encrypted reasoning, or Anthropic's redacted thinking). A reasoning signature
    (Anthropic thinking, Gemini thoughtSignature) has no Responses field, so the client
    is given `encrypted_content = SIGNATURE_PREFIX + signature`: clients return the item
    untouched (Codex sends `store: false` and the whole history every turn), and reading
    it back restores `Reasoning.signature`, so thinking round-trips through Codex.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from louter.convert.model import Reasoning, ToolCall, Usage, dump_arguments

__all__ = [
    "tool_call_json",
    "CUSTOM_INPUT",
    "FUNCTIONS",
    "KEY_ENV",
    "KEY_HEADERS",
    "NAMESPACE_SEPARATOR",
    "PATH",
    "SIGNATURE_PREFIX",
    "ToolKinds",
    "UPSTREAM_HEADERS",
    "WireTool",
    "custom_arguments",
    "custom_input",
    "custom_schema",
    "emit_usage",
    "encrypted_content",
    "error_body",
    "error_event",
    "error_message",
    "finish_of",
    "item_id",
    "neutral_name",
    "parse_usage",
    "reasoning_part",
    "status_of",
    "upstream_path",
]

NAMESPACE_SEPARATOR = "__"
CUSTOM_INPUT = "input"
SIGNATURE_PREFIX = "louter-signature:"
_ERROR_MESSAGE_LIMIT = 1000


# --------------------------------------------------------------------------- tool kinds


@dataclass(frozen=True, slots=True)
class WireTool:
    """How one neutral tool is named on the Responses wire."""

    name: str
    namespace: str | None = None
    custom: bool = False


@dataclass(frozen=True, slots=True)
class ToolKinds:
    """Neutral tool name -> its wire form, for the tools that are not plain functions."""

    tools: Mapping[str, WireTool] = field(default_factory=dict)

    def wire(self, neutral: str) -> WireTool:
        """The wire form of a neutral tool name (a plain function when not listed)."""
        return self.tools.get(neutral) or WireTool(neutral)


FUNCTIONS = ToolKinds()


def neutral_name(name: str, namespace: str | None) -> str:
    """A wire tool name (and its namespace) -> the flattened neutral name."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


def custom_schema(definition: Mapping[str, Any] | None) -> dict[str, Any]:
    """The function schema offered for a custom tool: one string, `input`. A grammar
    `format` is described to the model, since function backends cannot enforce it."""
    hint = "The tool's whole input as free-form text (it is passed on as is, not as JSON)."
    if definition is not None and definition.get("type") == "grammar":
        syntax = definition.get("syntax") or "grammar"
        hint += f" It must match this {syntax} grammar:\n{definition.get('definition', '')}"
    return {
        "type": "object",
        "properties": {CUSTOM_INPUT: {"type": "string", "description": hint}},
        "required": [CUSTOM_INPUT],
        "additionalProperties": False,
    }


def custom_arguments(text: str) -> str:
    """A custom tool call's input -> the neutral arguments JSON text."""
    return dump_arguments({CUSTOM_INPUT: text})


def custom_input(arguments: str) -> str:
    """Neutral arguments -> a custom tool call's input. Lenient with models: an object's
    `input` string, else its only string value, a JSON string, else the raw text."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if isinstance(value.get(CUSTOM_INPUT), str):
            return str(value[CUSTOM_INPUT])
        if len(value) == 1 and isinstance(next(iter(value.values())), str):
            return str(next(iter(value.values())))
    return arguments


# --------------------------------------------------------------------------- reasoning


def encrypted_content(part: Reasoning) -> str | None:
    """The `encrypted_content` that carries a Reasoning's opaque data, if it has any."""
    if part.redacted is not None:
        return part.redacted
    return SIGNATURE_PREFIX + part.signature if part.signature else None


def reasoning_part(text: str, encrypted: str | None) -> Reasoning:
    """A reasoning item's text and `encrypted_content` -> Reasoning."""
    if encrypted is not None and encrypted.startswith(SIGNATURE_PREFIX):
        return Reasoning(text, signature=encrypted[len(SIGNATURE_PREFIX) :])
    return Reasoning(text, redacted=encrypted)


# --------------------------------------------------------------------------- status, usage

# neutral finish -> (response status, incomplete_details.reason); "error" has none
_STATUS: dict[str, tuple[str, str | None]] = {
    "stop": ("completed", None),
    "tool_calls": ("completed", None),
    "length": ("incomplete", "max_output_tokens"),
    "content_filter": ("incomplete", "content_filter"),
}


_INCOMPLETE: dict[str, str] = {"max_output_tokens": "length", "content_filter": "content_filter"}


def status_of(finish: str) -> tuple[str, str | None] | None:
    """A neutral finish reason -> (status, incomplete reason); None for "error"."""
    return _STATUS.get(finish)


def finish_of(status: object, details: object, has_calls: bool) -> str | None:
    """A finished response's `status` (and `incomplete_details`) -> a neutral finish
    reason; None when the status is not a finished one. An incomplete response with an
    unknown reason was cut short: "length"."""
    if status == "completed":
        return "tool_calls" if has_calls else "stop"
    if status == "incomplete":
        reason = details.get("reason") if isinstance(details, Mapping) else None
        return _INCOMPLETE.get(reason, "length") if isinstance(reason, str) else "length"
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _detail(usage: Mapping[str, Any], group: str, key: str) -> int | None:
    details = usage.get(group)
    return _count(details.get(key)) if isinstance(details, Mapping) else None


def parse_usage(usage: Any) -> Usage | None:
    """Responses `usage` -> Usage (None when absent). `input_tokens` includes cached ones
    on both sides."""
    if not isinstance(usage, Mapping):
        return None
    return Usage(
        input_tokens=_count(usage.get("input_tokens")) or 0,
        output_tokens=_count(usage.get("output_tokens")) or 0,
        reasoning_tokens=_detail(usage, "output_tokens_details", "reasoning_tokens"),
        cached_tokens=_detail(usage, "input_tokens_details", "cached_tokens"),
    )


def emit_usage(usage: Usage) -> dict[str, Any]:
    """Usage -> Responses `usage`; the details the SDK types require default to 0."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens or 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.total_tokens,
    }


def item_id(prefix: str, response_id: str, index: int) -> str:
    """A deterministic output item id: `msg_<stem>_<n>` for the response `resp_<stem>`."""
    stem = response_id.removeprefix("resp_") or "louter"
    return f"{prefix}_{stem}_{index}"


# --------------------------------------------------------------------------- errors

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error envelope for an HTTP status."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def error_message(body: bytes) -> str:
    """The message inside an upstream error body (`error.message`, `message`, `detail`),
    else its trimmed raw text."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        for key in ("error", "message", "detail"):
            found = value.get(key)
            if isinstance(found, dict) and isinstance(found.get("message"), str):
                return str(found["message"])
            if isinstance(found, str) and found:
                return found
    return body.decode("utf-8", "replace").strip()[:_ERROR_MESSAGE_LIMIT]


def error_event(message: str) -> bytes:
    """The in-stream `error` event of a Responses stream."""
    payload = {"type": "error", "code": "server_error", "message": message, "param": None}
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


# --------------------------------------------------------------------------- the wire

PATH = "/v1/responses"
KEY_HEADERS = ("authorization",)  # a Bearer token
KEY_ENV = "OPENAI_API_KEY"
UPSTREAM_HEADERS = ((b"content-type", b"application/json"),)


def upstream_path(model: str, stream: bool) -> str:
    return PATH


def tool_call_json(call: ToolCall) -> dict[str, Any]:
    """A tool call as a `function_call` output item."""
    return {"type": "function_call", "call_id": call.id, "name": call.name,
            "arguments": call.arguments}  # fmt: skip
