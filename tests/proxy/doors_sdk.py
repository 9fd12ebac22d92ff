"""One request through each front door with its official SDK: the shared helper of the
processor and cache tests (`ask`), and each SDK's 400 error class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import google.genai.errors
import openai
import orjson
from google.genai import types

from tests.sdk import Clients

DOORS = ("openai", "anthropic", "gemini", "responses")


@dataclass
class Asked:
    """What the client got, in neutral terms."""

    text: str
    reasoning: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finish: str = ""
    usage: tuple[int, int] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: int = 0  # stream events received (0: a whole answer)
    raw: Any = None


@dataclass
class Ask:
    model: str = "m"
    text: str = "hi"
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    tools: list[dict[str, Any]] | None = None  # name, description, parameters (JSON schema)
    headers: dict[str, str] | None = None
    stream: bool = False


def ask(sdk: Clients, door: str, base: str, q: Ask, key: str | None = None) -> Asked:
    return ASKS[door](sdk, base, q, key)


def _openai(sdk: Clients, base: str, q: Ask, key: str | None) -> Asked:
    client = sdk.openai(base)
    if key:
        client = client.with_options(api_key=key)
    messages: list[Any] = [{"role": "system", "content": q.system}] if q.system else []
    messages.append({"role": "user", "content": q.text})
    extra: dict[str, Any] = {}
    if q.max_tokens is not None:
        extra["max_tokens"] = q.max_tokens
    if q.temperature is not None:
        extra["temperature"] = q.temperature
    if q.tools:
        extra["tools"] = [{"type": "function", "function": t} for t in q.tools]
    if not q.stream:
        raw = client.chat.completions.with_raw_response.create(
            model=q.model, messages=messages, extra_headers=q.headers, **extra
        )
        reply = raw.parse()
        message = reply.choices[0].message
        calls = [(c.function.name, _json(c.function.arguments)) for c in message.tool_calls or ()]
        usage = reply.usage
        return Asked(
            message.content or "",
            getattr(message, "reasoning_content", None) or "",
            calls,
            reply.choices[0].finish_reason,
            None if usage is None else (usage.prompt_tokens, usage.completion_tokens),
            dict(raw.headers),
            raw=reply,
        )
    raw_stream = client.chat.completions.with_raw_response.create(
        model=q.model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=q.headers,
        **extra,
    )
    text, reasoning, finish, events = "", "", "", 0
    calls_by_index: dict[int, list[str]] = {}
    usage = None
    for chunk in raw_stream.parse():
        events += 1
        if chunk.usage is not None:
            usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices:
            delta = choice.delta
            text += delta.content or ""
            reasoning += getattr(delta, "reasoning_content", None) or ""
            for call in delta.tool_calls or ():
                entry = calls_by_index.setdefault(call.index, ["", ""])
                entry[0] += (call.function and call.function.name) or ""
                entry[1] += (call.function and call.function.arguments) or ""
            finish = choice.finish_reason or finish
    calls = [(name, _json(args)) for name, args in calls_by_index.values()]
    return Asked(text, reasoning, calls, finish, usage, dict(raw_stream.headers), events)


def _anthropic(sdk: Clients, base: str, q: Ask, key: str | None) -> Asked:
    client = sdk.anthropic(base)
    if key:
        client = client.with_options(api_key=key)
    extra: dict[str, Any] = {}
    if q.system:
        extra["system"] = q.system
    if q.temperature is not None:
        extra["extra_body"] = {"temperature": q.temperature}
    if q.tools:
        extra["tools"] = [
            {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
            for t in q.tools
        ]
    messages: Any = [{"role": "user", "content": q.text}]
    max_tokens = q.max_tokens or 1024
    if not q.stream:
        raw = client.messages.with_raw_response.create(
            model=q.model,
            max_tokens=max_tokens,
            messages=messages,
            extra_headers=q.headers,
            **extra,
        )
        reply = raw.parse()
        headers = dict(raw.headers)
        events = 0
    else:
        with client.messages.stream(
            model=q.model,
            max_tokens=max_tokens,
            messages=messages,
            extra_headers=q.headers,
            **extra,
        ) as stream:
            events = sum(1 for _ in stream)
            reply = stream.get_final_message()
            headers = dict(stream.response.headers)
    text = "".join(b.text for b in reply.content if b.type == "text")
    reasoning = "".join(b.thinking for b in reply.content if b.type == "thinking")
    calls = [(b.name, dict(b.input)) for b in reply.content if b.type == "tool_use"]
    usage = (reply.usage.input_tokens, reply.usage.output_tokens)
    return Asked(text, reasoning, calls, reply.stop_reason or "", usage, headers, events, reply)


def _gemini(sdk: Clients, base: str, q: Ask, key: str | None) -> Asked:
    client = sdk.gemini(base)
    if key:
        client = sdk._keep(
            google.genai.Client(
                api_key=key, http_options=types.HttpOptions(base_url=base, api_version="v1beta")
            )
        )
    config = types.GenerateContentConfig(
        system_instruction=q.system,
        max_output_tokens=q.max_tokens,
        temperature=q.temperature,
        http_options=types.HttpOptions(headers=q.headers) if q.headers else None,
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name=t["name"],
                        description=t["description"],
                        parameters_json_schema=t["parameters"],
                    )
                    for t in q.tools
                ]
            )
        ]
        if q.tools
        else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    if not q.stream:
        chunks = [client.models.generate_content(model=q.model, contents=q.text, config=config)]
    else:
        chunks = list(
            client.models.generate_content_stream(model=q.model, contents=q.text, config=config)
        )
    text, reasoning, calls = "", "", []
    for chunk in chunks:
        for part in chunk.candidates[0].content.parts or () if chunk.candidates else ():
            if part.thought:
                reasoning += part.text or ""
            elif part.text:
                text += part.text
            if part.function_call:
                calls.append((part.function_call.name, dict(part.function_call.args or {})))
    last = chunks[-1]
    meta = last.usage_metadata
    usage = None if meta is None else (meta.prompt_token_count, meta.candidates_token_count)
    headers = dict(last.sdk_http_response.headers or {}) if last.sdk_http_response else {}
    finish = str(last.candidates[0].finish_reason) if last.candidates else ""
    events = len(chunks) if q.stream else 0
    return Asked(text, reasoning, calls, finish, usage, headers, events, chunks)


def _responses(sdk: Clients, base: str, q: Ask, key: str | None) -> Asked:
    client = sdk.openai(base)
    if key:
        client = client.with_options(api_key=key)
    extra: dict[str, Any] = {}
    if q.system:
        extra["instructions"] = q.system
    if q.max_tokens is not None:
        extra["max_output_tokens"] = q.max_tokens
    if q.temperature is not None:
        extra["temperature"] = q.temperature
    if q.tools:
        extra["tools"] = [{"type": "function", **t} for t in q.tools]
    if not q.stream:
        raw = client.responses.with_raw_response.create(
            model=q.model, input=q.text, extra_headers=q.headers, **extra
        )
        reply = raw.parse()
        headers = dict(raw.headers)
        events = 0
    else:
        stream = client.responses.create(
            model=q.model, input=q.text, extra_headers=q.headers, stream=True, **extra
        )
        headers = dict(stream.response.headers)
        seen = list(stream)
        events = len(seen)
        reply = next(e.response for e in seen if e.type == "response.completed")
    calls = [(o.name, _json(o.arguments)) for o in reply.output if o.type == "function_call"]
    reasoning = "".join(
        c.text for o in reply.output if o.type == "reasoning" for c in (o.content or ())
    ) or "".join(s.text for o in reply.output if o.type == "reasoning" for s in o.summary)
    usage = None if reply.usage is None else (reply.usage.input_tokens, reply.usage.output_tokens)
    return Asked(reply.output_text, reasoning, calls, reply.status or "", usage, headers, events)


def _json(text: str | None) -> dict[str, Any]:
    """Arguments as an object; `{"invalid": text}` when they are not JSON."""
    try:
        return dict(orjson.loads(text or "{}"))
    except orjson.JSONDecodeError:
        return {"invalid": text}


ASKS: dict[str, Callable[[Clients, str, Ask, str | None], Asked]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "responses": _responses,
}

BAD_REQUEST: dict[str, type[Exception]] = {
    "openai": openai.BadRequestError,
    "responses": openai.BadRequestError,
    "anthropic": anthropic.BadRequestError,
    "gemini": google.genai.errors.ClientError,
}


def status_of(error: Any, door: str) -> int:
    return int(error.code if door == "gemini" else error.status_code)
