"""`/health/cache` with the cache in Redis: `entries` and `size_bytes` are counted as
entries are stored (Redis expires them unseen), per time slot, by every louter on the
Redis; a slot older than the TTL no longer counts. Against a real Redis."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from louter.config import parse_config
from louter.proxy.app import build_context, serve
from louter.proxy.cache.entries import KEY_PREFIX, SLOTS, StoreEntries
from louter.proxy.store import build_store
from louter.proxy.store.resp import Pool
from tests.fakes import FakeUpstream, JSONReply, chat_completion
from tests.proxy.doors_sdk import Ask, ask
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture
from tests.sdk import Clients, in_thread


async def _louter(nursery: trio.Nursery, fake: FakeUpstream, redis_url: str) -> str:
    text = f"""
[backends.up]
url = "{fake.url}"
api_key = "sk-up"
[store]
url = "{redis_url}"
op_timeout_ms = 500
[cache]
enabled = true
ttl_seconds = 600
"""
    ctx = build_context(parse_config(text, path="t", env={}), default_backend="up")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}"


async def _stored_bytes(redis: RedisServer) -> int:
    """Keys and values of every cache entry in Redis, in bytes (asked of Redis)."""
    pool = Pool("127.0.0.1", int(redis.url.rsplit(":", 1)[1].split("/")[0]), size=1)
    try:
        (keys,) = await pool.run([("KEYS", "*" + KEY_PREFIX + "*")])
        sizes = await pool.run([("STRLEN", key) for key in keys])
    finally:
        pool.reset()
    prefix = len("{louter:v:")  # the store's own wrapping is not the entry's
    return sum(len(key) - prefix - 1 + size for key, size in zip(keys, sizes, strict=True))


async def test_health_counts_the_entries_of_every_louter_on_the_redis(
    nursery: trio.Nursery,
    sdk: Clients,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    fake = FakeUpstream(JSONReply(chat_completion("an answer")))
    await nursery.start(fake.serve)
    one = await _louter(nursery, fake, redis_server.url)
    two = await _louter(nursery, fake, redis_server.url)
    for base, text in ((one, "a"), (two, "bb"), (one, "ccc"), (two, "a")):  # the last: a hit
        await in_thread(lambda base=base, text=text: ask(sdk, "openai", base, Ask(text=text)))
    async with httpx.AsyncClient() as client:
        health = [(await client.get(base + "/health/cache")).json() for base in (one, two)]
    assert [h["storage"] for h in health] == ["store", "store"]
    assert [h["counted"] for h in health] == ["estimate", "estimate"]
    assert [h["entries"] for h in health] == [3, 3]
    assert health[0]["size_bytes"] == health[1]["size_bytes"] == await _stored_bytes(redis_server)
    assert len(fake.requests) == 3


async def test_slots_older_than_the_ttl_stop_counting(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    config = parse_config(f'[store]\nurl = "{redis_server.url}"\n', path="t", env={})
    assert config.store is not None
    store: Any = build_store(config.store)
    now = [10_000.0]
    entries = StoreEntries(store, 160.0, lambda: now[0])  # slots of 160 / SLOTS = 10 s
    assert SLOTS == 16
    await entries.set("k1", b"x" * 10, 160.0)
    now[0] += 100
    await entries.set("k2", b"y" * 30, 160.0)
    assert await entries.count() == {"entries": 2, "size_bytes": 2 * len(KEY_PREFIX) + 44}
    now[0] += 70  # k1's slot (10 000 - 10 010) is past the TTL, k2's is not
    assert await entries.count() == {"entries": 1, "size_bytes": len(KEY_PREFIX) + 32}
    now[0] += 165
    assert await entries.count() == {"entries": 0, "size_bytes": 0}
    assert await entries.get("k2") == b"y" * 30  # Redis keeps its own time
    await store.aclose()
