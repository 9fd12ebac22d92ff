"""Shared pieces of the usage tests: an OpenAI-compatible fake upstream that reports
known usage (and its usage chunk only when asked, as real servers do), louter started
with `[usage]`, and one request per client dialect through its official SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import trio

from louter.catalog import Price
from louter.config import parse_config
from louter.proxy.app import build_context, serve
from louter.proxy.context import ProxyContext
from tests.fakes import FakeUpstream, JSONReply, Recorded, SSEReply, chat_chunk, sse_events
from tests.sdk import Clients, in_thread

PROMPT, COMPLETION = 11, 7  # what the fake upstream reports for every answer
PRICE = Price(1.0, 2.0)  # USD per million input, output tokens for model "priced"
COST = round(PROMPT * 1.0 / 1e6 + COMPLETION * 2.0 / 1e6, 9)
USAGE = {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION, "total_tokens": 18}


def prices(model: str, backend: str) -> Price | None:
    return PRICE if model == "priced" else None


def _whole(request: Recorded) -> dict[str, Any]:
    if request.path.endswith("/completions") and "chat" not in request.path:
        choice = {"index": 0, "text": "hello there", "finish_reason": "stop"}
        return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                "choices": [choice], "usage": USAGE}  # fmt: skip
    message = {"role": "assistant", "content": "hello there"}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": USAGE}  # fmt: skip


def _stream(request: Recorded) -> bytes:
    legacy = request.path.endswith("/completions") and "chat" not in request.path
    if legacy:
        pieces: list[Any] = [
            {
                "id": "c",
                "object": "text_completion",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "text": t, "finish_reason": f}],
            }  # fmt: skip
            for t, f in (("hello", None), (" there", "stop"))
        ]
    else:
        pieces = [chat_chunk("hello"), chat_chunk(" there"), chat_chunk(finish="stop")]
    options = request.json.get("stream_options") or {}
    if options.get("include_usage"):
        kind = "text_completion" if legacy else "chat.completion.chunk"
        pieces.append({"id": "c", "object": kind, "created": 1, "model": "m", "choices": [],
                       "usage": USAGE})  # fmt: skip
    return sse_events(*pieces)


def answer(request: Recorded) -> Any:
    if request.json.get("stream"):
        return SSEReply([_stream(request)])
    return JSONReply(_whole(request))


def usage_toml(fake: FakeUpstream, db: str, extra: str = "") -> str:
    return (
        f'[backends.up]\nurl = "{fake.url}"\nprotocol = "openai"\n'
        f'[usage]\ndb = "{db}"\nflush_seconds = 0.05\n{extra}'
    )


async def start(
    nursery: trio.Nursery, toml: str, **options: Any
) -> tuple[str, ProxyContext, trio.CancelScope]:
    """louter on a free port; cancel the returned scope to stop it (a restart test)."""
    config = parse_config(toml, path="test.toml", env={})
    ctx = build_context(config, default_backend="up", pricing=prices, **options)
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await serve(ctx, "127.0.0.1", 0, task_status=task_status)

    port = await nursery.start(run)
    return f"http://127.0.0.1:{port}", ctx, scope


async def get(base: str, path: str, key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient() as client:
        return await client.get(base + path, headers=headers)


HI: Any = [{"role": "user", "content": "hi"}]


def _openai(sdk: Clients, base: str, model: str, stream: bool, key: str) -> None:
    client = sdk.openai(base).with_options(api_key=key)
    if stream:
        chunks = list(client.chat.completions.create(model=model, messages=HI, stream=True))
        assert all(c.choices for c in chunks), "the usage chunk louter asked for reached the client"
    else:
        client.chat.completions.create(model=model, messages=HI)


def _completions(sdk: Clients, base: str, model: str, stream: bool, key: str) -> None:
    client = sdk.openai(base).with_options(api_key=key)
    if stream:
        chunks = list(client.completions.create(model=model, prompt="hi", stream=True))
        assert all(c.choices for c in chunks)
    else:
        client.completions.create(model=model, prompt="hi")


def _responses(sdk: Clients, base: str, model: str, stream: bool, key: str) -> None:
    client = sdk.openai(base).with_options(api_key=key)
    if stream:
        list(client.responses.create(model=model, input="hi", stream=True))
    else:
        client.responses.create(model=model, input="hi")


def _anthropic(sdk: Clients, base: str, model: str, stream: bool, key: str) -> None:
    client = sdk.anthropic(base).with_options(api_key=key)
    if stream:
        with client.messages.stream(model=model, max_tokens=16, messages=HI) as events:
            list(events)
    else:
        client.messages.create(model=model, max_tokens=16, messages=HI)


def _gemini(sdk: Clients, base: str, model: str, stream: bool, key: str) -> None:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=base, api_version="v1beta")
    client = genai.Client(api_key=key, http_options=options)
    sdk.made.append(client)
    if stream:
        list(client.models.generate_content_stream(model=model, contents="hi"))
    else:
        client.models.generate_content(model=model, contents="hi")


ASK: dict[str, Callable[[Clients, str, str, bool, str], None]] = {
    "openai": _openai,
    "completions": _completions,
    "responses": _responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
}


async def ask(
    sdk: Clients, door: str, base: str, model: str, stream: bool, key: str = "sk-test"
) -> None:
    await in_thread(lambda: ASK[door](sdk, base, model, stream, key))
