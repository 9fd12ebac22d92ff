"""In-chat commands at the legacy Completions door (issue 19), through the openai SDK's
`client.completions` (whole and streamed): a command-only prompt is answered locally; the
newest turn of a transcript prompt is read, older turns are not; a Completions backend
gets the prompt as written minus the commands, with the session's settings (not turned
into a transcript). Fakes on loopback: "raw" (a Completions backend, the default) and
"second" (OpenAI Chat Completions)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import trio

from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, Recorded, SSEReply, sse_events
from tests.proxy.test_sessions import answering
from tests.sdk import Clients, in_thread


def completion(text: str) -> dict[str, Any]:
    choice = {"text": text, "index": 0, "finish_reason": "stop", "logprobs": None}
    usage = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
            "choices": [choice], "usage": usage}  # fmt: skip


def raw_reply(request: Recorded) -> Any:
    if request.json.get("stream"):
        chunk = completion("from raw")
        return SSEReply([sse_events({**chunk, "usage": None}, {**chunk, "choices": []})])
    return JSONReply(completion("from raw"))


class Setup:
    def __init__(self, base: str, raw: FakeUpstream, second: FakeUpstream, sdk: Clients):
        self.raw, self.second = raw, second
        self.client = sdk._keep(
            openai.OpenAI(base_url=base + "/v1", api_key="sk", max_retries=0,
                          default_headers={"x-session-id": "cmpl-1"})
        )  # fmt: skip

    async def say(self, prompt: str, stream: bool = False) -> str:
        def send() -> str:
            if not stream:
                reply = self.client.completions.create(model="text-model", prompt=prompt)
                assert reply.usage is not None
                self.usage = (reply.usage.prompt_tokens, reply.usage.completion_tokens)
                return reply.choices[0].text
            pieces = self.client.completions.create(model="text-model", prompt=prompt, stream=True)
            return "".join(c.text for chunk in pieces for c in chunk.choices)

        return await in_thread(send)


@pytest.fixture
async def setup(nursery: trio.Nursery, start_louter: StartLouter, sdk: Clients) -> Setup:
    raw, second = FakeUpstream(raw_reply), FakeUpstream(answering("second"))
    await nursery.start(raw.serve)
    await nursery.start(second.serve)
    config = (
        f'[backends.raw]\nurl = "{raw.url}"\nprotocol = "completions"\n'
        f'[backends.second]\nurl = "{second.url}"\nprotocol = "openai"\n'
        f'[backends.second.model_mapping]\n"second-only" = "second-real"\n'
    )
    return Setup(await start_louter(config), raw, second, sdk)


def posts(fake: FakeUpstream) -> list[dict[str, Any]]:
    return [r.json for r in fake.requests if r.method == "POST"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_command_only_prompt_is_answered_locally(setup: Setup, stream: bool) -> None:
    text = await setup.say("!/hello", stream)
    assert text.startswith("Welcome to louter. Session: cmpl-1\n"), text
    assert "Backends: raw, second" in text
    if not stream:
        assert setup.usage == (0, 0)
    assert (await setup.say("!/backend(second)", stream)) == "backend set to second"
    assert posts(setup.raw) == [] and posts(setup.second) == []
    assert (await setup.say("hi", stream)).startswith("from second")
    (sent,) = posts(setup.second)
    assert sent["messages"] == [{"role": "user", "content": "hi"}]


async def test_a_completions_backend_gets_the_prompt_as_written(setup: Setup) -> None:
    prompt = "!/set(temperature=0.3, max_tokens=40) Once upon a time"
    assert await setup.say(prompt) == "from raw"
    (sent,) = posts(setup.raw)
    assert sent["prompt"] == "Once upon a time"  # the commands gone, not a transcript
    assert (sent["temperature"], sent["max_tokens"]) == (0.3, 40)
    assert await setup.say("There was a king", stream=True) == "from raw"
    later = posts(setup.raw)[-1]
    assert later["prompt"] == "There was a king" and later["temperature"] == 0.3
    assert "stop" not in later  # the client's body, not louter's transcript rendering


async def test_a_transcript_prompt_reads_its_newest_turn(setup: Setup) -> None:
    old = "User: !/backend(second)\n\nAssistant: backend set to second\n\n"
    assert await setup.say(old + "User: what now?\n\nAssistant:") == "from raw"
    assert posts(setup.raw)[-1]["prompt"].endswith("User: what now?\n\nAssistant:")
    assert posts(setup.second) == []  # the old turn's command did not run again
    text = await setup.say("User: !/model(second:big) write a haiku\n\nAssistant:")
    assert text.startswith("from second")
    (sent,) = posts(setup.second)
    assert sent["model"] == "big"
    assert sent["messages"] == [{"role": "user", "content": "write a haiku"}]
