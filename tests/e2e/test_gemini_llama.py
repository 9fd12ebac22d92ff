"""End to end: the official google-genai SDK -> louter (Gemini door) -> a real llama-server
speaking OpenAI Chat Completions (`../shared/llama-server/`, SmolLM2-135M).

The tool round trip uses the server's reproducible recipe (one tool, a one-shot example
exchange, temperature 0), written in Gemini's own shapes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.conftest import StartLouter
from tests.llama import LLAMA_MODEL

pytestmark = pytest.mark.llama

T = TypeVar("T")
MODEL = "smol"
TIMEOUT_S = 180
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Get the current weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)
QUESTION = "What is the capital of France? Answer in one sentence."


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part.from_text(text=text)])


ONE_SHOT = [
    user("What is the weather in London?"),
    types.Content(
        role="model",
        parts=[types.Part.from_function_call(name="get_weather", args={"city": "London"})],
    ),
    types.Content(
        role="user",
        parts=[
            types.Part.from_function_response(
                name="get_weather", response={"output": '{"temp_c":15,"sky":"cloudy"}'}
            )
        ],
    ),
    types.Content(role="model", parts=[types.Part.from_text(text="It is 15 C and cloudy.")]),
    user("What is the weather in Paris?"),
]


async def in_thread(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn)


@pytest.fixture
async def base(start_louter: StartLouter, llama_url: str, tmp_path: Path) -> str:
    config = f"""
[performance]
timeout_seconds = {TIMEOUT_S}
openai_token_counting_mode = "backend"

[backends.llama]
url = "{llama_url}"
protocol = "openai"

[backends.llama.model_mapping]
"{MODEL}" = "{LLAMA_MODEL}"
"""
    return await start_louter(config, log_file=tmp_path / "louter.jsonl")


@pytest.fixture
def client(base: str) -> Iterator[genai.Client]:
    options = types.HttpOptions(base_url=base, api_version="v1beta", timeout=TIMEOUT_S * 1000)
    with genai.Client(api_key="test-key", http_options=options) as made:
        yield made


def config(**kwargs: Any) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(temperature=0, max_output_tokens=48, **kwargs)


async def test_text_and_stream_agree(client: genai.Client) -> None:
    whole = await in_thread(
        lambda: client.models.generate_content(model=MODEL, contents=QUESTION, config=config())
    )
    assert whole.text and "Paris" in whole.text
    assert whole.candidates[0].finish_reason in (
        types.FinishReason.STOP,
        types.FinishReason.MAX_TOKENS,
    )
    assert whole.usage_metadata.prompt_token_count > 0
    chunks = await in_thread(
        lambda: list(
            client.models.generate_content_stream(model=MODEL, contents=QUESTION, config=config())
        )
    )
    assert len(chunks) > 1
    assert "".join(c.text or "" for c in chunks) == whole.text
    assert chunks[-1].candidates[0].finish_reason == whole.candidates[0].finish_reason


async def test_function_call_round_trip(client: genai.Client) -> None:
    tools = config(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    first = await in_thread(
        lambda: client.models.generate_content(model=MODEL, contents=ONE_SHOT, config=tools)
    )
    assert first.function_calls, first.text
    call = first.function_calls[0]
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    result = types.Part.from_function_response(
        name=call.name, response={"output": json.dumps({"temp_c": 21, "sky": "sunny"})}
    )
    history = [*ONE_SHOT, first.candidates[0].content, types.Content(role="user", parts=[result])]
    second = await in_thread(
        lambda: client.models.generate_content(model=MODEL, contents=history, config=tools)
    )
    assert second.text or second.function_calls  # the model answered the tool result


async def test_count_tokens_matches_the_backends_count(client: genai.Client) -> None:
    counted = await in_thread(lambda: client.models.count_tokens(model=MODEL, contents=QUESTION))
    answer = await in_thread(
        lambda: client.models.generate_content(model=MODEL, contents=QUESTION, config=config())
    )
    assert counted.total_tokens == answer.usage_metadata.prompt_token_count


async def test_image_reaches_the_backend(client: genai.Client) -> None:
    """SmolLM2 is text-only: llama-server refuses the image, and louter relays its refusal
    (status and message) in Gemini's envelope rather than dropping the image."""
    image = types.Part.from_bytes(data=PNG, mime_type="image/png")
    with pytest.raises(genai_errors.APIError) as caught:
        await in_thread(
            lambda: client.models.generate_content(
                model=MODEL, contents=[image, "What is in this image?"], config=config()
            )
        )
    assert caught.value.code in (400, 500)
    assert "image" in str(caught.value.message).lower()
