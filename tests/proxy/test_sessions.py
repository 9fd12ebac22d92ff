"""Sessions and in-chat commands through the official SDKs (OpenAI, Anthropic,
google-genai), whole and streamed, against two fake OpenAI upstreams ("first", the
default, and "second") on loopback: local answers, `!/backend`, `!/oneoff`, `!/set` and
`!/unset`, the malformed forms of the seeds, history, mixed messages, `interactive`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest
import trio
from google import genai
from google.genai import types

from louter.proxy.door import HEAD_FROM
from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, Recorded, SSEReply, chat_completion, chat_stream
from tests.sdk import Clients, in_thread

DIALECTS = ["openai", "anthropic", "gemini"]
STREAMS = [False, True]


def answering(name: str) -> Callable[[Recorded], Any]:
    """Replies naming the upstream, whole or streamed as asked (no model list: a 404)."""

    def reply(request: Recorded) -> Any:
        if request.method == "GET":
            return JSONReply({"error": {"message": "no list here"}}, status=404)
        if request.json.get("stream"):
            return SSEReply([chat_stream([f"from {name}", " ok"])])
        return JSONReply(chat_completion(f"from {name} ok"))

    return reply


@dataclass
class Setup:
    base: str
    first: FakeUpstream
    second: FakeUpstream


def config_for(first: FakeUpstream, second: FakeUpstream, extra: str = "") -> str:
    """`first` serves every model (the default); `second` maps one name of its own (so it
    is not in the default pool)."""
    return (
        f'[backends.first]\nurl = "{first.url}"\nprotocol = "openai"\n'
        f'[backends.second]\nurl = "{second.url}"\nprotocol = "openai"\n'
        f'[backends.second.model_mapping]\n"second-only" = "second-real"\n{extra}'
    )


@pytest.fixture
async def setup(nursery: trio.Nursery, start_louter: StartLouter) -> Setup:
    first, second = FakeUpstream(answering("first")), FakeUpstream(answering("second"))
    await nursery.start(first.serve)
    await nursery.start(second.serve)
    return Setup(await start_louter(config_for(first, second)), first, second)


# --------------------------------------------------------------------------- one chat


@dataclass
class Chat:
    """One SDK client in one session: `say(text)` -> the answer's text (and usage)."""

    dialect: str
    client: Any
    stream: bool
    usage: tuple[int, int] | None = None

    async def say(self, text: str, model: str = "gpt-test") -> str:
        return await self.history([("user", text)], model)

    async def history(self, turns: list[tuple[str, str]], model: str = "gpt-test") -> str:
        return await in_thread(lambda: SENDERS[self.dialect](self, turns, model))


def _openai(chat: Chat, turns: list[tuple[str, str]], model: str) -> str:
    messages: Any = [{"role": role, "content": text} for role, text in turns]
    client: openai.OpenAI = chat.client
    if not chat.stream:
        reply = client.chat.completions.create(model=model, messages=messages)
        assert reply.usage is not None
        chat.usage = (reply.usage.prompt_tokens, reply.usage.completion_tokens)
        return reply.choices[0].message.content or ""
    pieces = client.chat.completions.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    texts = []
    for chunk in pieces:
        if chunk.usage is not None:
            chat.usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        texts += [c.delta.content or "" for c in chunk.choices]
    return "".join(texts)


def _anthropic(chat: Chat, turns: list[tuple[str, str]], model: str) -> str:
    messages: Any = [{"role": role, "content": text} for role, text in turns]
    client: anthropic.Anthropic = chat.client
    if not chat.stream:
        reply = client.messages.create(model=model, max_tokens=100, messages=messages)
        chat.usage = (reply.usage.input_tokens, reply.usage.output_tokens)
        return "".join(b.text for b in reply.content if b.type == "text")
    with client.messages.stream(model=model, max_tokens=100, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    chat.usage = (final.usage.input_tokens, final.usage.output_tokens)
    return text


def _gemini(chat: Chat, turns: list[tuple[str, str]], model: str) -> str:
    contents: Any = [
        {"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]}
        for role, text in turns
    ]
    client: genai.Client = chat.client
    if not chat.stream:
        reply = client.models.generate_content(model=model, contents=contents)
        meta = reply.usage_metadata
        chat.usage = (
            (meta.prompt_token_count or 0, meta.candidates_token_count or 0) if meta else None
        )
        return reply.text or ""
    texts = []
    for chunk in client.models.generate_content_stream(model=model, contents=contents):
        texts.append(chunk.text or "")
        meta = chunk.usage_metadata
        if meta is not None:
            chat.usage = (meta.prompt_token_count or 0, meta.candidates_token_count or 0)
    return "".join(texts)


SENDERS: dict[str, Callable[[Chat, list[tuple[str, str]], str], str]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
}


def make_client(sdk: Clients, dialect: str, base: str, session: str) -> Any:
    headers = {"x-session-id": session}
    if dialect == "openai":
        made: Any = openai.OpenAI(
            base_url=base + "/v1", api_key="sk-test", max_retries=0, default_headers=headers
        )
    elif dialect == "anthropic":
        made = anthropic.Anthropic(
            base_url=base, api_key="sk-ant", max_retries=0, default_headers=headers
        )
    else:
        options = types.HttpOptions(base_url=base, api_version="v1beta", headers=headers)
        made = genai.Client(api_key="test-key", http_options=options)
    return sdk._keep(made)


@pytest.fixture
def chats(sdk: Clients, setup: Setup) -> Iterator[Callable[..., Chat]]:
    def make(dialect: str, stream: bool = False, session: str = "s-1") -> Chat:
        return Chat(dialect, make_client(sdk, dialect, setup.base, session), stream)

    yield make


def sent_text(request: Recorded) -> str:
    """The newest user message's text as the upstream got it."""
    content = request.json["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


# --------------------------------------------------------------------------- local answers


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_command_only_message_is_answered_locally(
    setup: Setup, chats: Callable[..., Chat], dialect: str, stream: bool
) -> None:
    chat = chats(dialect, stream, session="hello-1")
    text = await chat.say("!/hello")
    assert text.startswith("Welcome to louter. Session: hello-1")
    assert "Backends: first, second" in text
    assert chat.usage in (None, (0, 0))
    help_text = await chat.say("!/help")
    assert "!/route-append(MODEL, backend:model)" in help_text
    assert "temperature=0-2" in help_text
    assert setup.first.requests == [] and setup.second.requests == []


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_backend_then_a_message_reaches_the_chosen_backend(
    setup: Setup, chats: Callable[..., Chat], dialect: str, stream: bool
) -> None:
    chat = chats(dialect, stream)
    assert await chat.say("!/backend(second)") == "backend set to second"
    answer = await chat.say("hi there")
    assert answer.startswith("from second")
    assert len(setup.second.requests) == 1 and setup.first.requests == []
    assert setup.second.requests[0].json["model"] == "gpt-test"  # passed as written
    other = chats(dialect, stream, session="someone-else")  # another session: untouched
    assert (await other.say("hi")).startswith("from first")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_oneoff_affects_exactly_one_request(
    setup: Setup, chats: Callable[..., Chat], dialect: str
) -> None:
    chat = chats(dialect, stream=dialect == "anthropic")
    assert await chat.say("!/oneoff(second:special-model)") == (
        "the next request goes to second:special-model"
    )
    assert (await chat.say("one")).startswith("from second")
    assert (await chat.say("two")).startswith("from first")
    three = await chat.say("three")
    assert three.startswith("from first"), three
    assert [r.json["model"] for r in setup.second.requests] == ["special-model"]
    assert len(setup.first.requests) == 2


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_set_and_unset(
    setup: Setup, chats: Callable[..., Chat], dialect: str, stream: bool
) -> None:
    chat = chats(dialect, stream)
    reply = await chat.say('!/set(temperature=0.25, top_p=0.5, max_tokens=77, project="my app")')
    assert reply == (
        "temperature set to 0.25; top_p set to 0.5; max_tokens set to 77; project set to my app"
    )
    await chat.say("hi")
    body = setup.first.requests[-1].json
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.25, 0.5, 77)
    assert "project=my app" in await chat.say("!/hello")
    assert await chat.say("!/unset(temperature, top_p, max_tokens)") == (
        "unset temperature, top_p, max_tokens"
    )
    await chat.say("hi again")
    body = setup.first.requests[-1].json
    assert "temperature" not in body and "top_p" not in body
    assert body.get("max_tokens") != 77


async def test_settings_are_checked(setup: Setup, chats: Callable[..., Chat]) -> None:
    chat = chats("openai")
    assert await chat.say("!/set(temperature=7)") == (
        "!/set(temperature=7): temperature must be between 0 and 2, got 7"
    )
    assert await chat.say("!/set(colour=blue)") == (
        "!/set(colour=blue): unknown setting 'colour'; settings: project, project_dir, backend,"
        " model, temperature, top_p, max_tokens, interactive, loop_detection_enabled,"
        " tool_loop_detection_enabled, tool_loop_max_repeats, tool_loop_mode"
    )
    assert await chat.say("!/set(tool_loop_mode=never)") == (
        "!/set(tool_loop_mode=never): tool_loop_mode must be one of warn, block,"
        " chance_then_block, got 'never'"
    )
    assert (await chat.say("!/backend(nope)")).endswith(
        "unknown backend 'nope'; backends: first, second, mock, openai, gemini, anthropic,"
        " openrouter"
    )
    assert (await chat.say("!/oneoff(gpt-4)")) == "!/oneoff(gpt-4): 'gpt-4' is not backend:model"
    # a failing command undoes the ones before it in the same message
    reply = await chat.say("!/set(project=x) !/temperature(9)")
    assert reply.startswith("!/temperature(9): temperature must be between 0 and 2")
    assert "Settings: none" in await chat.say("!/hello")
    assert setup.first.requests == []


# The seeds' malformed forms, each with the mistake it names.
MALFORMED = [
    ("!/ set(project=myproject)", "no space after the prefix: write !/set(project=myproject)"),
    ("!/set (project=x)", "no space between the name and '(': write !/set(project=x)"),
    ("!/set(project = myproject)", "no spaces around '=': write project=..."),
    ('!/set("project"="myproject")', "keys are not quoted: write project=..."),
    (
        "!/set(project=myproject temperature=0.7)",
        "missing comma between 'project=myproject' and 'temperature=0.7'",
    ),
]  # fmt: skip
UNCLOSED = [
    ("!/set(project=myproject", "missing ')' at the end"),
    ("!/set(project=myproject and more", "missing ')' at the end"),
    ('!/set(project="my project)', "a quoted value is not closed with '\"'"),
]


@pytest.mark.parametrize(("text", "problem"), MALFORMED)
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_malformed_commands_name_the_mistake(
    setup: Setup, chats: Callable[..., Chat], dialect: str, text: str, problem: str
) -> None:
    reply = await chats(dialect).say(text + " and then some text")
    assert reply.startswith(f"{text}: {problem}\n"), reply
    assert reply.endswith("Nothing was done. !/help shows the syntax.")
    assert setup.first.requests == []  # never sent on, even with text around it


@pytest.mark.parametrize(("text", "problem"), UNCLOSED)
async def test_unclosed_commands_name_the_mistake(
    setup: Setup, chats: Callable[..., Chat], text: str, problem: str
) -> None:
    reply = await chats("openai", stream=True).say(text)
    assert reply.startswith(f"{text}: {problem}\n"), reply
    assert setup.first.requests == []


async def test_unknown_command_lists_the_commands(setup: Setup, chats: Callable[..., Chat]) -> None:
    reply = await chats("anthropic", stream=True).say("!/frobnicate(1) please")
    assert reply.startswith("!/frobnicate(1): unknown command\nCommands: !/hello, !/help, !/set")
    assert setup.first.requests == []


async def test_quoted_values_keep_spaces_and_commas(chats: Callable[..., Chat]) -> None:
    chat = chats("openai")
    reply = await chat.say('!/set(project="a, b c", project_dir="/srv/my app")')
    assert reply == "project set to a, b c; project_dir set to /srv/my app"
    assert await chat.say("!/pwd") == "/srv/my app"


# --------------------------------------------------------------------------- which message


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_command_in_an_old_message_is_not_run_again(
    setup: Setup, chats: Callable[..., Chat], dialect: str
) -> None:
    chat = chats(dialect)
    history = [("user", "!/backend(second)"), ("assistant", "backend set to second")]
    answer = await chat.history([*history, ("user", "what now?")])
    assert answer.startswith("from first")  # the old command did not switch the backend
    assert "Settings: none" in await chat.say("!/hello")
    assert sent_text(setup.first.requests[0]) == "what now?"
    assert setup.first.requests[0].json["messages"][0]["content"] == "!/backend(second)"


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_commands_and_text_sends_the_text_with_the_settings(
    setup: Setup, chats: Callable[..., Chat], dialect: str, stream: bool
) -> None:
    chat = chats(dialect, stream)
    answer = await chat.say("!/model(second:big-model) write a haiku\nabout trio")
    assert answer.startswith("from second")
    sent = setup.second.requests[0]
    assert sent.json["model"] == "big-model"
    assert sent_text(sent) == "write a haiku\nabout trio"
    assert (await chat.say("and another")).startswith("from second")  # it stays


async def test_interactive_false_lets_commands_through_as_text(
    setup: Setup, chats: Callable[..., Chat]
) -> None:
    chat = chats("openai")
    assert await chat.say("!/interactive(false)") == "interactive set to false"
    assert (await chat.say("!/backend(second)")).startswith("from first")
    assert sent_text(setup.first.requests[0]) == "!/backend(second)"
    assert await chat.say("!/interactive(true)") == "interactive set to true"
    assert await chat.say("!/backend(second)") == "backend set to second"


async def test_text_that_only_looks_like_a_command_is_sent(
    setup: Setup, chats: Callable[..., Chat]
) -> None:
    chat = chats("openai")
    for text in ("see !/tmp/notes.txt", "a!/b", "!/ is our prefix"):
        assert (await chat.say(text)).startswith("from first")
        assert sent_text(setup.first.requests[-1]) == text


@pytest.mark.parametrize("content", ["!\\/hello", "\\u0021/hello", "!/hel\\u006co"])
async def test_a_command_written_with_json_escapes_is_still_a_command(
    setup: Setup, content: str
) -> None:
    """The door reads an OpenAI body's head only; the stage parses the body when its bytes
    may hold the prefix, escapes included (a PHP client writes `/` as `\\/`)."""
    system = "Be brief. " * (HEAD_FROM // 10 + 1)  # an agent-sized body: its head is read
    body = (
        '{"model": "any", "messages": [{"role": "system", "content": "' + system + '"}, '
        '{"role": "user", "content": "' + content + '"}]}'
    )
    headers = {"content-type": "application/json", "x-session-id": "esc-1"}
    async with httpx.AsyncClient(timeout=10) as client:
        url = setup.base + "/v1/chat/completions"
        response = await client.post(url, content=body.encode(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"].startswith("Welcome to louter")
    assert setup.first.requests == []
