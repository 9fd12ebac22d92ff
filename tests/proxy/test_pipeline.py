"""The request pipeline (`louter/proxy/pipeline.py`) through every front door with its
official SDK, whole and streamed: a stage that answers locally ("pong"), one that
rejects (the client's own error envelope and status), one that ends a stream after N
text events cleanly (the client sees a normal finish), and a stage that rewrites the
model. The backend is the mock (same dialect: the passthrough path switches to the
neutral model only when a stage needs it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anthropic
import google.genai.errors
import httpx
import openai
import orjson
import pytest
import trio

from louter.config import parse_config
from louter.convert.model import Response, StreamEvent, Text, TextDelta, Usage
from louter.errors import LouterError
from louter.proxy.app import build_context, serve
from louter.proxy.pipeline import Call, Stage
from tests.sdk import Clients, in_thread

MOCK = '[backends.mock]\nprotocol = "mock"\n'
FULL = 'Mock answer to: "hi" (images: 0)'
PONG = "pong from a local stage"


class Pong(Stage):
    """Answers requests for the model `local` itself (reads no neutral request)."""

    async def on_request(self, call: Call) -> Response | None:
        if call.model != "local":
            return None
        return Response(id="", model=call.model, parts=(Text(PONG),), usage=Usage(3, 5))


class Reject(Stage):
    async def on_request(self, call: Call) -> Response | None:
        if call.model == "forbidden":
            raise LouterError("model 'forbidden' is not allowed here", status_hint=403)
        return None


class StopAfter(Stage):
    """Ends every answer after `n` text events."""

    needs_events = True

    def __init__(self, n: int) -> None:
        self.n = n

    def observe(self, call: Call) -> Any:
        return _Counter(self.n)


class _Counter:
    def __init__(self, n: int) -> None:
        self.left = n

    def whole(self, response: Response) -> Response:
        return response

    def event(self, event: StreamEvent) -> bool:
        if isinstance(event, TextDelta):
            self.left -= 1
        return self.left > 0


class Rewrite(Stage):
    """Replaces the user's words (reads and rewrites the neutral request)."""

    needs_request = True

    async def on_request(self, call: Call) -> Response | None:
        first = call.request.messages[0]
        said = dataclasses.replace(first, parts=(Text("rewritten"),))
        call.replace(dataclasses.replace(call.request, messages=(said,)))
        return None


class Seen(Stage):
    """Records what `after` saw."""

    def __init__(self) -> None:
        self.statuses: list[int] = []

    async def after(self, call: Call, status: int) -> None:
        self.statuses.append(status)


async def start(nursery: trio.Nursery, stages: Sequence[Stage], log: Path | None = None) -> str:
    config = parse_config(MOCK, path="test.toml", env={})
    ctx = build_context(config, default_backend="mock", stages=stages, log_file=log)
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}"


# One function per door: (base, model, stream) -> (text, normal finish?)
def _openai(sdk: Clients, base: str, model: str, stream: bool) -> tuple[str, bool]:
    client = sdk.openai(base)
    messages: Any = [{"role": "user", "content": "hi"}]
    if not stream:
        reply = client.chat.completions.create(model=model, messages=messages)
        return reply.choices[0].message.content or "", reply.choices[0].finish_reason == "stop"
    with client.chat.completions.stream(model=model, messages=messages) as events:
        final = events.get_final_completion()
    return final.choices[0].message.content or "", final.choices[0].finish_reason == "stop"


def _anthropic(sdk: Clients, base: str, model: str, stream: bool) -> tuple[str, bool]:
    client = sdk.anthropic(base)
    messages: Any = [{"role": "user", "content": "hi"}]
    if not stream:
        reply = client.messages.create(model=model, max_tokens=64, messages=messages)
    else:
        with client.messages.stream(model=model, max_tokens=64, messages=messages) as events:
            reply = events.get_final_message()
    text = "".join(block.text for block in reply.content if block.type == "text")
    return text, reply.stop_reason == "end_turn"


def _gemini(sdk: Clients, base: str, model: str, stream: bool) -> tuple[str, bool]:
    client = sdk.gemini(base)
    if not stream:
        chunks = [client.models.generate_content(model=model, contents="hi")]
    else:
        chunks = list(client.models.generate_content_stream(model=model, contents="hi"))
    text = "".join(chunk.text or "" for chunk in chunks)
    return text, str(chunks[-1].candidates[0].finish_reason) == "FinishReason.STOP"


def _responses(sdk: Clients, base: str, model: str, stream: bool) -> tuple[str, bool]:
    client = sdk.openai(base)
    if not stream:
        reply = client.responses.create(model=model, input="hi")
    else:
        with client.responses.stream(model=model, input="hi") as events:
            reply = events.get_final_response()
    return reply.output_text, reply.status == "completed"


DOORS: dict[str, Callable[[Clients, str, str, bool], tuple[str, bool]]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "responses": _responses,
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("door", list(DOORS))
async def test_local_answer(
    nursery: trio.Nursery, sdk: Clients, door: str, stream: bool, tmp_path: Path
) -> None:
    seen = Seen()
    log = tmp_path / "log.jsonl"
    base = await start(nursery, [Pong(), seen], log)
    text, finished = await in_thread(lambda: DOORS[door](sdk, base, "local", stream))
    assert (text, finished) == (PONG, True)
    # other models still reach the backend, through the same pipeline
    text, finished = await in_thread(lambda: DOORS[door](sdk, base, "m", stream))
    assert (text, finished) == (FULL, True)
    assert seen.statuses == [200, 200]
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    answers = [e for e in entries if e["direction"] == "client_response"]
    assert [e.get("local") for e in answers] == [True, None]
    assert [e["backend"] for e in entries if e["direction"] == "backend_request"] == ["mock"]


@pytest.mark.parametrize("door", list(DOORS))
async def test_reject_reaches_the_client_in_its_envelope(
    nursery: trio.Nursery, sdk: Clients, door: str
) -> None:
    base = await start(nursery, [Reject()])
    errors = {
        "openai": openai.PermissionDeniedError,
        "responses": openai.PermissionDeniedError,
        "anthropic": anthropic.PermissionDeniedError,
        "gemini": google.genai.errors.ClientError,
    }
    with pytest.raises(errors[door]) as caught:
        await in_thread(lambda: DOORS[door](sdk, base, "forbidden", False))
    assert "not allowed here" in str(caught.value)
    error: Any = caught.value
    assert (error.code if door == "gemini" else error.status_code) == 403


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("door", list(DOORS))
async def test_stage_ends_a_stream_cleanly(
    nursery: trio.Nursery, sdk: Clients, door: str, stream: bool
) -> None:
    base = await start(nursery, [StopAfter(2)])
    text, finished = await in_thread(lambda: DOORS[door](sdk, base, "m", stream))
    assert finished
    if stream:  # two of the mock's four text pieces, then a normal finish
        assert text and FULL.startswith(text) and len(text) < len(FULL)
    else:  # whole answers are only observed
        assert text == FULL


async def test_reject_in_the_raw_gemini_envelope(nursery: trio.Nursery) -> None:
    base = await start(nursery, [Reject()])
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            base + "/v1beta/models/forbidden:generateContent", json={"contents": []}
        )
    assert reply.status_code == 403
    assert reply.json()["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("door", list(DOORS))
async def test_stage_rewrites_the_request(
    nursery: trio.Nursery, sdk: Clients, door: str, stream: bool
) -> None:
    """Same dialect as the mock: the rewritten neutral request is what reaches it."""
    base = await start(nursery, [Rewrite()])
    text, finished = await in_thread(lambda: DOORS[door](sdk, base, "m", stream))
    assert (text, finished) == ('Mock answer to: "rewritten" (images: 0)', True)


async def test_count_requests_go_through_the_request_hooks(nursery: trio.Nursery) -> None:
    base = await start(nursery, [Reject()])
    headers = {"anthropic-version": "2023-06-01"}
    body = {"model": "forbidden", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=base) as client:
        refused = await client.post("/v1/messages/count_tokens", json=body, headers=headers)
        body["model"] = "m"
        counted = await client.post("/v1/messages/count_tokens", json=body, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
