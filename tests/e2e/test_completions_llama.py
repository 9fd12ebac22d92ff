"""End to end with the real llama-server (`../shared/llama-server/`, SmolLM2-135M) and the
official openai SDK: a Completions client through louter to the server's own
`/v1/completions` (same dialect: passthrough) and to its `/v1/chat/completions`
(converted); a Chat Completions client through louter to `/v1/completions` (the
conversation rendered as one transcript prompt)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import StartLouter
from tests.llama import LLAMA_MODEL
from tests.sdk import in_thread

pytestmark = pytest.mark.llama

TIMEOUT_S = 180
QUESTION = "What is the capital of France? Answer in one sentence."


@pytest.fixture
async def client(start_louter: StartLouter, llama_url: str) -> Iterator[openai.OpenAI]:
    """Model "text" is llama-server's /v1/completions, model "chat" its /v1/chat/completions."""
    config = f"""
[performance]
timeout_seconds = {TIMEOUT_S}

[backends.text]
url = "{llama_url}"
protocol = "completions"
[backends.text.model_mapping]
"text" = "{LLAMA_MODEL}"

[backends.chat]
url = "{llama_url}"
protocol = "openai"
[backends.chat.model_mapping]
"chat" = "{LLAMA_MODEL}"
"""
    base = await start_louter(config, backend="text")
    with openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0, timeout=TIMEOUT_S) as c:
        yield c


async def test_completions_client_to_the_servers_completions(client: openai.OpenAI) -> None:
    reply = await in_thread(
        lambda: client.completions.create(
            model="text", prompt="The capital of France is", max_tokens=8, temperature=0
        )
    )
    # the server's own answer (tests/fixtures/completions/responses/llama-length.json)
    assert reply.choices[0].text == " Paris.\n\nThe United States has"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 8


@pytest.mark.parametrize("model", ["text", "chat"])
async def test_completions_client_streamed(client: openai.OpenAI, model: str) -> None:
    def run() -> list[Any]:
        stream = client.completions.create(
            model=model, prompt=f"User: {QUESTION}\n\nAssistant:", max_tokens=24,
            temperature=0, stop=["\nUser:"], stream=True, stream_options={"include_usage": True},
        )  # fmt: skip
        return list(stream)

    chunks = await in_thread(run)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert "Paris" in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0


async def test_chat_client_to_the_servers_completions(client: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    reply = await in_thread(
        lambda: client.chat.completions.create(
            model="text", messages=messages, max_tokens=24, temperature=0
        )
    )
    # recorded: tests/fixtures/completions/responses/llama-transcript-stop.json (" Two.";
    # a llama-server built from source for this CPU ends it with a line break first)
    whole = reply.choices[0].message.content or ""
    assert whole.strip() == "Two."
    assert reply.choices[0].finish_reason == "stop"

    def streamed() -> str:
        stream = client.chat.completions.create(
            model="text", messages=messages, max_tokens=24, temperature=0, stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert await in_thread(streamed) == whole  # the stream says the same
