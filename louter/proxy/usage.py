"""Token counts for `tokens_total`: the backend's own usage where it reports one, else
louter's estimate (4 characters a token, `convert/tokens.py`).

Whole answers are read with each dialect's usage reader (`Dialect.usage_of`: a dict
lookup, no full parse); streams report what their tap or relay assembled. Only an answer
without usage pays for an estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from louter.convert.dialect import DIALECTS
from louter.convert.model import Request
from louter.convert.tokens import estimate_text, estimate_tokens
from louter.errors import LouterError

Tokens = tuple[int, int]  # (input, output)


def whole_tokens(dialect: str, data: Mapping[str, Any]) -> Tokens | None:
    """The usage of a whole answer in `dialect`, or None when it reports none."""
    usage = data.get("usage")
    if dialect == "openai" and isinstance(usage, dict):  # the hot path: two lookups
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if type(prompt) is int and type(completion) is int:
            return prompt, completion
    known = DIALECTS.get(dialect)
    try:
        usage = known.usage_of(data) if known is not None else None
    except LouterError:  # a malformed usage object counts as none
        return None
    return None if usage is None else (usage.input_tokens, usage.output_tokens)


def whole_text(dialect: str, data: Mapping[str, Any]) -> str:
    """The answer's text and tool-call arguments, for an output estimate."""
    try:
        return DIALECTS[dialect].text_of(data)
    except (LouterError, KeyError):
        return ""


def view_tokens(view: Mapping[str, Any]) -> Tokens | None:
    """The usage of a journal view of an answer (`prompt_tokens`/`completion_tokens`)."""
    usage = view.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return prompt, completion


def view_text(view: Mapping[str, Any]) -> str:
    calls = view.get("tool_calls") or []
    arguments = "".join(
        str(call.get("function", {}).get("arguments") or "")
        for call in calls
        if isinstance(call, dict)
    )
    return str(view.get("content") or "") + arguments


def estimate_output(text: str) -> int:
    return estimate_text(text)


class LazyRequest:
    """The client's request in neutral form, parsed on first use only (a passthrough
    answer with usage never needs it) and shared by every candidate's plan."""

    __slots__ = ("_parse", "_request", "_estimate")

    def __init__(self, parse: Callable[[], Request]) -> None:
        self._parse = parse
        self._request: Request | None = None
        self._estimate: int | None = None

    def __call__(self) -> Request:
        if self._request is None:
            self._request = self._parse()
        return self._request

    def set(self, request: Request) -> None:
        """Use `request` from now on (a pipeline stage rewrote it)."""
        self._request = request
        self._estimate = None

    def estimate(self) -> int:
        """Its input tokens, estimated once; a request that does not parse counts 0."""
        if self._estimate is None:
            try:
                self._estimate = estimate_tokens(self())
            except LouterError:
                self._estimate = 0
        return self._estimate
