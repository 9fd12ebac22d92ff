"""The fifth dialect through real HTTP: the legacy Completions door (`POST /v1/completions`)
with the official openai SDK (`client.completions.create`, whole and streamed), against the
mock (which speaks Completions), against a backend of every protocol (louter B in front of
louter A's door of that dialect on the mock), and a `completions` backend behind every
other door (louter B, protocol "completions", in front of louter A's Completions door on the
mock; a fake upstream shows the exact transcript sent)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
import trio
from google.genai import types

from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, SSEReply
from tests.sdk import Clients, in_thread

PROTOCOLS = ["mock", "openai", "gemini", "anthropic", "responses", "completions"]
MOCK_HELLO = 'Mock answer to: "Say hello please" (images: 0)'


async def louter_for(start_louter: StartLouter, protocol: str) -> str:
    """A louter whose backend speaks `protocol`: the mock, or louter A (on the mock)."""
    if protocol == "mock":
        return await start_louter()
    upstream = await start_louter()
    config = f'[backends.upstream]\nprotocol = "{protocol}"\nurl = "{upstream}"\n'
    return await start_louter(config, backend="upstream")


# --------------------------------------------------------------------------- the door


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_completions_client_whole(
    sdk: Clients, start_louter: StartLouter, protocol: str
) -> None:
    client = sdk.openai(await louter_for(start_louter, protocol))
    reply = await in_thread(
        lambda: client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="Say hello please", max_tokens=50
        )
    )
    assert reply.object == "text_completion"
    assert reply.model == "gpt-3.5-turbo-instruct"
    [choice] = reply.choices
    assert (choice.text, choice.index, choice.finish_reason) == (MOCK_HELLO, 0, "stop")
    assert reply.usage is not None and reply.usage.prompt_tokens == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_completions_client_streamed(
    sdk: Clients, start_louter: StartLouter, protocol: str
) -> None:
    client = sdk.openai(await louter_for(start_louter, protocol))

    def run() -> list[Any]:
        stream = client.completions.create(
            model="m", prompt=["Say hello please"], stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        return list(stream)

    chunks = await in_thread(run)
    assert {chunk.object for chunk in chunks} == {"text_completion"}
    assert "".join(c.choices[0].text for c in chunks if c.choices) == MOCK_HELLO
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) <= {None}
    assert len(chunks) > 3  # streamed in pieces, not one blob
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 3


@pytest.mark.parametrize("protocol", ["openai", "gemini", "anthropic", "responses"])
@pytest.mark.parametrize(
    ("setting", "field"),
    [({"echo": True}, "echo"), ({"suffix": "!"}, "suffix"), ({"logprobs": 1}, "logprobs"),
     ({"n": 2}, "n"), ({"prompt": ["a", "b"]}, "prompt"), ({"prompt": [1, 2]}, "prompt")],
)  # fmt: skip
async def test_what_a_converted_request_cannot_carry_is_a_400(
    sdk: Clients, start_louter: StartLouter, protocol: str, setting: Any, field: str
) -> None:
    client = sdk.openai(await louter_for(start_louter, protocol))
    request: Any = {"model": "m", "prompt": "x", **setting}
    with pytest.raises(openai.BadRequestError) as caught:
        await in_thread(lambda: client.completions.create(**request))
    assert caught.value.status_code == 400
    assert caught.value.body is not None
    assert str(caught.value.body["message"]).startswith(f"{field}: ")  # type: ignore[index]


async def test_a_completions_backend_gets_the_clients_body_as_sent(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    """Same dialect: echo, suffix, logprobs... reach the backend untouched, the answer
    passes through byte for byte, the backend's key replaces the client's."""
    upstream = FakeUpstream()
    await nursery.start(upstream.serve)
    answer = {"id": "cmpl-9", "object": "text_completion", "created": 1, "model": "base",
              "choices": [{"text": "Once upon", "index": 0, "logprobs": {"tokens": ["x"]},
                           "finish_reason": "length"}],
              "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}}  # fmt: skip
    upstream.script(JSONReply(answer))
    config = (
        f'[backends.base]\nprotocol = "completions"\nurl = "{upstream.url}"\n'
        'api_key = "backend-key"\n[backends.base.model_mapping]\n"client-model" = "base-7b"\n'
    )
    client = sdk.openai(await start_louter(config, backend="base"))
    reply = await in_thread(
        lambda: client.completions.create(
            model="client-model", prompt="Tell a story", echo=True, suffix="The end.",
            logprobs=1, max_tokens=2,
        )
    )  # fmt: skip
    assert reply.choices[0].text == "Once upon"
    assert reply.choices[0].logprobs is not None  # the backend's, passed through
    sent = upstream.requests[0]
    assert sent.path == "/v1/completions"
    assert sent.headers["authorization"] == "Bearer backend-key"
    assert sent.json == {
        "model": "base-7b", "prompt": "Tell a story", "echo": True, "suffix": "The end.",
        "logprobs": 1, "max_tokens": 2,
    }  # fmt: skip


# --------------------------------------------------------------------------- the backend


async def completions_backend(start_louter: StartLouter) -> str:
    """Louter B with one `completions` backend: louter A's Completions door on the mock."""
    upstream = await start_louter()
    config = f'[backends.text]\nprotocol = "completions"\nurl = "{upstream}"\n'
    return await start_louter(config, backend="text")


async def test_openai_chat_behind_a_completions_backend(
    sdk: Clients, start_louter: StartLouter
) -> None:
    """The conversation goes as one transcript and louter A's door reads it back: the
    mock answers the last user turn, as it does for every dialect."""
    client = sdk.openai(await completions_backend(start_louter))
    messages: Any = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "hello there"},
    ]
    reply = await in_thread(lambda: client.chat.completions.create(model="m", messages=messages))
    assert reply.choices[0].message.content == 'Mock answer to: "hello there" (images: 0)'
    assert reply.choices[0].finish_reason == "stop"

    def streamed() -> str:
        stream = client.chat.completions.create(model="m", messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert await in_thread(streamed) == 'Mock answer to: "hello there" (images: 0)'


async def test_anthropic_behind_a_completions_backend(
    sdk: Clients, start_louter: StartLouter
) -> None:
    client = sdk.anthropic(await completions_backend(start_louter))
    reply = await in_thread(
        lambda: client.messages.create(
            model="claude-x", max_tokens=64, system="be brief",
            messages=[{"role": "user", "content": "hello there"}],
        )
    )  # fmt: skip
    assert reply.content[0].type == "text"
    assert reply.content[0].text == 'Mock answer to: "hello there" (images: 0)'
    assert reply.stop_reason == "end_turn"

    def streamed() -> str:
        with client.messages.stream(
            model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi you"}]
        ) as stream:
            return "".join(stream.text_stream)

    assert await in_thread(streamed) == 'Mock answer to: "hi you" (images: 0)'


async def test_gemini_and_responses_behind_a_completions_backend(
    sdk: Clients, start_louter: StartLouter
) -> None:
    base = await completions_backend(start_louter)
    gemini = sdk.gemini(base)
    config = types.GenerateContentConfig(system_instruction="be brief")
    reply = await in_thread(
        lambda: gemini.models.generate_content(
            model="gemini-x", contents="hello there", config=config
        )
    )
    assert reply.text == 'Mock answer to: "hello there" (images: 0)'
    responses = sdk.openai(base)
    answer = await in_thread(lambda: responses.responses.create(model="m", input="hello there"))
    assert answer.output_text == 'Mock answer to: "hello there" (images: 0)'


async def test_tools_for_a_completions_backend_are_a_400(
    sdk: Clients, start_louter: StartLouter
) -> None:
    client = sdk.anthropic(await completions_backend(start_louter))
    tool: Any = {"name": "ls", "description": "list", "input_schema": {"type": "object"}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        await in_thread(
            lambda: client.messages.create(
                model="m", max_tokens=9, tools=[tool],
                messages=[{"role": "user", "content": "x"}],
            )
        )  # fmt: skip
    assert "a completions backend takes no tools (the request offers ls)" in str(caught.value)


async def test_the_transcript_a_completions_backend_is_sent(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    upstream = FakeUpstream()
    await nursery.start(upstream.serve)
    chunks = [
        b'data: {"id":"c","object":"text_completion","choices":[{"text":" Par","index":0,'
        b'"finish_reason":null}]}\n\n',
        b'data: {"id":"c","object":"text_completion","choices":[{"text":"is.","index":0,'
        b'"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\n',
        b"data: [DONE]\n\n",
    ]
    upstream.script(SSEReply(chunks))
    config = f'[backends.text]\nprotocol = "completions"\nurl = "{upstream.url}"\napi_key = "k-1"\n'
    client = sdk.openai(await start_louter(config, backend="text"))
    messages: Any = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Capital of France?"},
    ]

    def run() -> list[Any]:
        return list(
            client.chat.completions.create(
                model="m", messages=messages, stream=True, max_tokens=20, stop=["###"],
                stream_options={"include_usage": True},
            )
        )  # fmt: skip

    chunks_seen = await in_thread(run)
    assert "".join(c.choices[0].delta.content or "" for c in chunks_seen if c.choices) == (
        " Paris."
    )
    assert chunks_seen[-1].usage is not None and chunks_seen[-1].usage.prompt_tokens == 9
    sent = upstream.requests[0]
    assert (sent.path, sent.headers["authorization"]) == ("/v1/completions", "Bearer k-1")
    assert sent.json == {
        "model": "m",
        "prompt": "System: You are terse.\n\nUser: Capital of France?\n\nAssistant:",
        "max_tokens": 20,
        "stop": ["\nUser:", "###"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
