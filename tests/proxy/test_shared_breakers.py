"""Circuit breakers shared through the store (louter/proxy/shared_breakers.py, issue 23):
a backend opened by one louter is skipped by every louter on the same store until its
cool-down ends, and a merge never shortens a cool-down. Two louters in this process
share a real redis-server; the merge rules are checked on a MemoryStore."""

from __future__ import annotations

import httpx
import trio

from louter.config import parse_config
from louter.proxy.app import build_context, serve
from louter.proxy.breaker import COOLING_DOWN, HEALTHY, Breaker
from louter.proxy.scrub import Scrubber
from louter.proxy.shared_breakers import SharedBreakers
from louter.proxy.store import MemoryStore
from tests.fakes import FakeUpstream, JSONReply
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_merge_opens_a_breaker_and_only_ever_extends_its_cool_down() -> None:
    clock = Clock()
    breaker = Breaker(2, 30.0, clock)
    breaker.merge(clock.now - 1, "past")  # over already: nothing
    assert breaker.state == HEALTHY
    breaker.merge(clock.now + 20, "elsewhere")
    assert breaker.state == COOLING_DOWN
    assert breaker.remaining() == 20
    assert breaker.last_error == "elsewhere"
    breaker.merge(clock.now + 5, "shorter")
    assert breaker.remaining() == 20
    breaker.merge(clock.now + 25, "longer")
    assert breaker.remaining() == 25
    off = Breaker(0, 30.0, clock)  # a breaker turned off stays off
    off.merge(clock.now + 20, "elsewhere")
    assert off.state == HEALTHY


async def test_publish_and_refresh_through_one_store() -> None:
    store, wall, clock = MemoryStore(), Clock(), Clock()
    mine = {"up": Breaker(1, 30.0, clock)}
    theirs = {"up": Breaker(1, 30.0, clock)}
    here = SharedBreakers(mine, store, wall=wall, scrub=Scrubber(()))
    there = SharedBreakers(theirs, store, wall=wall, scrub=Scrubber(()))
    theirs["up"].fail("boom")  # opens there, for 30 s
    await there.publish()
    await here.refresh()
    assert mine["up"].state == COOLING_DOWN
    assert mine["up"].remaining() == 30
    assert mine["up"].last_error == "boom"
    clock.now += 10
    wall.now += 10
    mine["up"].cooldown = 5.0
    mine["up"].fail("short")  # a 5 s cool-down here does not shorten the shared 20 s left
    await here.publish()
    await there.refresh()
    assert theirs["up"].remaining() == 20


async def test_no_store_means_no_shared_breakers() -> None:
    config = parse_config('[backends.mock]\nprotocol = "mock"\n', path="t.toml", env={})
    ctx = build_context(config, default_backend="mock")
    assert ctx.shared_breakers is None
    assert all(b.on_open is None for b in ctx.router.breakers.values())


async def test_a_backend_opened_through_one_louter_is_skipped_by_the_other(
    nursery: trio.Nursery,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    fake = FakeUpstream(default=JSONReply({"error": {"message": "down"}}, status=500))
    await nursery.start(fake.serve)
    toml = (
        f'[backends.up]\nprotocol = "openai"\nurl = "{fake.url}"\n'
        "[performance]\nfailure_threshold = 1\ncooldown_seconds = 60\n"
        f'[store]\nurl = "{redis_server.url}"\nop_timeout_ms = 500\n'
    )
    config = parse_config(toml, path="t.toml", env={})
    bases = []
    for _ in range(2):
        ctx = build_context(config, default_backend="up")
        port = await nursery.start(serve, ctx, "127.0.0.1", 0)
        bases.append(f"http://127.0.0.1:{port}")
    one, other = bases
    async with httpx.AsyncClient(timeout=10) as client:
        failed = await client.post(one + "/v1/chat/completions", json=BODY)
        assert failed.status_code >= 500
        assert len(fake.requests) == 1
        with trio.fail_after(5):  # within the other's refresh interval
            while True:
                health = (await client.get(other + "/health")).json()
                if health["backends"]["up"]["state"] == COOLING_DOWN:
                    break
                await trio.sleep(0.05)
        assert health["status"] == "unavailable"
        skipped = await client.post(other + "/v1/chat/completions", json=BODY)
        assert skipped.status_code == 503
        assert len(fake.requests) == 1  # the other louter never sent it
        assert "up" in skipped.text
