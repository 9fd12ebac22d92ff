"""The Anthropic Messages front door through the official anthropic SDK, over loopback.

Set-ups (deterministic; the mock's rules are in the README):
- same dialect: anthropic SDK -> louter (mock backend, which speaks Anthropic);
- Anthropic client -> OpenAI / Gemini backend: louter B whose backend is louter A's
  OpenAI or Gemini door (the mock behind it);
- OpenAI and google-genai clients -> Anthropic backend: louter B -> louter A's Messages door.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import trio
from google.genai import types

from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply
from tests.sdk import PNG_B64, Clients, in_thread

MODEL = "claude-sonnet-5-5"
WEATHER = {
    "name": "get_weather",
    "description": "Get the weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
BACKENDS = ["mock", "openai", "gemini"]


async def louter_for(start_louter: StartLouter, backend: str, **kwargs: Any) -> str:
    """A louter whose backend speaks `backend` ("mock": the mock itself)."""
    if backend == "mock":
        return await start_louter(**kwargs)
    upstream = await start_louter()
    config = f'[backends.upstream]\nprotocol = "{backend}"\nurl = "{upstream}"\n'
    return await start_louter(config, backend="upstream", **kwargs)


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_text(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.anthropic(await louter_for(start_louter, backend))
    reply = await in_thread(
        lambda: client.messages.create(
            model=MODEL, max_tokens=64, system="be brief", messages=ask("hello there")
        )
    )
    assert reply.content[0].type == "text"
    assert reply.content[0].text == 'Mock answer to: "hello there" (images: 0)'
    assert reply.stop_reason == "end_turn"
    assert reply.usage.input_tokens == 4  # "be brief" + "hello there", counted by the mock
    assert reply.usage.output_tokens == len(reply.content[0].text.split())


@pytest.mark.parametrize("backend", BACKENDS)
async def test_stream_helper(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.anthropic(await louter_for(start_louter, backend))

    def run() -> tuple[list[str], Any]:
        with client.messages.stream(
            model=MODEL, max_tokens=64, messages=ask("stream me please")
        ) as stream:
            texts = list(stream.text_stream)
            return texts, stream.get_final_message()

    texts, final = await in_thread(run)
    assert len(texts) > 1
    assert "".join(texts) == 'Mock answer to: "stream me please" (images: 0)'
    assert final.content[0].text == "".join(texts)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len("".join(texts).split())


@pytest.mark.parametrize("backend", BACKENDS)
async def test_tool_round_trip(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.anthropic(await louter_for(start_louter, backend))
    messages: list[Any] = ask("weather in Paris?")
    first = await in_thread(
        lambda: client.messages.create(
            model=MODEL, max_tokens=64, messages=messages, tools=[WEATHER]
        )
    )
    assert first.stop_reason == "tool_use"
    use = next(block for block in first.content if block.type == "tool_use")
    assert (use.name, use.input) == ("get_weather", {"city": "mock-city"})
    assert use.id
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
        },
    ]
    second = await in_thread(
        lambda: client.messages.create(
            model=MODEL, max_tokens=64, messages=messages, tools=[WEATHER]
        )
    )
    assert second.content[0].text == 'Mock answer to tool result: "sunny"'
    assert second.stop_reason == "end_turn"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_streamed_tool_use(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.anthropic(await louter_for(start_louter, backend))

    def run() -> Any:
        with client.messages.stream(
            model=MODEL, max_tokens=64, messages=ask("weather"), tools=[WEATHER]
        ) as stream:
            return stream.get_final_message()

    final = await in_thread(run)
    use = next(block for block in final.content if block.type == "tool_use")
    assert use.input == {"city": "mock-city"}
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_image(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.anthropic(await louter_for(start_louter, backend))
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG_B64}}  # fmt: skip
    content = [image, {"type": "text", "text": "what is this"}]
    reply = await in_thread(
        lambda: client.messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": content}]
        )
    )
    assert reply.content[0].text == 'Mock answer to: "what is this" (images: 1)'


@pytest.mark.parametrize("backend", BACKENDS)
async def test_count_tokens(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.anthropic(await louter_for(start_louter, backend))
    counted = await in_thread(
        lambda: client.messages.count_tokens(model=MODEL, messages=ask("abcdefgh"))
    )
    # The mock backend counts words itself; other backends are estimated by louter.
    assert counted.input_tokens == (1 if backend == "mock" else 2 + 3)


async def test_models_list_in_anthropic_shape(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.anthropic(await start_louter())
    models = await in_thread(lambda: [m.id for m in client.models.list()])
    assert "mock" in models


async def test_errors_use_anthropic_envelope(start_louter: StartLouter) -> None:
    base = await start_louter()
    headers = {"anthropic-version": "2026-10-21", "x-api-key": "k"}
    async with httpx.AsyncClient() as http:
        bad = await http.post(base + "/v1/messages", content=b"{nope", headers=headers)
        missing = await http.post(base + "/v1/messages", json={"max_tokens": 5}, headers=headers)
    assert bad.status_code == 400
    assert bad.json()["type"] == "error"
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert missing.status_code == 400
    assert "model" in missing.json()["error"]["message"]


async def test_sdk_sees_bad_request(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.anthropic(await louter_for(start_louter, "openai"))
    messages: list[Any] = [
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "x"}],
        }
    ]
    with pytest.raises(anthropic.BadRequestError) as caught:
        await in_thread(
            lambda: client.messages.create(model=MODEL, max_tokens=8, messages=messages)
        )
    assert "nope" in caught.value.message


async def test_log_records_formats(sdk: Clients, start_louter: StartLouter, tmp_path: Path) -> None:
    log = tmp_path / "b.jsonl"
    client = sdk.anthropic(await louter_for(start_louter, "gemini", log_file=log))
    await in_thread(lambda: client.messages.create(model=MODEL, max_tokens=8, messages=ask("x")))
    formats = {e["direction"]: e["format"] for e in read_log(log)}
    assert formats["client_request"] == "anthropic"
    assert formats["backend_request"] == "gemini"
    assert formats["client_response"] == "anthropic"


# --------------------------------------------------------------- other clients -> Anthropic


async def test_openai_client_to_anthropic_backend(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.openai(await louter_for(start_louter, "anthropic"))
    tool = {"type": "function", "function": {"name": "get_weather",
            "parameters": WEATHER["input_schema"]}}  # fmt: skip
    reply = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=ask("hello"))
    )
    assert reply.choices[0].message.content == 'Mock answer to: "hello" (images: 0)'
    chunks = await in_thread(
        lambda: list(client.chat.completions.create(model="m", messages=ask("stream"), stream=True))
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == 'Mock answer to: "stream" (images: 0)'
    first = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=ask("weather"), tools=[tool])
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    messages: list[Any] = [
        *ask("weather"),
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "rain"},
    ]
    second = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=messages, tools=[tool])
    )
    assert second.choices[0].message.content == 'Mock answer to tool result: "rain"'


async def test_gemini_client_to_anthropic_backend(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.gemini(await louter_for(start_louter, "anthropic"))
    reply = await in_thread(lambda: client.models.generate_content(model="m", contents="hello"))
    assert reply.text == 'Mock answer to: "hello" (images: 0)'
    chunks = await in_thread(
        lambda: list(client.models.generate_content_stream(model="m", contents="stream"))
    )
    assert "".join(c.text or "" for c in chunks) == 'Mock answer to: "stream" (images: 0)'
    declaration = types.FunctionDeclaration(
        name="get_weather", parameters_json_schema=WEATHER["input_schema"]
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    first = await in_thread(
        lambda: client.models.generate_content(model="m", contents="weather", config=config)
    )
    assert first.function_calls[0].args == {"city": "mock-city"}


async def test_anthropic_backend_wire(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    """What an Anthropic-protocol backend receives: `/v1/messages`, its own key in
    `x-api-key`, `anthropic-version`; an upstream error keeps its status and message."""
    upstream = FakeUpstream()
    port = await nursery.start(upstream.serve)
    answer = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1},
    }  # fmt: skip
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    upstream.script(JSONReply(answer), JSONReply(overloaded, status=529))
    config = (
        f'[backends.a]\nprotocol = "anthropic"\nurl = "http://127.0.0.1:{port}"\n'
        'api_key = "backend-key"\n'
    )
    client = sdk.openai(await start_louter(config, backend="a"))
    reply = await in_thread(lambda: client.chat.completions.create(model="m", messages=ask("hi")))
    assert reply.choices[0].message.content == "hi"
    assert reply.usage is not None and reply.usage.prompt_tokens == 3
    with pytest.raises(Exception) as caught:
        await in_thread(lambda: client.chat.completions.create(model="m", messages=ask("hi")))
    assert "busy" in str(caught.value)
    assert getattr(caught.value, "status_code", None) == 529
    first = upstream.requests[0]
    assert first.path == "/v1/messages"
    assert first.headers["x-api-key"] == "backend-key"
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert first.json["max_tokens"] > 0
