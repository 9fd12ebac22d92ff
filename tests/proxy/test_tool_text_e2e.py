"""Tool calls written as text, end to end through every front door with its official SDK.

- `tool_format = "xml"`: the mock backend writes its tool call as Qwen XML text (its rule,
  see the README); louter must deliver a real tool call in the client's dialect,
  streaming and not, indistinguishable from a backend with structured calls.
- `tool_call_repair`: an OpenAI-compatible fake backend answers with a JSON tool call
  written as text; louter turns it into a real call, and leaves ordinary JSON alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from google.genai import types

from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, SSEReply, chat_completion, chat_stream
from tests.sdk import Clients, in_thread

XML_MOCK = '[backends.mock]\ntool_format = "xml"\n'
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
OPENAI_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
ARGS = {"city": "mock-city", "days": 1}  # the mock's generated arguments, typed by schema


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def backend_texts(log: Path) -> list[str]:
    entries = [json.loads(line) for line in log.read_text().splitlines() if line]
    out = []
    for entry in entries:
        if entry["direction"] == "backend_response":
            payload = entry["payload"]
            choices = payload.get("choices") if isinstance(payload, dict) else None
            out.append(choices[0]["message"]["content"] if choices else json.dumps(payload))
    return out


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_door(
    sdk: Clients, start_louter: StartLouter, tmp_path: Path, stream: bool
) -> None:
    log = tmp_path / "l.jsonl"
    client = sdk.openai(await start_louter(XML_MOCK, backend="mock", log_file=log))

    def run() -> Any:
        if not stream:
            return client.chat.completions.create(
                model="m", messages=ask("weather?"), tools=[OPENAI_TOOL]
            )
        with client.chat.completions.stream(
            model="m", messages=ask("weather?"), tools=[OPENAI_TOOL]
        ) as events:
            return events.get_final_completion()

    reply = await in_thread(run)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.content
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == ARGS
    assert call.id.startswith("call_")
    if not stream:
        assert "<tool_call>" in backend_texts(log)[0]  # the backend really wrote XML


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_door(sdk: Clients, start_louter: StartLouter, stream: bool) -> None:
    client = sdk.gemini(await start_louter(XML_MOCK, backend="mock"))
    declaration = types.FunctionDeclaration(name="get_weather", parameters_json_schema=SCHEMA)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )

    def run() -> list[Any]:
        if not stream:
            return [client.models.generate_content(model="m", contents="weather?", config=config)]
        return list(
            client.models.generate_content_stream(model="m", contents="weather?", config=config)
        )

    chunks = await in_thread(run)
    calls = [call for chunk in chunks for call in (chunk.function_calls or [])]
    assert [(c.name, c.args) for c in calls] == [("get_weather", ARGS)]
    texts = "".join(part.text or "" for c in chunks for part in c.candidates[0].content.parts)
    assert "<tool_call>" not in texts
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_door(sdk: Clients, start_louter: StartLouter, stream: bool) -> None:
    client = sdk.anthropic(await start_louter(XML_MOCK, backend="mock"))
    tool = {"name": "get_weather", "input_schema": SCHEMA}

    def run() -> Any:
        if not stream:
            return client.messages.create(
                model="m", max_tokens=64, messages=ask("weather?"), tools=[tool]
            )
        with client.messages.stream(
            model="m", max_tokens=64, messages=ask("weather?"), tools=[tool]
        ) as events:
            return events.get_final_message()

    reply = await in_thread(run)
    assert reply.stop_reason == "tool_use"
    uses = [block for block in reply.content if block.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("get_weather", ARGS)]
    assert all("<tool_call>" not in (b.text or "") for b in reply.content if b.type == "text")


async def test_xml_without_tools_is_left_alone(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.openai(await start_louter(XML_MOCK, backend="mock"))
    reply = await in_thread(lambda: client.chat.completions.create(model="m", messages=ask("hi")))
    assert reply.choices[0].message.content == 'Mock answer to: "hi" (images: 0)'


# --------------------------------------------------------------------------- JSON repair


async def repair_louter(
    start_louter: StartLouter, nursery: trio.Nursery, *replies: Any, repair: bool = True
) -> tuple[str, FakeUpstream]:
    upstream = FakeUpstream()
    port = await nursery.start(upstream.serve)
    upstream.script(*replies)
    config = (
        f'[backends.llm]\nurl = "http://127.0.0.1:{port}"\n'
        f"tool_call_repair = {'true' if repair else 'false'}\n"
    )
    return await start_louter(config, backend="llm"), upstream


TEXT_CALL = '{"name": "get_weather", "arguments": {"city": "Rome", "days": 2}}'


async def test_json_repair_whole(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    base, _ = await repair_louter(start_louter, nursery, JSONReply(chat_completion(TEXT_CALL)))
    client = sdk.openai(base)
    reply = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=ask("w"), tools=[OPENAI_TOOL])
    )
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"city": "Rome", "days": 2}


async def test_json_repair_streamed_in_a_fence(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    text = f"Calling it now.\n```json\n{TEXT_CALL}\n```\n"
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    base, _ = await repair_louter(start_louter, nursery, SSEReply([chat_stream(pieces)]))
    client = sdk.openai(base)

    def run() -> Any:
        with client.chat.completions.stream(
            model="m", messages=ask("w"), tools=[OPENAI_TOOL]
        ) as events:
            return events.get_final_completion()

    reply = await in_thread(run)
    message = reply.choices[0].message
    assert message.content.strip() == "Calling it now."
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Rome", "days": 2}
    assert reply.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    "content",
    [
        'The config is {"name": "get_weather", "arguments": {"city": "Rome"}} as you see.',
        '{"name": "delete_everything", "arguments": {}}',
        '{"city": "Rome", "days": 2}',
    ],
)
async def test_json_repair_leaves_ordinary_json_alone(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery, content: str
) -> None:
    base, _ = await repair_louter(start_louter, nursery, JSONReply(chat_completion(content)))
    client = sdk.openai(base)
    reply = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=ask("w"), tools=[OPENAI_TOOL])
    )
    assert reply.choices[0].message.content == content
    assert not reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "stop"


async def test_json_repair_off_passes_through(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    body = chat_completion(TEXT_CALL)
    base, _ = await repair_louter(start_louter, nursery, JSONReply(body), repair=False)
    client = sdk.openai(base)
    reply = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=ask("w"), tools=[OPENAI_TOOL])
    )
    assert reply.choices[0].message.content == TEXT_CALL
    assert reply.id == body["id"]  # byte-for-byte passthrough: the backend's own id


STRUCTURED = {
    "id": "chatcmpl-structured",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
}


@pytest.mark.parametrize(
    "body",
    [chat_completion("It is sunny in Rome, no call needed."), STRUCTURED],
    ids=["prose", "structured-call"],
)
async def test_json_repair_passes_answers_without_call_text_through(
    start_louter: StartLouter, nursery: trio.Nursery, body: dict
) -> None:
    """With repair on, a whole answer whose text cannot hold a call is relayed byte for
    byte (nothing to repair, so it is not rewritten)."""
    base, _ = await repair_louter(start_louter, nursery, JSONReply(body))
    async with httpx.AsyncClient() as http:
        response = await http.post(
            base + "/v1/chat/completions",
            json={"model": "m", "messages": ask("w"), "tools": [OPENAI_TOOL]},
        )
    assert response.status_code == 200
    assert response.content == orjson.dumps(body)
