"""Gemini `Part` objects <-> neutral parts, shared by requests, answers and streams.

Reading (`read_part`): a part holds one data field, found by a dict dispatch; `thought`
and `thoughtSignature` ride along with it.

    text                    Text, or Reasoning when `thought: true`
    inlineData              Image(media_type, data)  (any mime type: Image is the only
                            binary part the neutral model has)
    fileData                Image(url=fileUri)
    functionCall            ToolCall; id "" when absent (the caller invents one)
    functionResponse        ToolResult; call_id "" when absent (the caller pairs it)
    executableCode          Text: a fenced code block (Gemini code execution, kept as text)
    codeExecutionResult     Text: its output
    thoughtSignature only   Reasoning("", signature)

`thoughtSignature: "skip_thought_signature_validator"` is gemini-cli's placeholder for "no
signature"; it reads as None and `emit_request` puts it back where Gemini wants one.

functionResponse.response <-> ToolResult.content (Gemini: "use `output` for the result,
`error` for error details; otherwise the whole response is the output"):
    {"output": str} / {"result": str}   Text(str)
    {"error": str}                      Text(str), is_error
    any other object                    Text(its compact JSON)
    functionResponse.parts[inlineData]  Image parts after the text
and back: is_error -> {"error": text}; text that is a JSON object -> that object;
other text -> {"output": text}; images -> `parts`. Lossy only in the key name of
`{"result": str}` (it returns as `output`) and a JSON-object string under `output`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from louter.convert.gemini.fields import fail, get, join, mapping, sequence, snake, text
from louter.convert.model import (
    Image,
    Part,
    Reasoning,
    Text,
    ToolCall,
    ToolResult,
    dump_arguments,
)

SKIP_SIGNATURE = "skip_thought_signature_validator"
Wire = dict[str, Any]


def read_part(part: Any, path: str, status: int = 400) -> Part:
    """One wire part -> one neutral part; see the module docstring.

    Raises:
        ConversionError: (`status`) the part is not an object, has no known data field,
            or its data field is malformed.
    """
    obj = mapping(part, path, status)
    for key, value in obj.items():
        reader = _READERS.get(_CAMEL.get(key, key))
        if reader is not None and value is not None:
            return reader(obj, value, path, status)
    signature = signature_of(obj, path, status)
    if signature is not None or get(obj, "thought") is True:
        return Reasoning(signature=signature)
    raise fail(path, f"unknown part with keys {sorted(obj)}", status)


def signature_of(obj: Mapping[str, Any], path: str, status: int) -> str | None:
    signature = text(obj, "thoughtSignature", path, status)
    return None if signature == SKIP_SIGNATURE else signature


def _text(obj: Mapping[str, Any], value: Any, path: str, status: int) -> Part:
    if not isinstance(value, str):
        raise fail(join(path, "text"), "expected a string", status)
    signature = signature_of(obj, path, status)
    if get(obj, "thought") is True:
        return Reasoning(text=value, signature=signature)
    return Text(text=value, signature=signature)


def _inline(obj: Mapping[str, Any], value: Any, path: str, status: int) -> Part:
    where = join(path, "inlineData")
    blob = mapping(value, where, status)
    data = text(blob, "data", where, status)
    if data is None:
        raise fail(join(where, "data"), "missing", status)
    return Image(media_type=text(blob, "mimeType", where, status) or "image/png", data=data)


def _file(obj: Mapping[str, Any], value: Any, path: str, status: int) -> Part:
    where = join(path, "fileData")
    ref = mapping(value, where, status)
    uri = text(ref, "fileUri", where, status)
    if not uri:
        raise fail(join(where, "fileUri"), "missing", status)
    return Image(media_type=text(ref, "mimeType", where, status) or "image/png", url=uri)


def _call(obj: Mapping[str, Any], value: Any, path: str, status: int) -> Part:
    where = join(path, "functionCall")
    call = mapping(value, where, status)
    name = text(call, "name", where, status)
    if not name:
        raise fail(join(where, "name"), "missing", status)
    args = mapping(get(call, "args"), join(where, "args"), status)
    return ToolCall(
        id=text(call, "id", where, status) or "",
        name=name,
        arguments=dump_arguments(args),
        signature=signature_of(obj, path, status),
    )


def _response(obj: Mapping[str, Any], value: Any, path: str, status: int) -> Part:
    where = join(path, "functionResponse")
    reply = mapping(value, where, status)
    name = text(reply, "name", where, status)
    if not name:
        raise fail(join(where, "name"), "missing", status)
    response = mapping(get(reply, "response"), join(where, "response"), status)
    content, is_error = _result_content(response)
    images = [
        read_part(item, f"{join(where, 'parts')}[{index}]", status)
        for index, item in enumerate(sequence(get(reply, "parts"), join(where, "parts"), status))
    ]
    media = tuple(part for part in images if isinstance(part, Text | Image))
    return ToolResult(
        call_id=text(reply, "id", where, status) or "",
        name=name,
        content=content + media,
        is_error=is_error,
    )


def _result_content(response: Mapping[str, Any]) -> tuple[tuple[Text, ...], bool]:
    if not response:
        return (), False
    if len(response) == 1:
        key, value = next(iter(response.items()))
        if key in ("output", "result", "error") and isinstance(value, str):
            return (Text(value),), key == "error"
    return (Text(orjson.dumps(dict(response)).decode()),), False


def _code(obj: Mapping[str, Any], value: Any, path: str, status: int) -> Part:
    code = mapping(value, join(path, "executableCode"), status)
    language = str(get(code, "language") or "").lower().replace("language_unspecified", "")
    return Text(f"```{language}\n{get(code, 'code') or ''}\n```")


def _code_result(obj: Mapping[str, Any], value: Any, path: str, status: int) -> Part:
    result = mapping(value, join(path, "codeExecutionResult"), status)
    return Text(str(get(result, "output") or ""))


_READERS: dict[str, Callable[[Mapping[str, Any], Any, str, int], Part]] = {
    "text": _text,
    "inlineData": _inline,
    "fileData": _file,
    "functionCall": _call,
    "functionResponse": _response,
    "executableCode": _code,
    "codeExecutionResult": _code_result,
}


_CAMEL = {snake(name): name for name in _READERS}


# --------------------------------------------------------------------------- writing


def write_part(part: Part) -> Wire | None:
    """One neutral part -> one wire part; None for what Gemini cannot carry (redacted
    reasoning: another provider's opaque data).

    Raises:
        ConversionError: (502) a tool call's arguments are not a JSON object.
    """
    return _WRITERS[type(part)](part)


def _write_text(part: Any) -> Wire:
    return _signed({"text": part.text}, part.signature)


def _write_reasoning(part: Any) -> Wire | None:
    if part.redacted is not None:
        return None
    return _signed({"text": part.text, "thought": True}, part.signature)


def _write_image(part: Any) -> Wire:
    if part.data is None and (part.url or "").startswith("data:"):
        part = Image.from_url(part.url)
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    return {"fileData": {"mimeType": part.media_type, "fileUri": part.url or ""}}


def _write_call(part: Any) -> Wire:
    call: Wire = {"id": part.id} if part.id else {}
    call.update(name=part.name, args=part.arguments_object())
    return _signed({"functionCall": call}, part.signature)


def _write_result(part: Any) -> Wire:
    reply: Wire = {"id": part.call_id} if part.call_id else {}
    reply.update(name=part.name, response=_result_response(part))
    images = [_write_image(item) for item in part.content if isinstance(item, Image)]
    if images:
        reply["parts"] = images
    return {"functionResponse": reply}


def _result_response(part: ToolResult) -> Wire:
    content = part.text()
    if part.is_error:
        return {"error": content}
    if content.startswith("{"):
        try:
            value = orjson.loads(content)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
    return {"output": content}


def _signed(wire: Wire, signature: str | None) -> Wire:
    if signature is not None:
        wire["thoughtSignature"] = signature
    return wire


_WRITERS: dict[type, Callable[[Any], Wire | None]] = {
    Text: _write_text,
    Reasoning: _write_reasoning,
    Image: _write_image,
    ToolCall: _write_call,
    ToolResult: _write_result,
}
