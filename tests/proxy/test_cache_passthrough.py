"""A cache miss on a backend of the client's own dialect: the answer still passes through
as the upstream's bytes (the miss costs no conversion), and the entry recorded from it
(whole: its parsed body; streamed: the journal tap's assembly) serves later hits in
every dialect, whole and streamed, through the official SDKs. The log keeps its own
text cap while the cache records more; answers above `max_entry_bytes` and streams that
do not finish are not stored."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import trio

from louter.config import parse_config
from louter.convert.collect import events_of
from louter.convert.dialect import DIALECTS
from louter.convert.model import Reasoning, Response, ResponseMeta, Text, ToolCall, Usage
from louter.proxy.app import build_context, serve
from tests.fakes import FakeUpstream, JSONReply, Recorded, SSEReply
from tests.proxy.doors_sdk import DOORS, Ask, ask
from tests.sdk import Clients, in_thread

TOOLS = [
    {
        "name": "read",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
    }
]
ANSWER = Response(
    id="up-1",
    model="real",
    parts=(
        Reasoning("The user wants the file.", signature="c2lnLXVw"),
        Text("Let me look at it."),
        ToolCall("call_up", "read", '{"path": "a.py"}'),
    ),
    finish_reason="tool_calls",
    usage=Usage(11, 7),
)
META = ResponseMeta(id="up-1", model="real", created=1, include_usage=True)


def whole(dialect: str, answer: Response = ANSWER) -> dict[str, Any]:
    """`answer` as the backend of `dialect` writes it whole, with a field louter does
    not model (it survives only when the answer passes through as bytes)."""
    return {**DIALECTS[dialect].emit_response(answer, META), "x_upstream_only": "fp-1"}


def streamed(dialect: str, answer: Response = ANSWER) -> list[bytes]:
    """`answer` as the backend of `dialect` streams it: one network chunk per event."""
    emitter = DIALECTS[dialect].stream_emitter(META)
    chunks = [emitter.prelude()] + [emitter.feed(event) for event in events_of(answer)]
    return [chunk for chunk in (*chunks, emitter.flush()) if chunk]


def wants_stream(request: Recorded) -> bool:
    return "streamGenerateContent" in request.path or request.json.get("stream") is True


def upstream_of(dialect: str) -> FakeUpstream:
    def reply(request: Recorded) -> JSONReply | SSEReply:
        if wants_stream(request):
            return SSEReply(streamed(dialect))
        return JSONReply(whole(dialect))

    return FakeUpstream(reply)


async def start(
    nursery: trio.Nursery, dialect: str, cache: str = "enabled = true", extra: str = ""
) -> tuple[str, FakeUpstream, Any]:
    fake = upstream_of(dialect)
    await nursery.start(fake.serve)
    text = f"""
[backends.up]
url = "{fake.url}"
protocol = "{dialect}"
api_key = "sk-up"
tool_call_repair = false

[cache]
{cache}
{extra}
"""
    ctx = build_context(parse_config(text, path="t", env={}), default_backend="up")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}", fake, ctx


def content(got: Any) -> tuple[Any, ...]:
    return (got.text, got.reasoning, got.calls, got.usage)


@pytest.mark.parametrize("door", DOORS)
async def test_miss_passes_through_and_records_for_every_dialect(
    nursery: trio.Nursery, sdk: Clients, door: str
) -> None:
    """Stored from a passed-through whole answer or stream: the hit (whole and streamed)
    is the same answer, and the backend saw one request per form."""
    base, fake, ctx = await start(nursery, door)
    for first_stream in (False, True):
        q = Ask(tools=TOOLS, stream=first_stream, text=f"first {first_stream}")
        miss = await in_thread(lambda q=q: ask(sdk, door, base, q))
        assert miss.headers["x-louter-cache"] == "MISS"
        assert miss.calls == [("read", {"path": "a.py"})] and miss.text == "Let me look at it."
        for stream in (False, True):
            again = Ask(tools=TOOLS, stream=stream, text=q.text)
            hit = await in_thread(lambda again=again: ask(sdk, door, base, again))
            assert hit.headers["x-louter-cache"] == "HIT", (first_stream, stream)
            assert content(hit) == content(miss), (first_stream, stream)
            if stream:
                assert hit.events >= 3
    assert len(fake.requests) == 2
    assert ctx.cache.counts.stored == 2


@pytest.mark.parametrize("door", DOORS)
async def test_miss_is_the_upstreams_bytes(nursery: trio.Nursery, door: str) -> None:
    """The miss is byte for byte what the upstream sent (a field louter does not model
    kept): nothing went through the neutral model. The hit is a correct answer."""
    base, fake, _ = await start(nursery, door)
    path, body = _raw_request(door)
    async with httpx.AsyncClient(base_url=base, headers=_auth(door)) as client:
        miss = await client.post(path, json=body)
        hit = await client.post(path, json=body)
    assert (miss.headers["x-louter-cache"], hit.headers["x-louter-cache"]) == ("MISS", "HIT")
    assert miss.content == orjson.dumps(whole(door))
    assert "x_upstream_only" not in hit.json()  # rebuilt from the neutral answer
    assert len(fake.requests) == 1


@pytest.mark.parametrize("door", DOORS)
async def test_streamed_miss_is_the_upstreams_bytes(nursery: trio.Nursery, door: str) -> None:
    base, fake, _ = await start(nursery, door)
    path, body = _raw_request(door, stream=True)
    async with httpx.AsyncClient(base_url=base, headers=_auth(door)) as client:
        miss = await client.post(path, json=body)
        hit = await client.post(path, json=body)
    assert (miss.headers["x-louter-cache"], hit.headers["x-louter-cache"]) == ("MISS", "HIT")
    assert miss.content == b"".join(streamed(door))
    assert hit.content.count(b"data: ") >= 3
    assert len(fake.requests) == 1


def _raw_request(door: str, *, stream: bool = False) -> tuple[str, dict[str, Any]]:
    user = [{"role": "user", "content": "hi"}]
    if door == "gemini":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/v1beta/models/m:{method}", {
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
        }
    if door == "anthropic":
        return "/v1/messages", {"model": "m", "max_tokens": 50, "messages": user, "stream": stream}
    if door == "responses":
        return "/v1/responses", {"model": "m", "input": "hi", "stream": stream}
    return "/v1/chat/completions", {"model": "m", "messages": user, "stream": stream}


def _auth(door: str) -> dict[str, str]:
    if door == "anthropic":
        return {"x-api-key": "sk-ant", "anthropic-version": "2023-06-01"}
    if door == "gemini":
        return {"x-goog-api-key": "k"}
    return {"authorization": "Bearer sk-test"}


async def test_log_keeps_its_cap_while_the_cache_records_more(
    nursery: trio.Nursery, sdk: Clients, tmp_path: Any
) -> None:
    fake = upstream_of("openai")
    await nursery.start(fake.serve)
    text = f"""
[backends.up]
url = "{fake.url}"
api_key = "sk-up"
[performance]
log_max_text_chars = 10
[cache]
enabled = true
"""
    log = tmp_path / "log.jsonl"
    ctx = build_context(parse_config(text, path="t", env={}), default_backend="up", log_file=log)
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"
    miss = await in_thread(lambda: ask(sdk, "openai", base, Ask(stream=True)))
    hit = await in_thread(lambda: ask(sdk, "openai", base, Ask(stream=True)))
    assert (miss.headers["x-louter-cache"], hit.headers["x-louter-cache"]) == ("MISS", "HIT")
    assert hit.text == "Let me look at it." and hit.reasoning == "The user wants the file."
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    logged = next(e for e in entries if e["direction"] == "backend_response")["payload"]
    assert logged["truncated"] is True and logged["text_chars"] > 10
    kept = logged["content"] + logged.get("reasoning_content", "")
    kept += "".join(c["function"]["arguments"] for c in logged["tool_calls"])
    assert len(kept) == 10


async def test_too_large_or_unfinished_streams_are_not_stored(
    nursery: trio.Nursery, sdk: Clients
) -> None:
    base, fake, ctx = await start(nursery, "anthropic", "enabled = true\nmax_entry_bytes = 20")
    for _ in range(2):  # more than 20 characters of text: recorded by no one
        got = await in_thread(lambda: ask(sdk, "anthropic", base, Ask(stream=True)))
        assert got.headers["x-louter-cache"] == "MISS"
    base, fake, ctx = await start(nursery, "openai")
    cut = b"".join(streamed("openai"))
    cut = cut[: cut.index(b'"finish_reason":"tool_calls"')]  # no finish, no [DONE]
    fake.script(SSEReply([cut[: cut.rindex(b"\n\n") + 2]]))
    try:  # passed through as it came: the SDK may or may not complain
        await in_thread(lambda: ask(sdk, "openai", base, Ask(stream=True)))
    except Exception:  # noqa: BLE001, S110
        pass
    got = await in_thread(lambda: ask(sdk, "openai", base, Ask(stream=True)))
    assert got.headers["x-louter-cache"] == "MISS"
    assert ctx.cache.counts.stored == 1  # the finished one only


async def test_gemini_stream_as_a_json_array_is_recorded(nursery: trio.Nursery) -> None:
    """`streamGenerateContent` without `alt=sse` streams one JSON array: passed through
    as it came, parsed once at its end for the entry."""
    sse = b"".join(streamed("gemini"))
    items = [orjson.loads(line[6:]) for line in sse.split(b"\n") if line.startswith(b"data: ")]
    array = orjson.dumps(items)
    fake = FakeUpstream(JSONReply(array))
    await nursery.start(fake.serve)
    text = f'[backends.up]\nurl = "{fake.url}"\nprotocol = "gemini"\napi_key = "k"\n'
    ctx = build_context(
        parse_config(text + "[cache]\nenabled = true\n", path="t", env={}), default_backend="up"
    )
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=_auth("gemini")) as c:
        miss = await c.post("/v1beta/models/m:streamGenerateContent", json=body)
        hit = await c.post("/v1beta/models/m:streamGenerateContent", json=body)
    assert (miss.headers["x-louter-cache"], hit.headers["x-louter-cache"]) == ("MISS", "HIT")
    assert miss.content == array
    parts = [p for chunk in hit.json() for p in chunk["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts if not p.get("thought")) == "Let me look at it."
    assert [p["functionCall"]["name"] for p in parts if "functionCall" in p] == ["read"]
    assert len(fake.requests) == 1
