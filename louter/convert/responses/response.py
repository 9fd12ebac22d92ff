"""Responses whole answers <-> neutral `Response`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from louter.convert.collect import events_of
from louter.convert.model import (
    IdFactory,
    Part,
    Response,
    ResponseMeta,
    Text,
    ToolCall,
    Usage,
    number_calls,
)
from louter.convert.responses.stream_emitter import ResponseWriter
from louter.convert.responses.wire import (
    FUNCTIONS,
    ToolKinds,
    custom_arguments,
    finish_of,
    neutral_name,
    parse_usage,
    reasoning_part,
    status_of,
)
from louter.errors import ConversionError

__all__ = ["emit_response", "parse_response"]

# --------------------------------------------------------------------------- answers


def _bad_answer(problem: str) -> ConversionError:
    return ConversionError(f"Responses answer: {problem}", status_hint=502)


def _string(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise _bad_answer(f"{where}.{key} is missing or not a string")
    return value


def _texts(item: Mapping[str, Any], key: str, where: str) -> list[str]:
    texts = []
    for position, entry in enumerate(item.get(key) or ()):
        path = f"{where}.{key}[{position}]"
        if not isinstance(entry, Mapping):
            raise _bad_answer(f"{path} is not an object")
        kind = entry.get("type")
        if kind == "refusal":
            texts.append(_string(entry, "refusal", path))
        elif kind in ("output_text", "summary_text", "reasoning_text"):
            texts.append(_string(entry, "text", path))
        else:
            raise _bad_answer(f"{path}: content type {kind!r} cannot be converted")
    return [text for text in texts if text]


def _message(item: Mapping[str, Any], where: str) -> list[Part]:
    return [Text(text) for text in _texts(item, "content", where)]


def _call_name(item: Mapping[str, Any], where: str) -> str:
    namespace = item.get("namespace")
    return neutral_name(
        _string(item, "name", where), namespace if isinstance(namespace, str) else None
    )


def _call_id(item: Mapping[str, Any]) -> str:
    call_id = item.get("call_id")
    return call_id if isinstance(call_id, str) else ""


def _function_call(item: Mapping[str, Any], where: str) -> list[Part]:
    arguments = item.get("arguments")
    text = arguments if isinstance(arguments, str) and arguments else "{}"
    return [ToolCall(_call_id(item), _call_name(item, where), text)]


def _custom_call(item: Mapping[str, Any], where: str) -> list[Part]:
    text = custom_arguments(_string(item, "input", where))
    return [ToolCall(_call_id(item), _call_name(item, where), text)]


def _reasoning(item: Mapping[str, Any], where: str) -> list[Part]:
    text = "\n\n".join(_texts(item, "summary", where) + _texts(item, "content", where))
    encrypted = item.get("encrypted_content")
    part = reasoning_part(text, encrypted if isinstance(encrypted, str) else None)
    return [part] if part.text or part.signature or part.redacted is not None else []


_ITEMS: dict[str, Callable[[Mapping[str, Any], str], list[Part]]] = {
    "message": _message,
    "function_call": _function_call,
    "custom_tool_call": _custom_call,
    "reasoning": _reasoning,
}


def _output_item(item: Any, where: str) -> list[Part]:
    if not isinstance(item, Mapping):
        raise _bad_answer(f"{where} is not an object")
    kind = item.get("type")
    parse = _ITEMS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise _bad_answer(f"{where}: output item type {kind!r} cannot be converted")
    return parse(item, where)


def parse_response(body: Mapping[str, Any], ids: IdFactory) -> Response:
    """A Responses body (from a backend) -> Response.

    Raises:
        ConversionError: (502) the body is not a finished response object, the response
            failed, or an output item cannot be converted.
    """
    if not isinstance(body, Mapping) or body.get("object", "response") != "response":
        raise _bad_answer("the body is not a response object")
    status = body.get("status") or "completed"
    if status == "failed":
        error = body.get("error")
        message = error.get("message") if isinstance(error, Mapping) else None
        raise _bad_answer(f"the response failed: {message or error}")
    output = body.get("output")
    if not isinstance(output, list):
        raise _bad_answer("output is missing or not an array")
    parts = [part for i, item in enumerate(output) for part in _output_item(item, f"output[{i}]")]
    numbered = number_calls(parts, ids)
    finish = finish_of(
        status, body.get("incomplete_details"), any(isinstance(p, ToolCall) for p in numbered)
    )
    if finish is None:
        raise _bad_answer(f"the response is not finished (status {status!r})")
    answer_id, model = body.get("id"), body.get("model")
    return Response(
        id=answer_id if isinstance(answer_id, str) else "",
        model=model if isinstance(model, str) else "",
        parts=numbered,
        finish_reason=finish,
        usage=parse_usage(body.get("usage")),
    )


def emit_response(
    response: Response, meta: ResponseMeta, kinds: ToolKinds = FUNCTIONS
) -> dict[str, Any]:
    """Response -> a Responses body for the client: the `response` object that the
    stream of the same answer ends with.

    Raises:
        ConversionError: (502) the finish reason is "error", or a tool call's arguments
            reach the writer out of order.
    """
    if status_of(response.finish_reason) is None:
        raise _bad_answer("the upstream answer ended with an error")
    writer = ResponseWriter(meta, kinds)
    for event in events_of(response):
        writer.feed(event)
    assert writer.final is not None
    return writer.final


# --------------------------------------------------------------------------- usage, counts


def usage_of(data: Mapping[str, Any]) -> Usage | None:
    """A whole Responses answer's usage (None when it reports none)."""
    return parse_usage(data.get("usage"))
