"""Whole Completions answers <-> the neutral model, and the readers for usage and text.

A backend's `text_completion` body (`parse_response`): choice 0's `text` is the answer's
text (an empty text is no part), its `finish_reason` the neutral one (a missing or
unknown reason is "error", never a stop), `usage` the usage. An `error` object, a body
without choices or a choice without a `text` string (a chat answer from a backend
configured as `completions`) is a ConversionError (502).

For a Completions client (`emit_response`):

    {"id", "object": "text_completion", "created", "model",
     "choices": [{"text", "index": 0, "logprobs": null, "finish_reason"}], "usage"}

Reasoning has no field and is left out (as a chat backend's hidden reasoning). A tool call
cannot be answered to a client that offered no tools, and a backend error never becomes
a stop: both are a ConversionError (502), so the client gets an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from louter.convert.completions.wire import (
    FINISH_OUT,
    OBJECT,
    emit_usage,
    map_finish,
    message_of,
    parse_usage,
)
from louter.convert.model import IdFactory, Response, ResponseMeta, Text, Usage
from louter.errors import ConversionError

__all__ = ["emit_response", "parse_response", "text_of", "usage_of"]


def parse_response(body: Mapping[str, Any], ids: IdFactory) -> Response:
    """A `text_completion` body from a backend -> `Response`. ConversionError (502).
    (`ids` is unused: a Completions answer holds no tool calls.)"""
    if isinstance(body.get("error"), dict | str):
        raise ConversionError(f"backend error: {message_of(body['error'])}", status_hint=502)
    choice = _first_choice(body)
    if choice is None:
        raise ConversionError("backend answer has no choices", status_hint=502)
    text = choice.get("text")
    if not isinstance(text, str):
        raise ConversionError(
            "backend answer's choice has no text string (is this a completions endpoint?)",
            status_hint=502,
        )
    return Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        parts=(Text(text),) if text else (),
        finish_reason=map_finish(choice.get("finish_reason")),
        usage=parse_usage(body.get("usage")),
    )


def _first_choice(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Choice 0 (by `index`, else the first listed), or None."""
    choices = body.get("choices")
    if not isinstance(choices, list):
        return None
    listed = [choice for choice in choices if isinstance(choice, dict)]
    return next((c for c in listed if c.get("index", 0) == 0), listed[0] if listed else None)


def emit_response(response: Response, meta: ResponseMeta) -> dict[str, Any]:
    """`Response` -> a `text_completion` body. ConversionError (502) for a tool call or
    an answer that ended with an error."""
    if response.tool_calls():
        raise ConversionError(
            "the backend answered with a tool call, which a completions client cannot receive",
            status_hint=502,
        )
    finish = FINISH_OUT.get(response.finish_reason)
    if finish is None:
        raise ConversionError("the backend ended its answer with an error", status_hint=502)
    choice = {"text": response.text(), "index": 0, "logprobs": None, "finish_reason": finish}
    body: dict[str, Any] = {
        "id": meta.id,
        "object": OBJECT,
        "created": meta.created,
        "model": meta.model,
        "choices": [choice],
    }
    usage = emit_usage(response.usage)
    if usage is not None:
        body["usage"] = usage
    return body


def usage_of(data: Mapping[str, Any]) -> Usage | None:
    """A whole answer's usage (None when it reports none)."""
    return parse_usage(data.get("usage"))


def text_of(data: Mapping[str, Any]) -> str:
    """A whole answer's text (for an output estimate); "" when it has none."""
    choice = _first_choice(data)
    text = choice.get("text") if choice is not None else None
    return text if isinstance(text, str) else ""
