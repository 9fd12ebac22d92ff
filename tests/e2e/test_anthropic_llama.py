"""End to end: the official anthropic SDK -> louter (Messages door) -> a real llama-server
speaking OpenAI Chat Completions (`../shared/llama-server/`, SmolLM2-135M).

The tool round trip uses the server's reproducible recipe (one tool, a one-shot example
exchange, temperature 0), written in Anthropic's own shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.conftest import StartLouter
from tests.llama import LLAMA_MODEL
from tests.sdk import PNG_B64, in_thread

pytestmark = pytest.mark.llama

MODEL = "smol"
TIMEOUT_S = 180
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}
ONE_SHOT: list[dict[str, Any]] = [
    {"role": "user", "content": "What is the weather in London?"},
    {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "London"}}
    ]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp_c":15,"sky":"cloudy"}'}
    ]},
    {"role": "assistant", "content": "It is 15 C and cloudy."},
    {"role": "user", "content": "What is the weather in Paris?"},
]  # fmt: skip


@pytest.fixture
async def client(
    start_louter: StartLouter, llama_url: str, tmp_path: Path
) -> Iterator[anthropic.Anthropic]:
    config = f"""
[performance]
timeout_seconds = {TIMEOUT_S}
openai_token_counting_mode = "backend"

[backends.llama]
url = "{llama_url}"

[backends.llama.model_mapping]
"{MODEL}" = "{LLAMA_MODEL}"
"""
    base = await start_louter(config, log_file=tmp_path / "louter.jsonl")
    with anthropic.Anthropic(base_url=base, api_key="k", max_retries=0, timeout=TIMEOUT_S) as made:
        yield made


async def test_text_and_stream_agree(client: anthropic.Anthropic) -> None:
    whole = await in_thread(
        lambda: client.messages.create(
            model=MODEL, max_tokens=48, extra_body={"temperature": 0}, messages=QUESTION
        )
    )
    assert "Paris" in whole.content[0].text
    assert whole.stop_reason in ("end_turn", "max_tokens")
    assert whole.usage.input_tokens > 0

    def run() -> Any:
        with client.messages.stream(
            model=MODEL, max_tokens=48, extra_body={"temperature": 0}, messages=QUESTION
        ) as stream:
            return stream.get_final_message()

    streamed = await in_thread(run)
    assert streamed.content[0].text == whole.content[0].text
    assert streamed.stop_reason == whole.stop_reason


async def test_tool_round_trip(client: anthropic.Anthropic) -> None:
    first = await in_thread(
        lambda: client.messages.create(
            model=MODEL,
            max_tokens=64,
            extra_body={"temperature": 0},
            messages=ONE_SHOT,
            tools=[WEATHER],
        )
    )
    use = next(block for block in first.content if block.type == "tool_use")
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})
    assert first.stop_reason == "tool_use"
    result = {"type": "tool_result", "tool_use_id": use.id,
              "content": json.dumps({"temp_c": 21, "sky": "sunny"})}  # fmt: skip
    history = [
        *ONE_SHOT,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [result]},
    ]
    second = await in_thread(
        lambda: client.messages.create(
            model=MODEL,
            max_tokens=64,
            extra_body={"temperature": 0},
            messages=history,
            tools=[WEATHER],
        )
    )
    assert second.content  # the model answered the tool result


async def test_count_tokens_matches_the_backends_count(client: anthropic.Anthropic) -> None:
    counted = await in_thread(lambda: client.messages.count_tokens(model=MODEL, messages=QUESTION))
    answer = await in_thread(
        lambda: client.messages.create(model=MODEL, max_tokens=4, messages=QUESTION)
    )
    assert counted.input_tokens == answer.usage.input_tokens


async def test_image_refusal_is_relayed(client: anthropic.Anthropic) -> None:
    """SmolLM2 is text-only: llama-server refuses the image and louter relays its refusal
    (status and message) in Anthropic's envelope rather than dropping the image."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG_B64}}  # fmt: skip
    content = [image, {"type": "text", "text": "What is in this image?"}]
    with pytest.raises(anthropic.APIStatusError) as caught:
        await in_thread(
            lambda: client.messages.create(
                model=MODEL, max_tokens=16, messages=[{"role": "user", "content": content}]
            )
        )
    assert caught.value.status_code in (400, 500)
    assert "image" in caught.value.message.lower()
