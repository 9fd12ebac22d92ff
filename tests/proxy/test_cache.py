"""The response cache (`[cache]`) through the official SDKs, against a fake OpenAI-compatible
upstream that counts what reaches it: a hit is the same content in the same dialect and a
real stream (reasoning, tool calls, usage kept) in another; anything that can change the
answer misses; keys never share; no-store stores nothing; errors and broken streams are
never stored; a Redis that is down means BYPASS with the answer still served, and one
that is up shares entries between two louters."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import openai
import orjson
import pytest
import trio

from louter.config import parse_config
from louter.proxy.app import build_context, serve
from tests.fakes import FakeUpstream, JSONReply, Recorded, SSEReply, chat_chunk, sse_events
from tests.proxy.doors_sdk import DOORS, Ask, ask
from tests.redis_server import RedisServer, free_port, redis_server  # noqa: F401 - a fixture
from tests.sdk import Clients, in_thread

CALL = {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": ""}}
ARGS = '{"path": "a.py"}'
TOOLS = [
    {
        "name": "read",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    }
]


def whole_answer() -> dict[str, Any]:
    message = {
        "role": "assistant",
        "content": "Let me look at it.",
        "reasoning_content": "The user wants the file.",
        "tool_calls": [{**CALL, "function": {"name": "read", "arguments": ARGS}}],
    }
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "model": "real",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def stream_answer() -> bytes:
    def reasoning(text: str) -> dict[str, Any]:
        chunk = chat_chunk()
        chunk["choices"][0]["delta"] = {"reasoning_content": text}
        return chunk

    def call(arguments: str, first: bool) -> dict[str, Any]:
        chunk = chat_chunk()
        fragment: dict[str, Any] = {"index": 0, "function": {"arguments": arguments}}
        if first:
            fragment = {"index": 0, **CALL, "function": {"name": "read", "arguments": arguments}}
        chunk["choices"][0]["delta"] = {"tool_calls": [fragment]}
        return chunk

    usage = chat_chunk()
    usage["choices"] = []
    usage["usage"] = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    return sse_events(
        reasoning("The user wants "),
        reasoning("the file."),
        chat_chunk("Let me look"),
        chat_chunk(" at it."),
        call('{"path": ', True),
        call('"a.py"}', False),
        chat_chunk(finish="tool_calls"),
        usage,
    )


def answer(request: Recorded) -> JSONReply | SSEReply:
    if request.json.get("stream"):
        return SSEReply([stream_answer()])
    return JSONReply(whole_answer())


async def start(
    nursery: trio.Nursery, cache: str = "enabled = true", *, extra: str = "", fake: Any = None
) -> tuple[str, FakeUpstream]:
    if fake is None:
        fake = FakeUpstream(answer)
        await nursery.start(fake.serve)
    text = f"""
[backends.up]
url = "{fake.url}"
protocol = "openai"
api_key = "sk-up"

[cache]
{cache}
{extra}
"""
    ctx = build_context(parse_config(text, path="t", env={}), default_backend="up")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}", fake


def content(got: Any) -> tuple[Any, ...]:
    return (got.text, got.reasoning, got.calls, got.usage)


EXPECTED = ("Let me look at it.", "The user wants the file.", [("read", {"path": "a.py"})])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("door", DOORS)
async def test_hit_is_the_same_answer_and_costs_no_backend_request(
    nursery: trio.Nursery, sdk: Clients, door: str, stream: bool
) -> None:
    base, fake = await start(nursery)
    q = Ask(tools=TOOLS, stream=stream)
    first = await in_thread(lambda: ask(sdk, door, base, q))
    second = await in_thread(lambda: ask(sdk, door, base, q))
    assert first.headers["x-louter-cache"] == "MISS" and "age" not in first.headers
    assert second.headers["x-louter-cache"] == "HIT"
    assert 0 <= int(second.headers["age"]) < 60  # whole seconds since it was stored
    assert len(fake.requests) == 1  # the hit added no backend request
    assert content(second) == content(first)
    assert (first.text, first.reasoning, first.calls) == EXPECTED
    assert first.usage == (11, 7)
    assert second.finish == first.finish
    if stream:
        assert second.events >= 6  # a real stream: several events, not one chunk
    if door == "openai" and not stream:  # byte-for-byte the same message
        message = first.raw.choices[0].message.model_dump()
        assert second.raw.choices[0].message.model_dump() == message


async def test_stream_hit_served_in_every_other_dialect(
    nursery: trio.Nursery, sdk: Clients
) -> None:
    """Stored from an Anthropic stream; served to Gemini, Responses (streamed and whole)
    and Anthropic (whole) clients: the same neutral answer, the same backend request."""
    base, fake = await start(nursery)
    q = Ask(tools=TOOLS, stream=True, max_tokens=1024)
    stored = await in_thread(lambda: ask(sdk, "anthropic", base, q))
    assert (stored.text, stored.reasoning, stored.calls) == EXPECTED
    for door in ("gemini", "responses", "anthropic"):
        for stream in (True, False):
            if door == "anthropic" and stream:
                continue
            asked = Ask(tools=TOOLS, stream=stream, max_tokens=1024)
            got = await in_thread(lambda door=door, asked=asked: ask(sdk, door, base, asked))
            assert got.headers["x-louter-cache"] == "HIT", (door, stream)
            assert (got.text, got.calls, got.usage) == (*EXPECTED[::2], (11, 7)), (door, stream)
            if door != "responses":  # Responses' reasoning items carry no text here
                assert got.reasoning == EXPECTED[1], door
            if stream:
                assert got.events >= 6, door
    assert len(fake.requests) == 1


async def test_a_change_that_can_change_the_answer_misses(
    nursery: trio.Nursery, sdk: Clients
) -> None:
    base, fake = await start(nursery)
    other_tools = [{**TOOLS[0], "description": "Read a file from disk"}]
    asks = [
        (Ask(tools=TOOLS), "MISS"),
        (Ask(tools=TOOLS, temperature=0.5), "MISS"),
        (Ask(tools=other_tools), "MISS"),
        (Ask(tools=TOOLS, max_tokens=50), "MISS"),
        (Ask(tools=TOOLS, system="Be brief."), "MISS"),
        (Ask(tools=TOOLS, temperature=0.5), "HIT"),
        (Ask(tools=TOOLS, stream=True), "HIT"),  # streaming does not change the answer
    ]
    for q, state in asks:
        for door in ("openai", "anthropic"):
            got = await in_thread(lambda q=q, door=door: ask(sdk, door, base, q))
            assert got.headers["x-louter-cache"] == state, (q, door)
    assert len(fake.requests) == 10


async def test_passthrough_fields_louter_does_not_model_count(
    nursery: trio.Nursery, sdk: Clients
) -> None:
    """`seed` reaches the backend on passthrough: two seeds are two entries."""
    base, fake = await start(nursery)
    client = sdk.openai(base)
    messages: Any = [{"role": "user", "content": "hi"}]
    states = []
    for seed in (1, 2, 1):
        raw = await in_thread(
            lambda seed=seed: client.chat.completions.with_raw_response.create(
                model="m", messages=messages, extra_body={"seed": seed, "user": f"u{seed}"}
            )
        )
        states.append(raw.headers["x-louter-cache"])
    assert states == ["MISS", "MISS", "HIT"]
    assert len(fake.requests) == 2


def _keys() -> str:
    return "".join(
        f'[keys.{name}]\nkey_sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\n'
        for name, key in (("alice", "lk-alice-000000"), ("bob", "lk-bob-0000000"))
    )


@pytest.mark.parametrize("shared", [False, True])
async def test_two_keys_never_share_unless_shared(
    nursery: trio.Nursery, sdk: Clients, shared: bool
) -> None:
    base, fake = await start(
        nursery, f"enabled = true\nshared = {str(shared).lower()}", extra=_keys()
    )
    expected = ["MISS", "HIT", "HIT"] if shared else ["MISS", "MISS", "HIT"]
    for door in DOORS:
        states = []
        for key in ("lk-alice-000000", "lk-bob-0000000", "lk-alice-000000"):
            q = Ask(text=f"hi from {door}")
            got = await in_thread(lambda door=door, key=key, q=q: ask(sdk, door, base, q, key=key))
            states.append(got.headers["x-louter-cache"])
        assert states == expected, door


async def test_request_controls(nursery: trio.Nursery, sdk: Clients) -> None:
    base, fake = await start(nursery)

    def state(headers: dict[str, str] | None) -> str:
        return ask(sdk, "anthropic", base, Ask(headers=headers)).headers["x-louter-cache"]

    assert await in_thread(lambda: state({"cache-control": "no-store"})) == "BYPASS"
    both = {"x-louter-cache": "use", "cache-control": "no-store"}
    assert await in_thread(lambda: state(both)) == "BYPASS"
    assert len(fake.requests) == 2
    assert await in_thread(lambda: state(None)) == "MISS"  # no-store stored nothing
    assert await in_thread(lambda: state(None)) == "HIT"
    assert await in_thread(lambda: state({"x-louter-cache": "bypass"})) == "BYPASS"
    assert await in_thread(lambda: state({"cache-control": "no-cache"})) == "MISS"  # refresh
    assert await in_thread(lambda: state({"x-louter-cache": "refresh"})) == "MISS"
    assert await in_thread(lambda: state({"cache-control": "max-age=60"})) == "HIT"
    assert await in_thread(lambda: state({"cache-control": "max-age=0"})) == "MISS"  # too old
    assert len(fake.requests) == 7
    async with httpx.AsyncClient() as client:
        bad = await client.post(
            base + "/v1/messages",
            headers={"x-louter-cache": "sometimes", "anthropic-version": "2023-06-01"},
            json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        )
    assert bad.status_code == 400
    assert bad.json()["type"] == "error"
    assert "x-louter-cache must be one of use, bypass, refresh" in bad.json()["error"]["message"]


async def test_max_age(nursery: trio.Nursery, sdk: Clients) -> None:
    base, fake = await start(nursery)
    await in_thread(lambda: ask(sdk, "gemini", base, Ask()))
    await trio.sleep(1.1)
    old_enough = Ask(headers={"cache-control": "max-age=60"})
    old = await in_thread(lambda: ask(sdk, "gemini", base, old_enough))
    assert (old.headers["x-louter-cache"], old.headers["age"]) == ("HIT", "1")
    too_old = Ask(headers={"cache-control": "max-age=0"})
    fresh = await in_thread(lambda: ask(sdk, "gemini", base, too_old))
    assert fresh.headers["x-louter-cache"] == "MISS"
    assert len(fake.requests) == 2


async def test_off_by_default_on_per_request(nursery: trio.Nursery, sdk: Clients) -> None:
    base, fake = await start(nursery, "enabled = false")
    use = {"x-louter-cache": "use"}
    states = [
        (await in_thread(lambda h=h: ask(sdk, "openai", base, Ask(headers=h)))).headers[
            "x-louter-cache"
        ]
        for h in (None, use, use, None)
    ]
    assert states == ["BYPASS", "MISS", "HIT", "BYPASS"]
    assert len(fake.requests) == 3


async def test_errors_and_broken_streams_are_never_stored(
    nursery: trio.Nursery, sdk: Clients
) -> None:
    fake = FakeUpstream(answer)
    await nursery.start(fake.serve)
    base, _ = await start(nursery, fake=fake)
    fake.script(JSONReply({"error": {"message": "overloaded"}}, status=400))
    with pytest.raises(openai.BadRequestError):
        await in_thread(lambda: ask(sdk, "openai", base, Ask()))
    after_error = await in_thread(lambda: ask(sdk, "openai", base, Ask()))
    assert after_error.headers["x-louter-cache"] == "MISS"
    # a stream cut off before its end
    half = stream_answer()[:200]
    fake.script(SSEReply([half], end="close"))
    try:
        await in_thread(lambda: ask(sdk, "anthropic", base, Ask(stream=True)))
    except Exception:  # noqa: BLE001 - the SDK may raise on the error event
        pass
    got = await in_thread(lambda: ask(sdk, "anthropic", base, Ask(stream=True)))
    assert got.headers["x-louter-cache"] == "MISS"
    # malformed tool-call arguments
    bad = whole_answer()
    bad["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"path": '
    fake.script(JSONReply(bad))
    first = await in_thread(lambda: ask(sdk, "openai", base, Ask(text="again")))
    assert first.headers["x-louter-cache"] == "MISS"
    assert first.raw.choices[0].message.tool_calls[0].function.arguments == '{"path": '
    fake.script(JSONReply(whole_answer()))
    again = await in_thread(lambda: ask(sdk, "openai", base, Ask(text="again")))
    assert again.headers["x-louter-cache"] == "MISS"
    assert len(fake.requests) == 6


async def test_health_and_metrics(nursery: trio.Nursery, sdk: Clients) -> None:
    base, fake = await start(nursery, "enabled = true\nmax_bytes = 100000")
    for _ in range(3):
        await in_thread(lambda: ask(sdk, "openai", base, Ask()))
    async with httpx.AsyncClient() as client:
        health = (await client.get(base + "/health/cache")).json()
        metrics = (await client.get(base + "/metrics")).text
    assert health["enabled"] is True and health["storage"] == "memory"
    assert (health["entries"], health["hits"], health["misses"]) == (1, 2, 1)
    assert health["hit_ratio"] == round(2 / 3, 4)
    assert 0 < health["size_bytes"] <= 100000
    assert "cache_hits_total 2.0" in metrics and "cache_misses_total 1.0" in metrics
    assert f"cache_bytes {float(health['size_bytes'])}" in metrics


async def test_health_without_a_cache(nursery: trio.Nursery) -> None:
    config = parse_config('[backends.m]\nprotocol = "mock"\n', path="t", env={})
    ctx = build_context(config, default_backend="m")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    async with httpx.AsyncClient() as client:
        health = (await client.get(f"http://127.0.0.1:{port}/health/cache")).json()
        metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    assert health == {"enabled": False}
    assert "cache_hits" not in metrics


async def test_memory_is_bounded_by_bytes(nursery: trio.Nursery, sdk: Clients) -> None:
    base, fake = await start(nursery, "enabled = true\nmax_bytes = 2000")
    for n in range(8):
        await in_thread(lambda n=n: ask(sdk, "anthropic", base, Ask(text=f"question {n}")))
    async with httpx.AsyncClient() as client:
        health = (await client.get(base + "/health/cache")).json()
    assert health["size_bytes"] <= 2000 and 0 < health["entries"] < 8
    newest = await in_thread(lambda: ask(sdk, "anthropic", base, Ask(text="question 7")))
    oldest = await in_thread(lambda: ask(sdk, "anthropic", base, Ask(text="question 0")))
    assert (newest.headers["x-louter-cache"], oldest.headers["x-louter-cache"]) == ("HIT", "MISS")


async def test_redis_down_means_bypass_with_the_answer_served(
    nursery: trio.Nursery, sdk: Clients
) -> None:
    store = f'[store]\nurl = "redis://127.0.0.1:{free_port()}/0"\nop_timeout_ms = 200\n'
    base, fake = await start(nursery, extra=store)
    for door in DOORS:
        got = await in_thread(lambda door=door: ask(sdk, door, base, Ask(tools=TOOLS)))
        assert got.headers["x-louter-cache"] == "BYPASS"
        assert (got.text, got.calls) == EXPECTED[::2]
    assert len(fake.requests) == 4


async def test_redis_shares_entries_between_two_louters(
    nursery: trio.Nursery,
    sdk: Clients,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    store = f'[store]\nurl = "{redis_server.url}"\nop_timeout_ms = 500\n'
    first, fake = await start(nursery, "enabled = true\nttl_seconds = 60", extra=store)
    second, _ = await start(nursery, "enabled = true\nttl_seconds = 60", extra=store, fake=fake)
    q = Ask(tools=TOOLS, stream=True, max_tokens=1024)
    one = await in_thread(lambda: ask(sdk, "gemini", first, q))
    two = await in_thread(lambda: ask(sdk, "anthropic", second, q))
    assert (one.headers["x-louter-cache"], two.headers["x-louter-cache"]) == ("MISS", "HIT")
    assert (two.text, two.calls) == EXPECTED[::2]
    assert len(fake.requests) == 1
    async with httpx.AsyncClient() as client:
        health = (await client.get(second + "/health/cache")).json()
    assert health["storage"] == "store" and health["hits"] == 1
    redis_server.stop()  # Redis goes away: bypass, answers still served
    got = await in_thread(lambda: ask(sdk, "gemini", second, Ask(tools=TOOLS)))
    assert got.headers["x-louter-cache"] == "BYPASS"
    assert got.calls == EXPECTED[2]


async def test_hit_is_logged_as_cached(nursery: trio.Nursery, sdk: Clients, tmp_path: Any) -> None:
    fake = FakeUpstream(answer)
    await nursery.start(fake.serve)
    text = f'[backends.up]\nurl = "{fake.url}"\napi_key = "k"\n[cache]\nenabled = true\n'
    log = tmp_path / "log.jsonl"
    ctx = build_context(parse_config(text, path="t", env={}), default_backend="up", log_file=log)
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    for _ in range(2):
        await in_thread(lambda: ask(sdk, "responses", f"http://127.0.0.1:{port}", Ask(stream=True)))
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    answers = [e for e in entries if e["direction"] == "client_response"]
    assert [e.get("cached") for e in answers] == [None, True]
    assert answers[1]["local"] is True and answers[1]["payload"]["usage"]["prompt_tokens"] == 11


@pytest.mark.parametrize("stream", [False, True])
async def test_a_json_tool_call_left_as_text_is_not_stored(
    nursery: trio.Nursery, sdk: Clients, stream: bool
) -> None:
    """A tool call the model wrote as broken JSON text: the tool stage keeps it as text
    (never lost), and the cache does not store it. A JSON answer naming no tool is an
    answer, stored as any other."""
    broken = '{"name": "read", "arguments": {"path": "a.py"'

    def replies(request: Recorded) -> JSONReply | SSEReply:
        text = broken if "broken" in orjson.dumps(request.json).decode() else '{"answer": 42}'
        if request.json.get("stream"):
            return SSEReply([sse_events(chat_chunk(text), chat_chunk(finish="stop"))])
        return JSONReply({**whole_answer(), "choices": [_text_choice(text)]})

    fake = FakeUpstream(replies)
    await nursery.start(fake.serve)
    base, _ = await start(nursery, fake=fake)
    for q, states in (
        (Ask(tools=TOOLS, text="broken", stream=stream), ["MISS", "MISS"]),
        (Ask(tools=TOOLS, text="json", stream=stream), ["MISS", "HIT"]),
    ):
        got = [await in_thread(lambda q=q: ask(sdk, "openai", base, q)) for _ in states]
        assert [g.headers["x-louter-cache"] for g in got] == states, q.text
        assert got[0].text == (broken if q.text == "broken" else '{"answer": 42}')
        assert got[0].calls == []
    assert len(fake.requests) == 3


def _text_choice(text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"index": 0, "message": message, "finish_reason": "stop"}
