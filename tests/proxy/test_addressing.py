"""`backend:model` with a backend that is not configured (issue 19): a 400 in the client's
envelope at all five doors, listing the backends, when the whole name is known not to be
served (the default pool backend's model list lacks it); a name with a colon that the
list has (`qwen3:8b`), or one no list can judge, is passed on unchanged. The commands
`!/model(nope:x)` and `!/set(model=nope:x)` get the same answer, locally. Raw HTTP on
loopback against fake OpenAI upstreams whose `GET /v1/models` lists their models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import trio

from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, Recorded
from tests.proxy.test_sessions import answering, config_for

BACKENDS = "backends: first, second, mock, openai, gemini, anthropic, openrouter"
UNKNOWN = f"unknown backend 'nope' in model 'nope:gpt-4'; {BACKENDS}"


def listing(name: str, models: list[str] | None) -> Callable[[Recorded], Any]:
    """Answers like `answering(name)`; `GET /v1/models` lists `models` (None: a page
    without a list, so the backend's list stays unknown)."""
    answer = answering(name)

    def reply(request: Recorded) -> Any:
        if request.method == "GET" and models is None:
            return JSONReply({"oops": True})
        if request.method == "GET":
            return JSONReply({"object": "list", "data": [{"id": m} for m in models]})
        return answer(request)

    return reply


async def louter(
    nursery: trio.Nursery, start_louter: StartLouter, models: list[str] | None
) -> tuple[str, FakeUpstream, FakeUpstream]:
    first = FakeUpstream(listing("first", models))
    second = FakeUpstream(listing("second", ["second-real"]))
    await nursery.start(first.serve)
    await nursery.start(second.serve)
    return await start_louter(config_for(first, second)), first, second


def posted(fake: FakeUpstream) -> list[str]:
    """The model of every generate request the fake got (its list reads left out)."""
    return [r.json["model"] for r in fake.requests if r.method == "POST"]


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def door_requests(model: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Door -> (path, body) naming `model`."""
    messages = [{"role": "user", "content": "hi"}]
    return {
        "openai": ("/v1/chat/completions", {"model": model, "messages": messages}),
        "anthropic": ("/v1/messages", {"model": model, "messages": messages, "max_tokens": 9}),
        "responses": ("/v1/responses", {"model": model, "input": "hi"}),
        "completions": ("/v1/completions", {"model": model, "prompt": "hi"}),
        "gemini": (f"/v1beta/models/{model}:generateContent", GEMINI_BODY),
    }


def error_message(door: str, reply: httpx.Response) -> str:
    """The message of `reply`'s error envelope, checked to be `door`'s dialect's."""
    body = reply.json()
    if door == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    elif door == "gemini":
        assert body["error"]["code"] == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    else:
        assert body["error"]["type"] == "invalid_request_error", body
    return str(body["error"]["message"])


async def test_an_unknown_backend_is_a_400_in_every_door(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    base, first, second = await louter(nursery, start_louter, ["gpt-test", "qwen3:8b"])
    async with httpx.AsyncClient(base_url=base) as http:
        for door, (path, body) in door_requests("nope:gpt-4").items():
            reply = await http.post(path, json=body)
            assert reply.status_code == 400, (door, reply.text)
            assert error_message(door, reply) == UNKNOWN, door
        streamed = await http.post(
            "/v1/chat/completions",
            json={"model": "nope:gpt-4", "messages": [{"role": "user", "content": "hi"}],
                  "stream": True},
        )  # fmt: skip
        assert streamed.status_code == 400 and UNKNOWN in streamed.text
        counted = await http.post(
            "/v1/messages/count_tokens",
            json={"model": "nope:gpt-4", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert counted.status_code == 400 and error_message("anthropic", counted) == UNKNOWN
        # a name with a colon that the default backend lists goes there, as written
        for door, (path, body) in door_requests("qwen3:8b").items():
            assert (await http.post(path, json=body)).status_code == 200, door
    assert posted(first) == ["qwen3:8b"] * 5
    assert posted(second) == []


async def test_a_name_no_list_can_judge_is_passed_on(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    base, first, _ = await louter(nursery, start_louter, None)  # first's list is unreadable
    async with httpx.AsyncClient(base_url=base) as http:
        for door, (path, body) in door_requests("nope:gpt-4").items():
            assert (await http.post(path, json=body)).status_code == 200, door
    assert posted(first) == ["nope:gpt-4"] * 5


async def test_a_runtime_route_or_a_mapping_serves_a_name_with_any_prefix(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    base, first, second = await louter(nursery, start_louter, ["gpt-test"])
    async with httpx.AsyncClient(base_url=base) as http:

        async def say(text: str, model: str = "gpt-test") -> httpx.Response:
            body = {"model": model, "messages": [{"role": "user", "content": text}]}
            return await http.post("/v1/chat/completions", json=body)

        assert (await say("hi", "nope:gpt-4")).status_code == 400
        routed = await say("!/route-append(nope:gpt-4, second:routed)")
        assert routed.json()["choices"][0]["message"]["content"] == (
            "route for nope:gpt-4: second:routed"
        )
        assert (await say("hi", "nope:gpt-4")).status_code == 200
    assert posted(second) == ["routed"]


async def test_model_commands_refuse_an_unknown_backend_locally(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    base, first, _ = await louter(nursery, start_louter, ["gpt-test", "qwen3:8b"])
    sid = {"x-session-id": "addr-1"}
    async with httpx.AsyncClient(base_url=base, headers=sid) as http:

        async def say(text: str) -> str:
            body = {"model": "gpt-test", "messages": [{"role": "user", "content": text}]}
            reply = await http.post("/v1/chat/completions", json=body)
            assert reply.status_code == 200, reply.text
            return str(reply.json()["choices"][0]["message"]["content"])

        assert await say("!/model(nope:x)") == (
            f"!/model(nope:x): unknown backend 'nope' in model 'nope:x'; {BACKENDS}"
        )
        assert await say("!/set(model=nope:x)") == (
            f"!/set(model=nope:x): unknown backend 'nope' in model 'nope:x'; {BACKENDS}"
        )
        assert (await say("!/backend(nope)")).endswith(f"unknown backend 'nope'; {BACKENDS}")
        assert await say("!/oneoff(nope:x)") == (
            f"!/oneoff(nope:x): unknown backend 'nope'; {BACKENDS}"
        )
        assert "Settings: none" in await say("!/hello")
        assert await say("!/model(qwen3:8b)") == "model set to qwen3:8b"
        assert await say("hi") == "from first ok"
    assert posted(first) == ["qwen3:8b"]
