"""`presence_penalty` / `frequency_penalty` across dialects, over loopback HTTP with the
official SDKs: sent where the backend's dialect has them (OpenAI, Gemini
`generationConfig.presencePenalty` / `frequencyPenalty`), dropped with a note in the log
where it has none (Anthropic, Responses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from google.genai import types

from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, chat_completion
from tests.sdk import Clients, in_thread

ASK: Any = [{"role": "user", "content": "hello"}]
GEMINI_ANSWER = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
}


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def fake_backend(
    nursery: trio.Nursery, start_louter: StartLouter, protocol: str, reply: Any
) -> tuple[FakeUpstream, str]:
    upstream = FakeUpstream(JSONReply(reply))
    port = await nursery.start(upstream.serve)
    url = f"http://127.0.0.1:{port}" + ("/v1beta" if protocol == "gemini" else "")
    config = f'[backends.up]\nprotocol = "{protocol}"\nurl = "{url}"\n'
    return upstream, await start_louter(config, backend="up")


async def test_openai_client_penalties_reach_a_gemini_backend(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    upstream, base = await fake_backend(nursery, start_louter, "gemini", GEMINI_ANSWER)
    client = sdk.openai(base)
    reply = await in_thread(
        lambda: client.chat.completions.create(
            model="m", messages=ASK, presence_penalty=0.5, frequency_penalty=-0.25
        )
    )
    assert reply.choices[0].message.content == "hi"
    config = upstream.requests[0].json["generationConfig"]
    assert (config["presencePenalty"], config["frequencyPenalty"]) == (0.5, -0.25)


async def test_gemini_client_penalties_reach_an_openai_backend(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    upstream, base = await fake_backend(nursery, start_louter, "openai", chat_completion("hi"))
    client = sdk.gemini(base)
    config = types.GenerateContentConfig(presence_penalty=0.5, frequency_penalty=1.0)
    reply = await in_thread(
        lambda: client.models.generate_content(
            model="gemini-2.5-flash", contents="hello", config=config
        )
    )
    assert reply.text == "hi"
    sent = upstream.requests[0].json
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, 1.0)


@pytest.mark.parametrize("protocol", ["anthropic", "responses"])
async def test_penalties_are_dropped_with_a_log_note(
    sdk: Clients, start_louter: StartLouter, tmp_path: Path, protocol: str
) -> None:
    """louter B -> louter A (mock) in a dialect without penalties: the request goes out
    without them and the log says so, next to the backend request."""
    upstream = await start_louter()
    log = tmp_path / "b.jsonl"
    config = f'[backends.up]\nprotocol = "{protocol}"\nurl = "{upstream}"\n'
    client = sdk.openai(await start_louter(config, backend="up", log_file=log))
    reply = await in_thread(
        lambda: client.chat.completions.create(
            model="m", messages=ASK, presence_penalty=0.5, frequency_penalty=0.5
        )
    )
    assert reply.choices[0].message.content == 'Mock answer to: "hello" (images: 0)'
    await in_thread(lambda: client.chat.completions.create(model="m", messages=ASK))
    entries = read_log(log)
    first = [e for e in entries if e["request_id"] == entries[0]["request_id"]]
    assert [e["direction"] for e in first] == [
        "client_request",
        "backend_request",
        "error",
        "backend_response",
        "client_response",
    ]
    sent, note = first[1], first[2]
    assert "enalty" not in json.dumps(sent["payload"])
    assert note["dropped"] == ["presence_penalty", "frequency_penalty"]
    assert note["error"] == (
        f"not sent to the {protocol} backend, which has no equivalent: "
        "presence_penalty, frequency_penalty"
    )
    assert note["backend"] == "up" and note["format"] == "openai"
    assert [e["direction"] for e in entries].count("error") == 1  # none without penalties
