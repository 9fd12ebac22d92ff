"""End to end: the openai SDK's `client.responses` -> louter (Responses door) -> a real
llama-server speaking Chat Completions (`../shared/llama-server/`, SmolLM2-135M), with
the server's reproducible tool recipe written as Responses items."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import StartLouter
from tests.llama import LLAMA_MODEL
from tests.sdk import PNG_B64, in_thread

pytestmark = pytest.mark.llama

MODEL = "smol"
TIMEOUT_S = 180
QUESTION = "What is the capital of France? Answer in one sentence."
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}
ONE_SHOT: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the weather in London?"},
    {"type": "function_call", "call_id": "call_1", "name": "get_weather",
     "arguments": '{"city":"London"}'},
    {"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c":15,"sky":"cloudy"}'},
    {"role": "assistant", "content": "It is 15 C and cloudy."},
    {"role": "user", "content": "What is the weather in Paris?"},
]  # fmt: skip


@pytest.fixture
async def client(
    start_louter: StartLouter, llama_url: str, tmp_path: Path
) -> Iterator[openai.OpenAI]:
    config = f"""
[performance]
timeout_seconds = {TIMEOUT_S}

[backends.llama]
url = "{llama_url}"

[backends.llama.model_mapping]
"{MODEL}" = "{LLAMA_MODEL}"
"""
    base = await start_louter(config, log_file=tmp_path / "louter.jsonl")
    with openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0, timeout=TIMEOUT_S) as c:
        yield c


async def test_text_and_stream_agree(client: openai.OpenAI) -> None:
    whole = await in_thread(
        lambda: client.responses.create(
            model=MODEL, input=QUESTION, temperature=0, max_output_tokens=48
        )
    )
    assert "Paris" in whole.output_text

    def run() -> Any:
        with client.responses.stream(
            model=MODEL, input=QUESTION, temperature=0, max_output_tokens=48
        ) as stream:
            return stream.get_final_response()

    streamed = await in_thread(run)
    assert streamed.output_text == whole.output_text


async def test_function_round_trip(client: openai.OpenAI) -> None:
    first = await in_thread(
        lambda: client.responses.create(
            model=MODEL, input=ONE_SHOT, tools=[WEATHER], temperature=0, max_output_tokens=64
        )
    )
    call = next(item for item in first.output if item.type == "function_call")
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    history = [
        *ONE_SHOT,
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id,
         "output": json.dumps({"temp_c": 21, "sky": "sunny"})},
    ]  # fmt: skip
    second = await in_thread(
        lambda: client.responses.create(
            model=MODEL, input=history, tools=[WEATHER], temperature=0, max_output_tokens=64
        )
    )
    assert second.output  # the model answered the tool result


async def test_image_refusal_is_relayed(client: openai.OpenAI) -> None:
    """SmolLM2 is text-only: llama-server refuses the image, and louter relays its refusal
    (status and message) in the OpenAI envelope rather than dropping the image."""
    content = [
        {"type": "input_text", "text": "What is in this image?"},
        {"type": "input_image", "image_url": "data:image/png;base64," + PNG_B64},
    ]
    with pytest.raises(openai.APIStatusError) as caught:
        await in_thread(
            lambda: client.responses.create(
                model=MODEL, input=[{"role": "user", "content": content}], max_output_tokens=16
            )
        )
    assert caught.value.status_code in (400, 500)
    assert "image" in caught.value.message.lower()
