"""The store on a real Redis Cluster (tests/redis_cluster.py: three masters joined by
redis-cli): slot routing, MOVED from a seed node that does not own the slot, a slot
moved mid-run, ASK while a slot migrates, TRYAGAIN bounded, a master killed and revived,
and two louters sharing the cluster for their limits and sessions."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
import trio

from louter.proxy.store import Limit
from louter.proxy.store.cluster import MAX_REDIRECTIONS, Router, key_of, slot_of
from louter.proxy.store.guarded import GuardedStore
from louter.proxy.store.memory import MemoryStore
from louter.proxy.store.redis import RedisStore
from louter.proxy.store.resp import Arg, Pool
from louter.proxy.store.types import StoreError
from tests.proxy.test_limits import HI, MOCK, start
from tests.redis_cluster import RedisCluster, call, redis_cluster  # noqa: F401 - a fixture
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture

HOUR = 3600.0
_prefixes = itertools.count()


def _store(port: int, prefix: str) -> RedisStore:
    def pool(host: str, port: int) -> Pool:
        return Pool(host, port, size=4)

    return RedisStore(Router(pool("127.0.0.1", port), pool), prefix)


def _router(store: RedisStore) -> Router:
    assert isinstance(store.pool, Router)
    return store.pool


def _bucket_slot(prefix: str) -> int:
    """The one slot of every bucket and lease set under `prefix` (their tag `{PREFIX}`)."""
    return slot_of(f"{{{prefix}}}:b:any")


def _fresh_prefix() -> str:
    return f"cl{next(_prefixes)}x{time.monotonic_ns() % 100000}"


@pytest.fixture
async def seeded(redis_cluster: RedisCluster) -> AsyncIterator[tuple[RedisStore, int, str]]:  # noqa: F811
    """A store seeded at a node that does NOT own its buckets' slot, the owner's port,
    and the prefix."""
    prefix = _fresh_prefix()
    owner = redis_cluster.owner(_bucket_slot(prefix))
    store = _store(redis_cluster.other_than(owner), prefix)
    yield store, owner, prefix
    await store.aclose()


def test_the_slot_is_the_one_redis_computes(redis_cluster: RedisCluster) -> None:  # noqa: F811
    port = redis_cluster.ports[0]
    for key in ["a", "{louter}:b:key:alice", "{louter:v:sess:1}", "x{}y", "{}{z}", "{a}{b}", "é"]:
        assert slot_of(key) == call(port, "CLUSTER", "KEYSLOT", key), key
    assert key_of(("EVALSHA", "f00", 2, "{p}:b:a", "{p}:b:b", 1.0)) == "{p}:b:a"
    assert key_of(("GET", "k")) == "k"
    assert key_of(("CLUSTER", "SLOTS")) is None
    assert key_of(("EVAL", "return 1", 0)) is None


async def _every_call(store: RedisStore) -> None:
    """Every Store call once, with several scopes where a call takes several keys."""
    hour, minute = Limit(100, HOUR), Limit(10, 60)
    decision = await store.reserve(["key:a", "model:m"], [1, 5], [hour, minute])
    assert decision.allowed and decision.remaining == (99, 5)
    admitted = await store.admit(
        ["key:a", "model:m"], [1, 1], [hour, minute], ["c:a", "c:m"], [2, 2], 30
    )
    assert admitted.allowed and admitted.lease is not None
    await store.renew(["c:a", "c:m"], admitted.lease, 60)
    await store.release(["c:a", "c:m"], admitted.lease)
    await store.settle("model:m", minute, -4)
    lease = await store.acquire(["c:a", "c:b"], [1, 1], 30)
    assert lease is not None and await store.acquire(["c:a"], [1], 30) is None
    await store.release(["c:a", "c:b"], lease)
    await store.set("sess:1", b"one", 60)
    await store.set("sess:2", b"two")
    assert await store.get("sess:1") == b"one" and await store.get("sess:2") == b"two"
    await store.delete("sess:2")
    assert await store.get("sess:2") is None
    assert await store.incr("n", 2, 60) == 2 and await store.incr("n") == 3
    await store.hincr("day", {"in": 3, "out": 4}, 60)
    assert await store.hgetall("day") == {"in": 3, "out": 4}
    assert await store.spend("budget", 10, 6, 60) == (True, 6)
    assert await store.spend("budget", 5, 1, 60) == (False, 6)


async def test_every_call_works_from_a_seed_that_does_not_own_the_slot(
    redis_cluster: RedisCluster,  # noqa: F811
    seeded: tuple[RedisStore, int, str],
) -> None:
    store, owner, prefix = seeded
    router = _router(store)
    sent: list[Sequence[Arg]] = []
    run = Pool.run

    async def watched(pool: Pool, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        sent.extend(commands)
        return await run(pool, commands)

    Pool.run = watched  # type: ignore[method-assign]
    try:
        await _every_call(store)
    finally:
        Pool.run = run  # type: ignore[method-assign]
    assert router.cluster and router.redirections >= 1  # the seed said MOVED
    scripts_and_multi_key = [c for c in sent if c[0] in ("EVALSHA", "EVAL")]
    for command in scripts_and_multi_key:  # every script's keys in one slot (hash tags)
        keys = command[3 : 3 + int(command[2])]
        assert len({slot_of(k) for k in keys}) == 1, command
    buckets = [k for k in redis_cluster.keys_on(owner) if k.startswith(b"{%s}" % prefix.encode())]
    assert buckets, "the buckets and lease sets live on the slot's owner"
    values = {f"{{{prefix}:v:{name}}}": name for name in ("sess:1", "n", "day", "budget")}
    for key in values:  # each value on its own slot's master
        assert key.encode() in redis_cluster.keys_on(redis_cluster.owner(slot_of(key)))
    before = router.redirections
    await store.reserve(["key:a"], [1], [Limit(100, HOUR)])
    await store.get("sess:1")
    assert router.redirections == before  # the map is loaded: straight to the owners


async def test_a_slot_moved_mid_run_is_followed(
    redis_cluster: RedisCluster,  # noqa: F811
    seeded: tuple[RedisStore, int, str],
) -> None:
    store, owner, prefix = seeded
    router = _router(store)
    limit = Limit(10, HOUR)
    assert (await store.reserve(["k"], [3], [limit])).remaining == (7,)
    target = redis_cluster.other_than(owner)
    assert call(target, "SCRIPT", "FLUSH") == b"OK"  # the new node has to load the script
    redis_cluster.move_slot(_bucket_slot(prefix), owner, target)
    before = router.redirections
    decision = await store.reserve(["k"], [2], [limit])
    assert decision.remaining == (5,)  # the bucket moved with its slot, and is still exact
    assert router.redirections == before + 1  # one MOVED, then remembered
    assert (await store.reserve(["k"], [1], [limit])).remaining == (4,)
    assert router.redirections == before + 1
    redis_cluster.move_slot(_bucket_slot(prefix), target, owner)  # as it was


async def test_ask_while_a_slot_migrates(
    redis_cluster: RedisCluster,  # noqa: F811
    seeded: tuple[RedisStore, int, str],
) -> None:
    store, _, prefix = seeded
    router = _router(store)
    await store.set("old", b"here")
    slot = slot_of(f"{{{prefix}:v:old}}")
    source = redis_cluster.owner(slot)
    target = redis_cluster.other_than(source)
    assert call(target, "SCRIPT", "FLUSH") == b"OK"  # the script must be loaded over ASK
    written, counted = _same_slot_names(prefix, slot, 2)
    redis_cluster.begin_migration(slot, source, target)
    try:
        before = router.redirections
        assert await store.get("old") == b"here"  # still on the source: served there
        assert router.redirections == before
        await store.set(written, b"arrived", 60)  # not on the source: ASK, then the target
        assert await store.get(written) == b"arrived"
        assert await store.incr(counted, 5, 60) == 5  # EVALSHA, ASK, NOSCRIPT, EVAL, ASK
        assert router.redirections >= before + 3
        on_target = redis_cluster.keys_on(target)
        for name in (written, counted):
            assert f"{{{prefix}:v:{name}}}".encode() in on_target
        assert router._slots[slot].port == source  # ASK does not change the map
    finally:
        redis_cluster.finish_migration(slot, source, target)
    before = router.redirections
    assert await store.get("old") == b"here"  # MOVED now, and remembered
    assert await store.get(written) == b"arrived"
    assert router.redirections == before + 1
    assert router._slots[slot].port == target
    redis_cluster.move_slot(slot, target, source)  # as it was


def _same_slot_names(prefix: str, slot: int, count: int) -> list[str]:
    """`count` value names whose keys `{PREFIX:v:NAME}` fall in `slot`."""
    names = (f"s{number}" for number in itertools.count())
    return list(
        itertools.islice((n for n in names if slot_of(f"{{{prefix}:v:{n}}}") == slot), count)
    )


async def test_tryagain_is_retried_a_bounded_number_of_times(
    redis_cluster: RedisCluster,  # noqa: F811
    seeded: tuple[RedisStore, int, str],
) -> None:
    """A two-bucket script while its slot migrates and only one bucket has moved: the
    cluster says TRYAGAIN; the router pauses and asks again, then gives up (a StoreError,
    which GuardedStore turns into the declared failure mode)."""
    store, owner, prefix = seeded
    limit = Limit(10, HOUR)
    assert (await store.reserve(["a", "b"], [1, 1], [limit, limit])).allowed
    slot = _bucket_slot(prefix)
    target = redis_cluster.other_than(owner)
    redis_cluster.begin_migration(slot, owner, target)
    try:
        moved = f"{{{prefix}}}:b:a"
        assert call(owner, "MIGRATE", "127.0.0.1", target, moved, 0, 5000) == b"OK"
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"more than {MAX_REDIRECTIONS} redirections"):
            await store.reserve(["a", "b"], [1, 1], [limit, limit])
        assert time.monotonic() - started < 0.5
    finally:
        redis_cluster.finish_migration(slot, owner, target)
    assert (await store.reserve(["a", "b"], [1, 1], [limit, limit])).remaining == (8, 8)
    redis_cluster.move_slot(slot, target, owner)


async def test_a_master_killed_then_revived(
    redis_cluster: RedisCluster,  # noqa: F811
    seeded: tuple[RedisStore, int, str],
) -> None:
    """The master of the buckets' slot dies: each call ends within op_timeout_ms on the
    local fallback; once it is back the store reloads the map and uses the cluster again."""
    remote, owner, _ = seeded
    warnings: list[str] = []
    store = GuardedStore(
        remote, MemoryStore(), op_timeout=0.05, on_error="local", metrics=None, warn=warnings.append
    )
    limit = Limit(100, HOUR)
    assert (await store.reserve(["k"], [10], [limit])).remaining == (90,)
    redis_cluster.kill(owner)
    try:
        for _ in range(3):
            started = time.monotonic()
            decision = await store.reserve(["k"], [10], [limit])
            assert time.monotonic() - started < 0.05 + 0.1
            assert decision.allowed  # on_error = "local"
        assert decision.remaining == (70,)  # the local store counted the three
        assert len(warnings) == 1 and "redis failed on reserve" in warnings[0]
    finally:
        redis_cluster.revive(owner)
    deadline = time.monotonic() + 5
    while not warnings[-1].startswith("store: redis answers again"):
        assert time.monotonic() < deadline, warnings
        await trio.sleep(0.05)
        await store.reserve(["k"], [1], [limit])
    assert (await store.reserve(["k"], [1], [limit])).remaining == (98,)  # the revived master


async def test_a_plain_redis_is_never_treated_as_a_cluster(redis_server: RedisServer) -> None:  # noqa: F811
    store = _store(redis_server.port, "plain")
    await _every_call(store)
    router = _router(store)
    assert not router.cluster and router.redirections == 0 and router._slots == []
    await store.aclose()


async def test_two_louters_share_their_limits_through_a_cluster(
    nursery: trio.Nursery,
    redis_cluster: RedisCluster,  # noqa: F811
) -> None:
    """`[store] url` names a node that does not own louter's slot: both louters find the
    cluster by its first MOVED and admit exactly rpm = 7 of 30 requests between them."""
    prefix = _fresh_prefix()
    seed = redis_cluster.other_than(redis_cluster.owner(_bucket_slot(prefix)))
    toml = (
        MOCK
        + f'[store]\nurl = "{redis_cluster.url(seed)}"\nkey_prefix = "{prefix}"\n'
        + "op_timeout_ms = 500\n[limits.default]\nrpm = 7\nmax_concurrent = 30\n"
    )
    started = [await start(nursery, toml) for _ in range(2)]
    statuses: list[int] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=40)) as client:

        async def ask(base: str) -> None:
            body = {"model": "m", "messages": HI}
            reply = await client.post(base + "/v1/chat/completions", json=body)
            statuses.append(reply.status_code)

        async with trio.open_nursery() as inner:
            for number in range(30):
                inner.start_soon(ask, started[number % 2][0])
    assert sorted(statuses) == [200] * 7 + [429] * 23
    for _, ctx in started:
        router = ctx.store.remote.pool  # type: ignore[attr-defined]
        assert router.cluster and router.redirections >= 1
        assert ctx.metrics is not None
        assert b"store_errors_total{" not in ctx.metrics.render()
