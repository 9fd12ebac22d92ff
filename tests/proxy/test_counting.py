"""Token counting by the backend (`openai_token_counting_mode = "backend"`) goes through
the attempt loop like any request: a failing backend is failed over, its breaker and the
metrics see the attempt, and a last failure reaches the client in its own envelope."""

from __future__ import annotations

import httpx
import trio

from louter.config import parse_config
from louter.proxy.app import build_context, serve
from tests.fakes import FakeUpstream, JSONReply, chat_completion

USAGE = {"prompt_tokens": 42, "completion_tokens": 1, "total_tokens": 43}
ANTHROPIC = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant"}
BODY = {"model": "m", "messages": [{"role": "user", "content": "count me"}]}


def config(first: int, second: int) -> str:
    return (
        '[performance]\nopenai_token_counting_mode = "backend"\nenable_metrics = true\n'
        + "".join(
            f'[backends.{name}]\nurl = "http://127.0.0.1:{port}/v1"\npriority = {priority}\n'
            f'max_retries = 0\n[backends.{name}.model_mapping]\n"m" = "real-{name}"\n'
            for name, port, priority in (("first", first, 1), ("second", second, 2))
        )
    )


async def start(nursery: trio.Nursery) -> tuple[str, FakeUpstream, FakeUpstream]:
    fakes = FakeUpstream(), FakeUpstream()
    for fake in fakes:
        await nursery.start(fake.serve)
    parsed = parse_config(config(fakes[0].port, fakes[1].port), path="t.toml", env={})
    ctx = build_context(parsed, default_backend="first")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}", *fakes


async def test_count_fails_over_and_is_counted(nursery: trio.Nursery) -> None:
    base, first, second = await start(nursery)
    first.script(JSONReply({"error": {"message": "overloaded"}}, status=503))
    second.script(JSONReply(chat_completion("x", usage=USAGE)))
    async with httpx.AsyncClient(base_url=base) as client:
        reply = await client.post("/v1/messages/count_tokens", json=BODY, headers=ANTHROPIC)
        health = (await client.get("/health")).json()
        metrics = (await client.get("/metrics")).text
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"input_tokens": 42}
    assert [len(first.requests), len(second.requests)] == [1, 1]
    sent = second.requests[0]
    assert (sent.json["max_tokens"], sent.json["model"]) == (1, "real-second")
    assert health["backends"]["first"]["consecutive_failures"] == 1
    assert 'routing_decisions_total{backend="first",outcome="failed"} 1.0' in metrics
    assert 'routing_decisions_total{backend="second",outcome="served"} 1.0' in metrics


async def test_last_failure_reaches_the_client_in_its_envelope(nursery: trio.Nursery) -> None:
    base, first, second = await start(nursery)
    for fake in (first, second):
        fake.script(JSONReply({"error": {"message": "slow down"}}, status=429))
    async with httpx.AsyncClient(base_url=base) as client:
        reply = await client.post("/v1/messages/count_tokens", json=BODY, headers=ANTHROPIC)
    assert reply.status_code == 429
    assert reply.json()["type"] == "error"
    assert reply.json()["error"]["message"] == "slow down"
