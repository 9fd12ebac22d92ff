"""The state store (issue 18 deliverable 4): the same behaviour from MemoryStore and from
RedisStore against a real redis-server, two RedisStore clients standing for two louter
instances; deadlines and failure modes with Redis gone or silent."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
import trio

from louter.config import parse_config
from louter.proxy.metrics import Metrics, StoreMetrics
from louter.proxy.store import Limit, MemoryStore, Store, build_store
from louter.proxy.store.guarded import GuardedStore
from louter.proxy.store.redis import RedisStore
from louter.proxy.store.resp import Pool
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture

HOUR = 3600.0  # a window long enough that refill during a test is far below one token
_prefixes = itertools.count()


def _redis(server: RedisServer, prefix: str) -> RedisStore:
    return RedisStore(Pool("127.0.0.1", server.port, size=4), prefix)


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Store, Store]]:
    """Two handles on one shared state: the same MemoryStore twice, or two RedisStore
    clients (two louter instances) with their own connection pools on one redis-server."""
    if request.param == "memory":
        store = MemoryStore()
        yield store, store
        return
    server = request.getfixturevalue("redis_server")
    prefix = f"t{next(_prefixes)}"
    first, second = _redis(server, prefix), _redis(server, prefix)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_exactly_n_of_m_concurrent_reserves_are_admitted(pair: tuple[Store, Store]) -> None:
    admitted: list[bool] = []
    limit = Limit(10, HOUR)

    async def one(store: Store) -> None:
        decision = await store.reserve(["key:alice"], [1], [limit])
        admitted.append(decision.allowed)

    async with trio.open_nursery() as nursery:
        for index in range(40):
            nursery.start_soon(one, pair[index % 2])
    assert admitted.count(True) == 10
    assert len(admitted) == 40


async def test_multi_scope_reserve_is_all_or_nothing(pair: tuple[Store, Store]) -> None:
    a, b = pair
    keys, limits = ["key:alice", "model:gpt"], [Limit(5, HOUR), Limit(2, HOUR)]
    for _ in range(2):
        assert (await a.reserve(keys, [1, 1], limits)).allowed
    refused = await b.reserve(keys, [1, 1], limits)
    assert not refused.allowed
    assert refused.retry_after > 0
    assert refused.remaining == (3, 0)  # the refusal charged neither scope
    assert (await b.reserve(["key:alice"], [3], limits[:1])).allowed
    left = await a.reserve(["key:alice"], [1], limits[:1])
    assert not left.allowed and left.remaining == (0,)


async def test_refusal_tells_when_to_retry(pair: tuple[Store, Store]) -> None:
    a, _ = pair
    limit = Limit(60, 60)  # one token a second
    assert (await a.reserve(["rpm"], [60], [limit])).allowed
    refused = await a.reserve(["rpm"], [3], [limit])
    assert not refused.allowed
    assert 2.5 < refused.retry_after <= 3.01
    assert refused.reset[0] > 55


async def test_settle_adjusts_a_reservation(pair: tuple[Store, Store]) -> None:
    a, b = pair
    limit = Limit(100, HOUR)
    first = await a.reserve(["tpm"], [50], [limit])
    assert first.allowed and first.remaining == (50,)
    await b.settle("tpm", limit, 30)  # the answer used 30 more than the estimate
    assert not (await a.reserve(["tpm"], [21], [limit])).allowed
    await a.settle("tpm", limit, -40)  # then 40 fewer: refunded
    assert (await b.reserve(["tpm"], [60], [limit])).allowed
    assert not (await b.reserve(["tpm"], [1], [limit])).allowed


async def test_many_settles_at_once_all_count(pair: tuple[Store, Store]) -> None:
    a, b = pair
    limit = Limit(1000, HOUR)
    async with trio.open_nursery() as nursery:
        for index in range(100):
            nursery.start_soon((a, b)[index % 2].settle, "tpm", limit, 5)
    decision = await a.reserve(["tpm"], [1], [limit])
    assert decision.remaining == (499,)


async def test_concurrency_never_exceeds_the_cap(pair: tuple[Store, Store]) -> None:
    inside, most, served = 0, 0, 0

    async def one(store: Store) -> None:
        nonlocal inside, most, served
        for _ in range(3):
            lease = await store.acquire(["key:alice", "backend:x"], [3, 5], 10)
            if lease is None:
                await trio.sleep(0.002)
                continue
            inside += 1
            most = max(most, inside)
            await trio.sleep(0.005)
            inside -= 1
            served += 1
            await store.release(["key:alice", "backend:x"], lease)

    async with trio.open_nursery() as nursery:
        for index in range(30):
            nursery.start_soon(one, pair[index % 2])
    assert most == 3
    assert served >= 3
    assert await pair[0].acquire(["key:alice"], [3], 10) is not None  # all released


async def test_leases_expire_and_renew(pair: tuple[Store, Store]) -> None:
    a, b = pair
    crashed = await a.acquire(["c"], [1], 0.2)  # an instance that dies holding its slot
    assert crashed is not None
    assert await b.acquire(["c"], [1], 0.2) is None
    await trio.sleep(0.3)
    lease = await b.acquire(["c"], [1], 0.2)
    assert lease is not None
    await trio.sleep(0.1)
    await b.renew(["c"], lease, 5)
    await trio.sleep(0.2)
    assert await a.acquire(["c"], [1], 0.2) is None  # renewed: still held


async def test_values_and_counters_expire(pair: tuple[Store, Store]) -> None:
    a, b = pair
    await a.set("session:1", b"route-a", 0.2)
    await a.set("forever", b"x")
    assert await b.get("session:1") == b"route-a"
    assert await b.incr("usage", 2, 0.2) == 2
    assert await a.incr("usage", 3) == 5
    await trio.sleep(0.3)
    assert await b.get("session:1") is None
    assert await a.incr("usage") == 1  # a new window
    assert await b.get("forever") == b"x"
    await b.delete("forever")
    assert await a.get("forever") is None


# --------------------------------------------------------------------------- failure modes

TIMEOUT = 0.05
MARGIN = 0.05  # scheduling slack on a shared 2-core machine


def _guarded(port: int, mode: str, warnings: list[str]) -> tuple[GuardedStore, StoreMetrics]:
    metrics = StoreMetrics()
    store = GuardedStore(
        RedisStore(Pool("127.0.0.1", port, size=2), f"g{next(_prefixes)}"),
        MemoryStore(),
        op_timeout=TIMEOUT,
        on_error=mode,
        metrics=metrics,
        warn=warnings.append,
    )
    return store, metrics


async def _timed(call):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


EXPECTED = {"local": (True, True), "open": (True, True), "closed": (False, False)}


@pytest.mark.parametrize("mode", ["local", "open", "closed"])
async def test_redis_stopped_mid_run(redis_server: RedisServer, mode: str) -> None:  # noqa: F811
    warnings: list[str] = []
    store, metrics = _guarded(redis_server.port, mode, warnings)
    limit = Limit(100, HOUR)
    assert (await store.reserve(["k"], [10], [limit])).remaining == (90,)
    answered = metrics.latency["reserve"]
    assert sum(answered.counts) == 1
    redis_server.stop()
    allowed, admitted = EXPECTED[mode]
    for _ in range(3):
        decision, took = await _timed(store.reserve(["k"], [10], [limit]))
        assert decision.allowed is allowed
        assert took < TIMEOUT + MARGIN
        lease, took = await _timed(store.acquire(["c"], [1], 5))
        assert (lease is not None) is admitted
        assert took < TIMEOUT + MARGIN
        if lease is not None:
            await store.release(["c"], lease)
    if mode == "local":  # the fallback counts locally: 100 tokens, 30 spent just now
        assert decision.remaining == (70,)
    assert metrics.errors["reserve"].value == 3
    assert len(warnings) == 1 and "redis failed" in warnings[0]
    redis_server.start()
    deadline = time.monotonic() + 5
    while sum(answered.counts) == 1:
        assert time.monotonic() < deadline, "the store never went back to redis"
        await trio.sleep(0.05)
        await store.reserve(["k"], [1], [limit])
    assert (await store.reserve(["k"], [1], [limit])).allowed  # redis again (a fresh one)
    assert "answers again" in warnings[-1]
    await store.aclose()


async def test_a_silent_redis_cannot_hold_a_request() -> None:
    """A server that accepts and reads but never answers: every call ends by its deadline."""
    with trio.socket.socket() as listener:
        async with trio.open_nursery() as nursery:
            await _against_a_silent_server(nursery, listener)
            nursery.cancel_scope.cancel()


async def _against_a_silent_server(nursery: trio.Nursery, listener: trio.socket.SocketType) -> None:
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[trio.socket.SocketType] = []

    async def swallow() -> None:
        while True:
            conn, _ = await listener.accept()
            held.append(conn)
            nursery.start_soon(_read_forever, conn)

    nursery.start_soon(swallow)
    warnings: list[str] = []
    store, metrics = _guarded(listener.getsockname()[1], "local", warnings)
    decision, took = await _timed(store.reserve(["k"], [1], [Limit(5, HOUR)]))
    assert decision.allowed and decision.remaining == (4,)  # the local fallback answered
    assert TIMEOUT * 0.9 < took < TIMEOUT + MARGIN
    value, took = await _timed(store.get("session"))
    assert value is None and took < TIMEOUT + MARGIN
    assert metrics.errors["reserve"].value == 1
    assert held  # it did connect and send: the deadline, not a refusal, ended the call
    await store.aclose()


async def _read_forever(conn: trio.socket.SocketType) -> None:
    with conn:
        while await conn.recv(65536):
            pass


async def test_noscript_falls_back_to_eval(redis_server: RedisServer) -> None:  # noqa: F811
    store = _redis(redis_server, "ns")
    limit = Limit(3, HOUR)
    assert (await store.reserve(["k"], [1], [limit])).allowed
    await store.pool.run([("SCRIPT", "FLUSH")])
    assert (await store.reserve(["k"], [1], [limit])).remaining == (1,)
    keys = (await store.pool.run([("KEYS", "*")]))[0]
    assert keys == [b"{ns}:b:k"]  # hash-tagged, and nothing else left behind
    await store.aclose()


# --------------------------------------------------------------------------- config, imports


def test_store_config_is_strict_and_keeps_the_password_out() -> None:
    text = '[store]\nurl = "redis://:s3cret@10.0.0.5:6380/2"\non_error = "closed"\n'
    config = parse_config(text, path="c.toml", env={}).store
    assert config is not None
    assert (config.host, config.port, config.db, config.password) == ("10.0.0.5", 6380, 2, "s3cret")
    assert config.on_error == "closed" and config.op_timeout_ms == 50.0
    assert "s3cret" not in repr(config) and "s3cret" not in config.url
    env = {"REDIS_PW": "fromenv"}
    text = '[store]\nurl = "redis://h"\npassword_env = "REDIS_PW"\n'
    assert parse_config(text, path="c.toml", env=env).store.password == "fromenv"  # type: ignore[union-attr]
    assert parse_config("", path="c.toml", env={}).store is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('url = "redis://h"\nbogus = 1', "unknown key"),
        ('url = "rediss://h"', "not supported"),
        ('url = "http://h"', "redis://"),
        ('url = "redis://:pw@h/x"', "database number"),
        ('url = "redis://h"\non_error = "maybe"', "one of local, open, closed"),
        ('url = "redis://h"\nop_timeout_ms = 0', "greater than 0"),
        ('on_error = "open"', "is required"),
    ],
)
def test_bad_store_config_is_refused(body: str, message: str) -> None:
    from louter.errors import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(f"[store]\n{body}\n", path="c.toml", env={})
    assert "pw" not in str(caught.value).replace("password", "")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        env={**os.environ},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(out.stdout.split())


def test_redis_code_is_imported_only_when_configured() -> None:
    without = _modules_after(
        "import louter.proxy.app, louter.cli.louter\n"
        "from louter.proxy.store import build_store\nbuild_store(None)"
    )
    assert "hiredis" not in without and "louter.proxy.store.resp" not in without
    with_store = _modules_after(
        "from louter.config import parse_config\nfrom louter.proxy.store import build_store\n"
        "build_store(parse_config('[store]\\nurl = \"redis://h\"', path='c', env={}).store)"
    )
    assert "hiredis" in with_store  # the check above can fail


def test_store_metrics_are_exposed_only_with_a_store() -> None:
    metrics = Metrics(["a"], {})
    assert b"store_latency_seconds" not in metrics.render()
    metrics.store = StoreMetrics()
    metrics.store.observe("reserve", 0.0002)
    metrics.store.error("settle")
    text = metrics.render().decode()
    assert 'store_latency_seconds_count{op="reserve"} 1.0' in text
    assert 'store_errors_total{op="settle"} 1.0' in text


async def test_build_store_gives_a_guarded_redis_store(redis_server: RedisServer) -> None:  # noqa: F811
    text = f'[store]\nurl = "{redis_server.url}"\nop_timeout_ms = 200\n'
    store = build_store(parse_config(text, path="c", env={}).store)
    assert isinstance(store, GuardedStore)
    assert await store.incr("n", 4) == 4
    await store.aclose()


async def test_memory_store_forgets_what_expired() -> None:
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    limit = Limit(10, 1)
    for index in range(100):
        await store.reserve([f"b{index}"], [5], [limit])
        await store.set(f"v{index}", b"x", 1)
        await store.incr(f"n{index}", 1, 1)
        assert await store.acquire([f"c{index}"], [1], 1) is not None
    now[0] = 2.0  # buckets full again, values, counters and leases expired
    store.sweep(now[0])
    assert (store._buckets, store._values, store._counters, store._leases) == ({}, {}, {}, {})


@pytest.mark.parametrize(
    ("wait", "delta", "left"),
    [
        (10, 20, 39),  # refilling: 50 + 10 - 20, then 1 more
        (10, -30, 89),  # a refund while refilling: 50 + 10 + 30
        (10, -80, 99),  # a refund past full: full, not more
        (100, 30, 69),  # full again before the settle: 100 - 30
        (100, -30, 99),  # a refund to a bucket full again: still full
        (0, 0, 49),
    ],
)
async def test_a_settle_charges_the_bucket_as_refilled_until_then(
    wait: float, delta: float, left: int
) -> None:
    """Settling refills the bucket to now, then charges `delta` (a bucket not yet full is
    charged in place: the same numbers)."""
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    limit = Limit(100, 100)  # one token a second
    assert (await store.reserve(["b"], [50], [limit])).remaining == (50,)
    now[0] += wait
    await store.settle("b", limit, delta)
    assert (await store.reserve(["b"], [1], [limit])).remaining == (left,)
    now[0] += 1000  # full again whatever the settle did
    assert (await store.reserve(["b"], [1], [limit])).remaining == (99,)


async def test_a_refused_reserve_gives_back_what_it_charged_first() -> None:
    """The in-process reserve charges bucket by bucket; when a later one is short, the
    earlier ones get their tokens back: a refilling bucket reads as if never charged."""
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    wide, narrow = Limit(10, 60), Limit(2, 60)  # 1/6 and 1/30 of a token a second
    assert (await store.reserve(["wide", "narrow"], [3, 2], [wide, narrow])).allowed
    now[0] = 1.0
    refused = await store.reserve(["wide", "narrow"], [1, 1], [wide, narrow])
    assert not refused.allowed and refused.remaining == (7, 0)
    assert refused.retry_after == pytest.approx((1 - 1 / 30) * 30)
    now[0] = 13.0  # wide: 7 + 13/6 tokens (refilled since t = 0; nothing taken at t = 1)
    level = await store.reserve(["wide"], [0], [wide])
    assert level.remaining == (9,) and level.reset[0] == pytest.approx(5.0)


def test_a_limit_needs_a_capacity_and_a_window() -> None:
    assert Limit(60, 60).rate == 1.0
    for bad in ((0, 60), (10, 0)):
        with pytest.raises(ValueError, match="capacity and window"):
            Limit(*bad)


async def test_a_password_is_used_and_never_repeated() -> None:
    executable = shutil.which("redis-server")
    assert executable is not None, "redis-server is missing: apt-get install redis-server"
    server = RedisServer(executable, password="s3cret-pw")
    server.start()
    try:
        text = f'[store]\nurl = "redis://:s3cret-pw@127.0.0.1:{server.port}"\n'
        store = build_store(parse_config(text, path="c", env={}).store)
        assert await store.incr("n") == 1  # authenticated
        await store.aclose()
        warnings: list[str] = []
        text = text.replace("s3cret-pw", "wrong-pw")
        store = build_store(parse_config(text, path="c", env={}).store, warn=warnings.append)
        assert await store.incr("n") == 1  # refused: the in-process counter answered
        assert len(warnings) == 1 and "AUTH" in warnings[0]
        assert "wrong-pw" not in warnings[0] and "s3cret" not in warnings[0]
        await store.aclose()
    finally:
        server.stop()


async def test_settles_share_round_trips(redis_server: RedisServer) -> None:  # noqa: F811
    store = _redis(redis_server, "batch")
    writes = 0
    run = store.pool.run

    async def counted(commands):  # type: ignore[no-untyped-def]
        nonlocal writes
        writes += 1
        return await run(commands)

    store.pool.run = counted  # type: ignore[method-assign]
    limit = Limit(1000, HOUR)
    await store.settle("tpm", limit, 1)  # the script is loaded (EVAL) before the burst
    writes = 0
    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(store.settle, "tpm", limit, 2)
    assert writes <= 3  # the first settle alone, then the 49 queued behind it together
    assert (await store.reserve(["tpm"], [1], [limit])).remaining == (898,)
    await store.aclose()


async def test_the_database_number_is_selected(redis_server: RedisServer) -> None:  # noqa: F811
    url = redis_server.url.replace("/0", "/3")
    store = build_store(parse_config(f'[store]\nurl = "{url}"\n', path="c", env={}).store)
    assert await store.incr("n", 7) == 7
    await store.aclose()
    three, zero = Pool("127.0.0.1", redis_server.port, db=3), Pool("127.0.0.1", redis_server.port)
    assert (await three.run([("GET", "{louter:v:n}")]))[0] == b"7"
    assert (await zero.run([("DBSIZE",)]))[0] == 0
    three.reset()
    zero.reset()
