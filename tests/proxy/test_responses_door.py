"""The Responses front door through the official openai SDK (`client.responses`), over
loopback: against the mock (which speaks Responses), an OpenAI Chat backend and an
Anthropic-protocol backend (louter B in front of louter A's door on the mock)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import StartLouter
from tests.sdk import PNG_B64, Clients, in_thread

BACKENDS = ["mock", "openai", "anthropic"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "strict": False,
}


async def louter_for(start_louter: StartLouter, backend: str) -> str:
    if backend == "mock":
        return await start_louter()
    upstream = await start_louter()
    config = f'[backends.upstream]\nprotocol = "{backend}"\nurl = "{upstream}"\n'
    return await start_louter(config, backend="upstream")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_text(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.openai(await louter_for(start_louter, backend))
    reply = await in_thread(
        lambda: client.responses.create(
            model="gpt-5.5", instructions="be brief", input="hello there"
        )
    )
    assert reply.output_text == 'Mock answer to: "hello there" (images: 0)'
    assert reply.status == "completed"
    assert reply.usage is not None and reply.usage.input_tokens == 4


@pytest.mark.parametrize("backend", BACKENDS)
async def test_stream_helper(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.openai(await louter_for(start_louter, backend))

    def run() -> tuple[list[str], Any]:
        with client.responses.stream(model="m", input="stream me please") as stream:
            types = [event.type for event in stream]
            return types, stream.get_final_response()

    types, final = await in_thread(run)
    assert final.output_text == 'Mock answer to: "stream me please" (images: 0)'
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_item.done" in types
    assert types.count("response.output_text.delta") > 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_function_round_trip(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.openai(await louter_for(start_louter, backend))
    first = await in_thread(
        lambda: client.responses.create(model="m", input="weather in Paris?", tools=[WEATHER])
    )
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "mock-city"}
    history: list[Any] = [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]  # fmt: skip
    second = await in_thread(
        lambda: client.responses.create(model="m", input=history, tools=[WEATHER])
    )
    assert second.output_text == 'Mock answer to tool result: "sunny"'


@pytest.mark.parametrize("backend", BACKENDS)
async def test_image(sdk: Clients, start_louter: StartLouter, backend: str) -> None:
    client = sdk.openai(await louter_for(start_louter, backend))
    content = [
        {"type": "input_text", "text": "what is this"},
        {"type": "input_image", "image_url": "data:image/png;base64," + PNG_B64},
    ]
    reply = await in_thread(
        lambda: client.responses.create(model="m", input=[{"role": "user", "content": content}])
    )
    assert reply.output_text == 'Mock answer to: "what is this" (images: 1)'


async def test_custom_tool_maps_back(sdk: Clients, start_louter: StartLouter) -> None:
    """A custom (free-form) tool is offered to a chat backend as a function with one
    string parameter, and its call comes back as a `custom_tool_call`."""
    client = sdk.openai(await louter_for(start_louter, "openai"))
    tool = {"type": "custom", "name": "apply_patch", "description": "Apply a patch"}
    reply = await in_thread(
        lambda: client.responses.create(model="m", input="apply_patch please", tools=[tool])
    )
    call = next(item for item in reply.output if item.type == "custom_tool_call")
    assert call.name == "apply_patch"
    assert call.input == "mock-input"


async def test_websocket_upgrade_is_refused_with_a_status(start_louter: StartLouter) -> None:
    base = await start_louter()
    headers = {"upgrade": "websocket", "connection": "Upgrade", "sec-websocket-version": "13",
               "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    async with httpx.AsyncClient() as http:
        response = await http.get(base + "/v1/responses", headers=headers)
    assert response.status_code == 426


async def test_previous_response_id_is_a_clear_400(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.openai(await start_louter())
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        await in_thread(
            lambda: client.responses.create(model="m", input="x", previous_response_id="resp_123")
        )
    assert "previous_response_id" in caught.value.message
