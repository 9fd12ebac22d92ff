"""The Gemini front door through the official google-genai SDK, over real HTTP on loopback.

Three set-ups, all deterministic (the mock backend's rules are in the README):
- same dialect: google-genai -> louter (mock backend, which speaks Gemini);
- Gemini client -> OpenAI backend: louter B whose backend is louter A's OpenAI door;
- OpenAI client -> Gemini backend: the openai SDK -> louter B -> louter A's Gemini door.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import pytest
import trio
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, SSEReply
from tests.sdk import PNG, Clients, in_thread

T = TypeVar("T")
VERSIONS = ["v1", "v1beta"]
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Get the weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
)
NO_AUTO_CALLS = types.AutomaticFunctionCallingConfig(disable=True)


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def tool_config() -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=NO_AUTO_CALLS,
    )


async def two_louters(start_louter: StartLouter, protocol: str, **kwargs: Any) -> str:
    """louter A on the mock; louter B whose only backend is A spoken to in `protocol`."""
    upstream = await start_louter()
    config = f'[backends.upstream]\nprotocol = "{protocol}"\nurl = "{upstream}"\n'
    return await start_louter(config, backend="upstream", **kwargs)


async def tool_round_trip(client: genai.Client) -> tuple[Any, Any]:
    """Ask for the weather, answer the function call, return both responses."""
    question = types.Content(role="user", parts=[types.Part.from_text(text="weather in Paris?")])
    first = await in_thread(
        lambda: client.models.generate_content(
            model="gemini-2.5-flash", contents=[question], config=tool_config()
        )
    )
    call = first.function_calls[0]
    answer = types.Part.from_function_response(name=call.name, response={"output": "15 C"})
    history = [question, first.candidates[0].content, types.Content(role="user", parts=[answer])]
    second = await in_thread(
        lambda: client.models.generate_content(
            model="gemini-2.5-flash", contents=history, config=tool_config()
        )
    )
    return first, second


# --------------------------------------------------------------------------- same dialect


@pytest.mark.parametrize("version", VERSIONS)
async def test_text(sdk: Clients, start_louter: StartLouter, version: str) -> None:
    client = sdk.gemini(await start_louter(), version)
    reply = await in_thread(
        lambda: client.models.generate_content(model="gemini-2.5-flash", contents="hello there")
    )
    assert reply.text == 'Mock answer to: "hello there" (images: 0)'
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.usage_metadata.prompt_token_count == 2


@pytest.mark.parametrize("version", VERSIONS)
async def test_stream(sdk: Clients, start_louter: StartLouter, version: str) -> None:
    client = sdk.gemini(await start_louter(), version)

    def run() -> list[Any]:
        stream = client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="count the chunks please"
        )
        return list(stream)

    chunks = await in_thread(run)
    assert len(chunks) > 1
    assert "".join(c.text or "" for c in chunks) == (
        'Mock answer to: "count the chunks please" (images: 0)'
    )
    assert all(c.candidates for c in chunks)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize("version", VERSIONS)
async def test_function_call_round_trip(
    sdk: Clients, start_louter: StartLouter, version: str
) -> None:
    client = sdk.gemini(await start_louter(), version)
    first, second = await tool_round_trip(client)
    call = first.function_calls[0]
    assert (call.name, call.args) == ("get_weather", {"city": "mock-city", "days": 1})
    assert second.text == 'Mock answer to tool result: "15 C"'


async def test_image(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.gemini(await start_louter())
    image = types.Part.from_bytes(data=PNG, mime_type="image/png")
    reply = await in_thread(
        lambda: client.models.generate_content(
            model="gemini-2.5-flash", contents=[image, "what is this"]
        )
    )
    assert reply.text == 'Mock answer to: "what is this" (images: 1)'


@pytest.mark.parametrize("version", VERSIONS)
async def test_count_tokens(sdk: Clients, start_louter: StartLouter, version: str) -> None:
    client = sdk.gemini(await start_louter(), version)
    counted = await in_thread(
        lambda: client.models.count_tokens(model="gemini-2.5-flash", contents="one two three")
    )
    assert counted.total_tokens == 3  # the mock counts words


async def test_models_list_and_get(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.gemini(await start_louter())
    names = await in_thread(lambda: [m.name for m in client.models.list()])
    assert "models/mock" in names
    model = await in_thread(lambda: client.models.get(model="gemini-2.5-flash"))
    assert model.name == "models/gemini-2.5-flash"


async def test_model_ids_with_colons_route(sdk: Clients, start_louter: StartLouter) -> None:
    config = '[backends.mock.model_mapping]\n"gpt-oss:20b" = "oss"\n'
    base = await start_louter(config, backend="mock")
    async with httpx.AsyncClient() as http:
        response = await http.post(
            base + "/v1beta/models/gpt-oss:20b:generateContent",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            headers={"x-goog-api-key": "k"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["modelVersion"] == "oss"


async def test_stream_without_alt_is_one_json_array(
    sdk: Clients, start_louter: StartLouter
) -> None:
    base = await start_louter()
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with httpx.AsyncClient() as http:
        response = await http.post(
            base + "/v1beta/models/m:streamGenerateContent?key=secret", json=body
        )
    assert response.status_code == 200
    chunks = response.json()
    assert isinstance(chunks, list) and len(chunks) > 1
    text = "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == 'Mock answer to: "hi" (images: 0)'
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_errors_use_gemini_envelope(sdk: Clients, start_louter: StartLouter) -> None:
    base = await start_louter()
    async with httpx.AsyncClient() as http:
        bad = await http.post(base + "/v1beta/models/m:generateContent", content=b"{nope")
        unknown = await http.post(base + "/v1beta/models/m:explode", json={})
        wrong_method = await http.get(base + "/v1beta/models/m:generateContent")
    assert bad.status_code == 400
    assert bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "not valid JSON" in bad.json()["error"]["message"]
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == 404
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == 405


async def test_sdk_raises_client_error_for_bad_request(
    sdk: Clients, start_louter: StartLouter
) -> None:
    client = sdk.gemini(await start_louter())
    bad_contents = [types.Content(role="narrator", parts=[types.Part.from_text(text="x")])]
    with pytest.raises(genai_errors.ClientError) as caught:
        await in_thread(lambda: client.models.generate_content(model="m", contents=bad_contents))
    assert caught.value.code == 400
    assert "unknown role 'narrator'" in str(caught.value.message)


# --------------------------------------------------------------------------- Gemini -> OpenAI


async def test_gemini_client_to_openai_backend(
    sdk: Clients, start_louter: StartLouter, tmp_path: Path
) -> None:
    log = tmp_path / "b.jsonl"
    client = sdk.gemini(await two_louters(start_louter, "openai", log_file=log))
    reply = await in_thread(
        lambda: client.models.generate_content(
            model="gemini-2.5-flash",
            contents="hello there",
            config=types.GenerateContentConfig(system_instruction="be brief", temperature=0.2),
        )
    )
    assert reply.text == 'Mock answer to: "hello there" (images: 0)'
    assert reply.usage_metadata.prompt_token_count == 4  # "be brief" + "hello there"
    entries = read_log(log)
    assert {e["model"] for e in entries} == {"gemini-2.5-flash"}  # from the path, every hop
    formats = {e["direction"]: e["format"] for e in entries}
    assert formats["client_request"] == "gemini"
    assert formats["backend_request"] == "openai"
    sent = next(e for e in entries if e["direction"] == "backend_request")["payload"]
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["temperature"] == 0.2


async def test_gemini_stream_to_openai_backend(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.gemini(await two_louters(start_louter, "openai"))

    def run() -> list[Any]:
        return list(client.models.generate_content_stream(model="m", contents="stream me please"))

    chunks = await in_thread(run)
    text = "".join(c.text or "" for c in chunks)
    assert text == 'Mock answer to: "stream me please" (images: 0)'
    assert all(c.candidates and c.candidates[0].content.parts for c in chunks)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == len(text.split())


async def test_gemini_tools_to_openai_backend(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.gemini(await two_louters(start_louter, "openai"))
    first, second = await tool_round_trip(client)
    assert first.function_calls[0].name == "get_weather"
    assert first.function_calls[0].args == {"city": "mock-city", "days": 1}
    assert first.candidates[0].finish_reason == types.FinishReason.STOP
    assert second.text == 'Mock answer to tool result: "15 C"'


async def test_gemini_streamed_tool_call_is_whole(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.gemini(await two_louters(start_louter, "openai"))

    def run() -> list[Any]:
        return list(
            client.models.generate_content_stream(
                model="m", contents="weather?", config=tool_config()
            )
        )

    chunks = await in_thread(run)
    calls = [call for chunk in chunks for call in (chunk.function_calls or [])]
    assert len(calls) == 1
    assert calls[0].args == {"city": "mock-city", "days": 1}
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


async def test_gemini_image_to_openai_backend(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.gemini(await two_louters(start_louter, "openai"))
    image = types.Part.from_bytes(data=PNG, mime_type="image/png")
    reply = await in_thread(
        lambda: client.models.generate_content(model="m", contents=[image, "see"])
    )
    assert reply.text == 'Mock answer to: "see" (images: 1)'


async def test_count_tokens_is_estimated_for_openai_backend(
    sdk: Clients, start_louter: StartLouter
) -> None:
    client = sdk.gemini(await two_louters(start_louter, "openai"))
    counted = await in_thread(lambda: client.models.count_tokens(model="m", contents="abcdefgh"))
    assert counted.total_tokens == 2 + 3  # 8 characters / 4, plus 3 per message


async def test_count_tokens_backend_mode(sdk: Clients, start_louter: StartLouter) -> None:
    upstream = await start_louter()
    config = (
        '[performance]\nopenai_token_counting_mode = "backend"\n'
        f'[backends.upstream]\nprotocol = "openai"\nurl = "{upstream}"\n'
    )
    client = sdk.gemini(await start_louter(config, backend="upstream"))
    counted = await in_thread(
        lambda: client.models.count_tokens(model="m", contents="one two three four")
    )
    assert counted.total_tokens == 4  # the mock backend's own count


async def test_upstream_error_keeps_status_in_gemini_envelope(
    sdk: Clients, start_louter: StartLouter
) -> None:
    client = sdk.gemini(await two_louters(start_louter, "openai"))
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["nope"]
            )
        ),
        automatic_function_calling=NO_AUTO_CALLS,
    )
    with pytest.raises(genai_errors.ClientError) as caught:
        await in_thread(
            lambda: client.models.generate_content(model="m", contents="hi", config=config)
        )
    assert caught.value.code == 400
    assert "nope" in str(caught.value.message)


# --------------------------------------------------------------------------- OpenAI -> Gemini


OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def test_openai_client_to_gemini_backend(
    sdk: Clients, start_louter: StartLouter, tmp_path: Path
) -> None:
    log = tmp_path / "b.jsonl"
    client = sdk.openai(await two_louters(start_louter, "gemini", log_file=log))
    reply = await in_thread(
        lambda: client.chat.completions.create(
            model="gemini-2.5-flash",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello there"},
            ],
        )
    )
    assert reply.choices[0].message.content == 'Mock answer to: "hello there" (images: 0)'
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens == 4
    sent = next(e for e in read_log(log) if e["direction"] == "backend_request")
    assert sent["format"] == "gemini"
    assert sent["payload"]["systemInstruction"]["parts"][0]["text"] == "be brief"


async def test_openai_stream_to_gemini_backend(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.openai(await two_louters(start_louter, "gemini"))

    def run() -> list[Any]:
        return list(
            client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "stream me"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )

    chunks = await in_thread(run)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == 'Mock answer to: "stream me" (images: 0)'
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 2


async def test_openai_tools_to_gemini_backend(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.openai(await two_louters(start_louter, "gemini"))
    messages: list[Any] = [{"role": "user", "content": "weather in Paris"}]
    first = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=messages, tools=[OPENAI_TOOL])
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "mock-city"},
    )
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = await in_thread(
        lambda: client.chat.completions.create(model="m", messages=messages, tools=[OPENAI_TOOL])
    )
    assert second.choices[0].message.content == 'Mock answer to tool result: "sunny"'


async def test_openai_streamed_tools_from_gemini_backend(
    sdk: Clients, start_louter: StartLouter
) -> None:
    client = sdk.openai(await two_louters(start_louter, "gemini"))

    def run() -> Any:
        with client.chat.completions.stream(
            model="m", messages=[{"role": "user", "content": "weather"}], tools=[OPENAI_TOOL]
        ) as stream:
            return stream.get_final_completion()

    final = await in_thread(run)
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"city": "mock-city"}


async def test_openai_image_to_gemini_backend(sdk: Clients, start_louter: StartLouter) -> None:
    client = sdk.openai(await two_louters(start_louter, "gemini"))
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content = [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": url}}]
    reply = await in_thread(
        lambda: client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": content}]
        )
    )
    assert reply.choices[0].message.content == 'Mock answer to: "see" (images: 1)'


# ------------------------------------------------------------------------ the Gemini backend wire


async def test_gemini_backend_wire(
    sdk: Clients, start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    """What a Gemini-protocol backend receives: its model name in the path, its own key in
    `x-goog-api-key`, `alt=sse` for streams; an upstream error keeps status and message."""
    upstream = FakeUpstream()
    port = await nursery.start(upstream.serve)
    answer = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
    }
    upstream.script(
        JSONReply(answer),
        SSEReply([b"data: " + json.dumps(answer).encode() + b"\r\n\r\n"]),
        JSONReply({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
                  status=429, headers=[("retry-after", "7")]),
    )  # fmt: skip
    config = (
        f'[backends.g]\nprotocol = "gemini"\nurl = "http://127.0.0.1:{port}/v1beta"\n'
        'api_key = "backend-key"\n[backends.g.model_mapping]\n"fast" = "gemini-2.5-flash"\n'
    )
    client = sdk.openai(await start_louter(config, backend="g"))
    messages = [{"role": "user", "content": "hello"}]
    reply = await in_thread(lambda: client.chat.completions.create(model="fast", messages=messages))
    assert reply.choices[0].message.content == "hi"
    assert reply.usage is not None and reply.usage.prompt_tokens == 3
    chunks = await in_thread(
        lambda: list(client.chat.completions.create(model="fast", messages=messages, stream=True))
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hi"
    with pytest.raises(openai.RateLimitError) as caught:
        await in_thread(lambda: client.chat.completions.create(model="fast", messages=messages))
    assert "quota" in str(caught.value)
    assert caught.value.response.headers["retry-after"] == "7"
    first, second, _ = upstream.requests
    assert first.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert second.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert first.headers["x-goog-api-key"] == "backend-key"
    assert "authorization" not in first.headers
    assert first.json["contents"] == [{"role": "user", "parts": [{"text": "hello"}]}]
