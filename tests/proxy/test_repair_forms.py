"""Text tool-call repair, the forms of issue 20, through real HTTP: a fake OpenAI-protocol
upstream writes the call as text (a `TOOL CALL:` directive, a bare ``` fence, JSON in
prose); the OpenAI and Anthropic SDKs get a real tool call, whole and streamed. The
negatives stay text. The switches: `tool_call_repair`, its environment defaults and
`tool_call_repair_buffer_cap_bytes`."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import trio

from louter.config import parse_config
from louter.errors import ConfigError
from louter.proxy.app import build_context, serve
from tests.fakes import FakeUpstream, JSONReply, SSEReply, awkward_chunks, chat_completion
from tests.fakes import chat_stream as stream_of
from tests.sdk import Clients, in_thread

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
CALL = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
FORMS = {
    "directive": 'Let me check.\nTOOL CALL: get_weather {"city": "Paris"}\n',
    "bare fence": f"Let me check.\n```\n{CALL}\n```\n",
    "prose": f"Let me check {CALL} for you.",
}
NEGATIVES = {
    "unknown tool": 'TOOL CALL: delete_all {"city": "Paris"}\n',
    "invalid arguments": 'Let me check {"name": "get_weather", "arguments": {"town": "X"}}.',
}


async def _start(nursery: trio.Nursery, fake: FakeUpstream, extra: str = "", env: Any = None):
    await nursery.start(fake.serve)
    text = f'[backends.up]\nurl = "{fake.url}"\nprotocol = "openai"\n' + extra
    config = parse_config(text, path="t.toml", env=env or {})
    ctx = build_context(config, default_backend="up")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}", config


def _reply(text: str, stream: bool) -> Any:
    if not stream:
        return JSONReply(chat_completion(text))
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    return SSEReply(awkward_chunks(stream_of(pieces)), pause=0)


def _openai(sdk: Clients, base: str, stream: bool) -> tuple[str, list[tuple[str, Any]]]:
    client = sdk.openai(base)
    messages: Any = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        with client.chat.completions.stream(model="m", messages=messages, tools=TOOLS) as s:
            message = s.get_final_completion().choices[0].message
    else:
        message = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
        message = message.choices[0].message  # type: ignore[assignment]
    calls = [(c.function.name, orjson.loads(c.function.arguments))
             for c in message.tool_calls or ()]  # fmt: skip
    return message.content or "", calls


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("form", list(FORMS))
async def test_each_form_becomes_a_call(
    nursery: trio.Nursery, sdk: Clients, form: str, stream: bool
) -> None:
    fake = FakeUpstream(default=lambda request: _reply(FORMS[form], stream))
    base, _ = await _start(nursery, fake)
    text, calls = await in_thread(lambda: _openai(sdk, base, stream))
    assert calls == [("get_weather", {"city": "Paris"})]
    assert "get_weather" not in text and text.startswith("Let me check")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("negative", list(NEGATIVES))
async def test_negatives_stay_text(
    nursery: trio.Nursery, sdk: Clients, negative: str, stream: bool
) -> None:
    fake = FakeUpstream(default=lambda request: _reply(NEGATIVES[negative], stream))
    base, _ = await _start(nursery, fake)
    text, calls = await in_thread(lambda: _openai(sdk, base, stream))
    assert (text, calls) == (NEGATIVES[negative], [])


@pytest.mark.parametrize("stream", [False, True])
async def test_a_directive_reaches_an_anthropic_client_as_tool_use(
    nursery: trio.Nursery, sdk: Clients, stream: bool
) -> None:
    fake = FakeUpstream(default=lambda request: _reply(FORMS["directive"], stream))
    base, _ = await _start(nursery, fake)
    tools: Any = [{"name": "get_weather", "input_schema": SCHEMA}]
    messages: Any = [{"role": "user", "content": "weather?"}]

    def ask() -> Any:
        client = sdk.anthropic(base)
        if not stream:
            return client.messages.create(model="m", max_tokens=99, messages=messages, tools=tools)
        with client.messages.stream(model="m", max_tokens=99, messages=messages, tools=tools) as s:
            return s.get_final_message()

    reply = await in_thread(ask)
    uses = [(b.name, b.input) for b in reply.content if b.type == "tool_use"]
    assert uses == [("get_weather", {"city": "Paris"})] and reply.stop_reason == "tool_use"


async def test_repair_off_by_environment(nursery: trio.Nursery, sdk: Clients) -> None:
    fake = FakeUpstream(default=lambda request: _reply(FORMS["prose"], False))
    base, config = await _start(nursery, fake, env={"TOOL_CALL_REPAIR_ENABLED": "false"})
    assert config.backend("up").tool_call_repair is False
    text, calls = await in_thread(lambda: _openai(sdk, base, False))
    assert (text, calls) == (FORMS["prose"], [])


def test_repair_settings_per_backend_and_by_environment() -> None:
    def backend(extra: str, env: dict[str, str]) -> Any:
        text = '[backends.up]\nurl = "http://127.0.0.1:9"\n' + extra
        return parse_config(text, path="t.toml", env=env).backend("up")

    assert backend("", {}).tool_call_repair_buffer_cap_bytes == 65536
    env = {"TOOL_CALL_REPAIR_BUFFER_CAP_BYTES": "1024", "TOOL_CALL_REPAIR_ENABLED": "0"}
    found = backend("", env)
    assert (found.tool_call_repair_buffer_cap_bytes, found.tool_call_repair) == (1024, False)
    explicit = backend("tool_call_repair = true\ntool_call_repair_buffer_cap_bytes = 9\n", env)
    assert (explicit.tool_call_repair_buffer_cap_bytes, explicit.tool_call_repair) == (9, True)
    with pytest.raises(ConfigError, match="TOOL_CALL_REPAIR_BUFFER_CAP_BYTES"):
        backend("", {"TOOL_CALL_REPAIR_BUFFER_CAP_BYTES": "lots"})
    with pytest.raises(ConfigError, match="TOOL_CALL_REPAIR_ENABLED"):
        backend("", {"TOOL_CALL_REPAIR_ENABLED": "perhaps"})
    with pytest.raises(ConfigError, match="tool_call_repair_buffer_cap_bytes"):
        backend("tool_call_repair_buffer_cap_bytes = 0\n", {})


async def test_the_buffer_cap_releases_a_long_held_call_as_text(
    nursery: trio.Nursery, sdk: Clients
) -> None:
    """With a 40-byte cap, a call longer than that cannot be held whole: it stays text."""
    long_call = '{"name": "get_weather", "arguments": {"city": "' + "P" * 60 + '"}}'
    fake = FakeUpstream(default=lambda request: _reply(f"See {long_call}.", True))
    base, _ = await _start(nursery, fake, "tool_call_repair_buffer_cap_bytes = 40\n")
    text, calls = await in_thread(lambda: _openai(sdk, base, True))
    assert (text, calls) == (f"See {long_call}.", [])
