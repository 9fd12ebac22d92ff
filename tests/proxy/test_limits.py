"""Rate limits (`[limits]`, louter/proxy/limits.py) end to end: real HTTP over 127.0.0.1,
the official SDKs for the 429 envelopes, a real redis-server shared by two louters for
the exact-across-instances counts, and a fake upstream that reports known usage."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anthropic
import google.genai.errors
import httpx
import openai
import pytest
import trio

from louter.config import ConfigError, Rate, parse_config
from louter.proxy.app import build_context, serve
from louter.proxy.context import ProxyContext
from louter.proxy.limits import HEADERS, Scope, Stamps, plan_buckets
from louter.proxy.sessions.stage import SessionStage
from louter.proxy.store import Decision, Limit
from tests.cli.test_cli import REPO, clean_env, free_port
from tests.fakes import FakeUpstream, JSONReply, Recorded, SSEReply, chat_completion, sse_events
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture
from tests.sdk import Clients, in_thread

MOCK = '[backends.mock]\nprotocol = "mock"\n'
HI: Any = [{"role": "user", "content": "hi"}]


async def start(
    nursery: trio.Nursery, toml: str, default: str = "mock", **options: Any
) -> tuple[str, ProxyContext]:
    config = parse_config(toml, path="test.toml", env={})
    ctx = build_context(config, default_backend=default, **options)
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}", ctx


def _openai(sdk: Clients, base: str) -> None:
    sdk.openai(base).chat.completions.create(model="m", messages=HI)


def _responses(sdk: Clients, base: str) -> None:
    sdk.openai(base).responses.create(model="m", input="hi")


def _anthropic(sdk: Clients, base: str) -> None:
    sdk.anthropic(base).messages.create(model="m", max_tokens=16, messages=HI)


def _gemini(sdk: Clients, base: str) -> None:
    sdk.gemini(base).models.generate_content(model="m", contents="hi")


ASK: dict[str, Callable[[Clients, str], None]] = {
    "openai": _openai,
    "responses": _responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
}
REFUSAL: dict[str, type[Exception]] = {
    "openai": openai.RateLimitError,
    "responses": openai.RateLimitError,
    "anthropic": anthropic.RateLimitError,
    "gemini": google.genai.errors.ClientError,
}


@pytest.mark.parametrize("door", list(ASK))
async def test_rpm_admits_exactly_n_then_429_in_the_clients_envelope(
    nursery: trio.Nursery, sdk: Clients, door: str
) -> None:
    base, _ = await start(nursery, MOCK + "[limits.default]\nrpm = 3\n")
    for _ in range(3):
        await in_thread(lambda: ASK[door](sdk, base))
    with pytest.raises(REFUSAL[door]) as caught:
        await in_thread(lambda: ASK[door](sdk, base))
    error: Any = caught.value
    if door == "gemini":
        assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
        (info,) = error.details["error"]["details"]
        assert info["@type"] == "type.googleapis.com/google.rpc.RetryInfo"
        assert 0 < float(info["retryDelay"].removesuffix("s")) <= 20
    else:
        assert error.status_code == 429
        if door == "anthropic":
            assert error.body["error"]["type"] == "rate_limit_error"
        else:
            assert error.code == "rate_limit_exceeded"
        assert 1 <= int(error.response.headers["retry-after"]) <= 20  # 60 s / 3 requests
        assert 1 <= int(error.response.headers["retry-after-ms"]) <= 20_000
    assert "rate limit reached (default)" in str(error)


async def test_answers_carry_the_dialects_rate_limit_headers(nursery: trio.Nursery) -> None:
    toml = MOCK + "[limits.default]\nrpm = 5\ntpm = 100000\n"
    base, ctx = await start(nursery, toml)
    body = {"model": "m", "messages": HI, "max_tokens": 10}
    async with httpx.AsyncClient(base_url=base) as client:
        first = await client.post("/v1/chat/completions", json=body)
        streamed = await client.post("/v1/chat/completions", json={**body, "stream": True})
        claude = await client.post("/v1/messages", json=body)
        gemini = await client.post("/v1beta/models/m:generateContent", json={"contents": []})
    assert first.status_code == streamed.status_code == claude.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "5"
    assert first.headers["x-ratelimit-remaining-requests"] == "4"
    assert streamed.headers["x-ratelimit-remaining-requests"] == "3"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) < 100000 - 10
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert claude.headers["anthropic-ratelimit-requests-limit"] == "5"
    assert claude.headers["anthropic-ratelimit-requests-remaining"] == "2"
    assert claude.headers["anthropic-ratelimit-tokens-reset"].endswith("Z")
    assert not any(name.startswith("x-ratelimit") for name in gemini.headers)
    metrics = ctx.metrics
    assert metrics is not None and b"rate_limited_total" not in metrics.render()


@pytest.mark.parametrize(
    ("resets", "written"),
    [
        ((0.0, 0.0004), (b"0ms", b"0ms")),
        ((0.0123, 0.9994), (b"12ms", b"999ms")),  # both under a second: the short format
        ((0.0123, 75.0), (b"12ms", b"1m15s")),
        ((1.5, 0.25), (b"1.5s", b"250ms")),
    ],
)
def test_openai_resets_are_written_as_the_api_writes_them(
    resets: tuple[float, float], written: tuple[bytes, bytes]
) -> None:
    buckets = plan_buckets([Scope("key", "key:a", Rate(rpm=5, tpm=1000), "a")])
    decision = Decision(True, 0.0, (4, 900), resets)
    lines = HEADERS["openai"].lines("openai", buckets, decision, Stamps(time.time))
    assert lines == (
        b"x-ratelimit-limit-requests: 5\r\nx-ratelimit-remaining-requests: 4\r\n"
        b"x-ratelimit-reset-requests: %s\r\nx-ratelimit-limit-tokens: 1000\r\n"
        b"x-ratelimit-remaining-tokens: 900\r\nx-ratelimit-reset-tokens: %s\r\n" % written
    )


async def test_the_headers_name_the_tightest_bucket_of_each_kind(nursery: trio.Nursery) -> None:
    """With several scopes, each kind's headers show the bucket with the least left: the
    model's rpm while it has less left, the default's once other models spent it."""
    toml = MOCK + '[limits.default]\nrpm = 5\ntpm = 9000\n[limits.models."m"]\nrpm = 4\n'
    base, _ = await start(nursery, toml)
    async with httpx.AsyncClient(base_url=base) as client:

        async def ask(model: str) -> Any:
            body = {"model": model, "messages": HI, "max_tokens": 10}
            return (await client.post("/v1/messages", json=body)).headers

        seen = [await ask(model) for model in ("m", "other", "other", "m")]
    requests = [
        (h["anthropic-ratelimit-requests-limit"], h["anthropic-ratelimit-requests-remaining"])
        for h in seen
    ]
    assert requests == [("4", "3"), ("5", "3"), ("5", "2"), ("5", "1")]  # m: 2 left, default 1
    assert {h["anthropic-ratelimit-tokens-limit"] for h in seen} == {"9000"}
    reset = seen[0]["anthropic-ratelimit-requests-reset"]
    assert reset.endswith("Z") and reset.startswith(time.strftime("%Y-", time.gmtime()))


async def test_a_refused_request_spends_nothing(nursery: trio.Nursery) -> None:
    toml = MOCK + "[limits.default]\nrpm = 2\ntpm = 2000\n"
    base, ctx = await start(nursery, toml)
    async with httpx.AsyncClient(base_url=base) as client:

        async def ask(max_tokens: int) -> int:
            body = {"model": "m", "messages": HI, "max_tokens": max_tokens}
            return (await client.post("/v1/chat/completions", json=body)).status_code

        assert await ask(5000) == 429  # over the TPM bucket: the RPM bucket is not charged
        assert await ask(5000) == 429
        assert [await ask(10), await ask(10)] == [200, 200]  # both requests still there
        assert await ask(10) == 429
    assert ctx.metrics is not None
    assert b'rate_limited_total{name="",scope="default"} 3.0' in ctx.metrics.render()


async def test_model_and_key_scopes(nursery: trio.Nursery) -> None:
    """A model glob limits only its models; a key's limits come from `key_limits` (the
    auth stage's parsed keys) and apply to requests whose exchange names that key."""
    toml = MOCK + '[limits.models."big-*"]\nrpm = 1\n'
    base, ctx = await start(nursery, toml, key_limits={"team": Rate(rpm=1)})
    async with httpx.AsyncClient(base_url=base) as client:

        async def ask(model: str) -> int:
            body = {"model": model, "messages": HI}
            return (await client.post("/v1/chat/completions", json=body)).status_code

        assert [await ask("big-one"), await ask("big-two"), await ask("small")] == [200, 429, 200]
        assert [await ask("small") for _ in range(3)] == [200, 200, 200]
    (stage,) = [s for s in ctx.pipeline.stages if not isinstance(s, SessionStage)]
    assert [s.label for s in stage.scopes(_FakeCall("big-x", "team"))] == ["model", "key"]  # type: ignore[attr-defined]
    assert [s.label for s in stage.scopes(_FakeCall("small", None))] == []  # type: ignore[attr-defined]


class _FakeCall:
    def __init__(self, model: str, key: str | None) -> None:
        self.model = model
        named = None if key is None else type("K", (), {"name": key})()
        self.exchange = type("E", (), {"key": named})()


async def test_no_limits_means_no_stage_and_no_store_calls(nursery: trio.Nursery) -> None:
    base, ctx = await start(nursery, MOCK)
    assert [s for s in ctx.pipeline.stages if not isinstance(s, SessionStage)] == []
    assert ctx.backend_limits is None
    calls: list[str] = []
    store: Any = ctx.store
    for name in ("reserve", "settle", "acquire", "release"):
        setattr(store, name, lambda *a, _n=name, **k: calls.append(_n))
    async with httpx.AsyncClient(base_url=base) as client:
        reply = await client.post("/v1/chat/completions", json={"model": "m", "messages": HI})
    assert reply.status_code == 200 and calls == []
    assert "x-ratelimit-limit-requests" not in reply.headers


# --------------------------------------------------------------------------- TPM settles


def _usage_stream(prompt: int, completion: int, end: str = "finish") -> SSEReply:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "x"}
    pieces = [
        {**chunk, "choices": [{"index": 0, "delta": {"content": "hello"}}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    if end != "finish":  # dies before the usage chunk
        return SSEReply([sse_events(*pieces, done=False)], end=end)
    return SSEReply([sse_events(*pieces, {**chunk, "choices": [], "usage": usage})])


def _upstream(port: int, extra: str = "") -> str:
    return f'[backends.up]\nprotocol = "openai"\nurl = "http://127.0.0.1:{port}"\n{extra}'


async def _tokens_left(ctx: ProxyContext, capacity: int, below: float) -> int:
    """The default TPM bucket's level once the exchange has settled (below `below`)."""
    for _ in range(200):
        decision = await ctx.store.reserve(["default:tokens"], [0], [Limit(capacity, 60.0)])
        if decision.remaining[0] < below:
            return decision.remaining[0]
        await trio.sleep(0.01)
    return decision.remaining[0]


@pytest.mark.parametrize("stream", [True, False])
async def test_tpm_settles_to_the_backends_real_usage(nursery: trio.Nursery, stream: bool) -> None:
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    usage = {"prompt_tokens": 400, "completion_tokens": 2600, "total_tokens": 3000}
    fake.default = (
        _usage_stream(400, 2600) if stream else JSONReply(chat_completion("hi", usage=usage))
    )
    toml = _upstream(fake.port) + "[limits.default]\ntpm = 6000\n"
    base, ctx = await start(nursery, toml, default="up")
    body = {"model": "m", "messages": HI, "max_tokens": 50, "stream": stream}
    async with httpx.AsyncClient(base_url=base) as client:
        reply = await client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200
        reserved = 6000 - int(reply.headers["x-ratelimit-remaining-tokens"])
    assert 50 < reserved < 100  # the estimate: a few input tokens + max_tokens
    left = await _tokens_left(ctx, 6000, 6000 - 2000)
    assert 3000 - 5 <= left <= 3000 + 200  # 3000 charged in all (refill: 100 tokens/s)


async def test_a_stream_that_dies_unsettled_keeps_its_reservation(nursery: trio.Nursery) -> None:
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    fake.default = _usage_stream(0, 0, end="close")
    toml = _upstream(fake.port) + "[limits.default]\ntpm = 6000\n"
    base, ctx = await start(nursery, toml, default="up")
    body = {"model": "m", "messages": HI, "max_tokens": 1000, "stream": True}
    async with httpx.AsyncClient(base_url=base) as client:
        async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
            await reply.aread()
    await trio.sleep(0.05)
    left = await _tokens_left(ctx, 6000, 6000)
    assert 6000 - 1100 <= left <= 6000 - 1000 + 100  # the estimate stays charged


# --------------------------------------------------------------------------- backends


async def test_a_backend_at_its_limit_is_skipped_for_the_next_candidate(
    nursery: trio.Nursery,
) -> None:
    toml = (
        '[backends.a]\nprotocol = "mock"\npriority = 1\n[backends.a.model_mapping]\n"m" = "a-m"\n'
        '[backends.b]\nprotocol = "mock"\npriority = 2\n[backends.b.model_mapping]\n"m" = "b-m"\n'
        "[limits.backends.a]\nrpm = 1\n[limits.backends.b]\nrpm = 1\n"
    )
    base, ctx = await start(nursery, toml, default="a")
    async with httpx.AsyncClient(base_url=base) as client:
        replies = [
            await client.post("/v1/chat/completions", json={"model": "m", "messages": HI})
            for _ in range(3)
        ]
    assert [r.status_code for r in replies] == [200, 200, 429]
    assert [r.json()["model"] for r in replies[:2]] == ["a-m", "b-m"]
    assert replies[2].json()["error"]["type"] == "rate_limit_error"
    assert int(replies[2].headers["retry-after"]) >= 1
    assert ctx.metrics is not None
    text = ctx.metrics.render()
    assert b'rate_limited_total{name="a",scope="backend"} 2.0' in text
    assert b'rate_limited_total{name="b",scope="backend"} 1.0' in text
    assert b'routing_decisions_total{backend="a",outcome="skipped"} 2.0' in text


def test_limits_config_is_strict() -> None:
    def error(text: str) -> str:
        with pytest.raises(ConfigError) as caught:
            parse_config(MOCK + text, path="t.toml", env={})
        return caught.value.message

    assert "unknown key" in error("[limits.default]\nrps = 1\n")
    assert "greater than 0" in error("[limits.default]\nrpm = 0\n")
    assert "greater than 0" in error("[limits]\nlease_seconds = 0\n")
    assert "not a configured backend" in error("[limits.backends.nope]\nrpm = 1\n")
    assert "not supported on a backend" in error("[limits.backends.mock]\nmax_concurrent = 1\n")
    config = parse_config(
        MOCK + '[limits]\nqueue_timeout_seconds = 2\n[limits.models."gpt-*"]\ntpm = 9\n',
        path="t.toml",
        env={},
    )
    assert config.limits is not None
    assert config.limits.models == (("gpt-*", Rate(tpm=9)),)
    assert config.limits.queue_timeout_seconds == 2.0


# --------------------------------------------------------------------------- two louters, one Redis


def _shared(redis: RedisServer, extra: str) -> str:
    return f'[store]\nurl = "{redis.url}"\nop_timeout_ms = 500\n' + extra


async def test_two_louters_sharing_redis_admit_exactly_n_of_m(
    nursery: trio.Nursery,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    toml = MOCK + _shared(redis_server, "[limits.default]\nrpm = 7\n")
    bases = [(await start(nursery, toml))[0] for _ in range(2)]
    statuses: list[int] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=40)) as client:

        async def ask(base: str) -> None:
            body = {"model": "m", "messages": HI}
            reply = await client.post(base + "/v1/chat/completions", json=body)
            statuses.append(reply.status_code)

        async with trio.open_nursery() as inner:
            for number in range(30):
                inner.start_soon(ask, bases[number % 2])
    assert sorted(statuses) == [200] * 7 + [429] * 23


async def test_two_louters_sharing_redis_never_exceed_max_concurrent(
    nursery: trio.Nursery,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    held: list[trio.Event] = []
    released = 0
    most = 0

    def hold(request: Recorded) -> JSONReply:
        nonlocal most
        event = trio.Event()
        held.append(event)
        most = max(most, len(fake.requests) - released)
        return JSONReply(chat_completion("ok"), release=event)

    fake.default = hold
    extra = "[limits]\nqueue_timeout_seconds = 10\n[limits.default]\nmax_concurrent = 2\n"
    toml = _upstream(fake.port) + _shared(redis_server, extra)
    bases = [(await start(nursery, toml, default="up"))[0] for _ in range(2)]

    async def release_slowly() -> None:
        nonlocal released
        while released < 8:
            await trio.sleep(0.05)
            if released < len(held):
                released += 1  # counted before the answer goes out: `most` never overcounts
                held[released - 1].set()

    statuses: list[int] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=20)) as client:

        async def ask(base: str) -> None:
            body = {"model": "m", "messages": HI}
            reply = await client.post(base + "/v1/chat/completions", json=body)
            statuses.append(reply.status_code)

        async with trio.open_nursery() as inner:
            inner.start_soon(release_slowly)
            for number in range(8):
                inner.start_soon(ask, bases[number % 2])
    assert statuses == [200] * 8
    assert most == 2  # reached the cap, never more, across both instances


async def test_max_concurrent_answers_429_after_the_queue_timeout(nursery: trio.Nursery) -> None:
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    gate = trio.Event()
    fake.default = JSONReply(chat_completion("ok"), release=gate)
    extra = "[limits]\nqueue_timeout_seconds = 0.2\n[limits.default]\nmax_concurrent = 1\n"
    base, _ = await start(nursery, _upstream(fake.port) + extra, default="up")
    body = {"model": "m", "messages": HI}
    async with httpx.AsyncClient(base_url=base) as client:
        async with trio.open_nursery() as inner:
            inner.start_soon(partial(client.post, "/v1/chat/completions", json=body))
            await fake.wait_requests(1)
            started = time.monotonic()
            refused = await client.post("/v1/chat/completions", json=body)
            waited = time.monotonic() - started
            gate.set()
        assert refused.status_code == 429 and 0.2 <= waited < 1.0
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200


# --------------------------------------------------------------------------- Redis outage


@pytest.mark.parametrize(("mode", "expected"), [
    ("local", [200, 200, 429]), ("open", [200, 200, 200]), ("closed", [429, 429, 429]),
])  # fmt: skip
async def test_redis_stopped_mid_run_each_on_error_mode(
    nursery: trio.Nursery,
    redis_server: RedisServer,  # noqa: F811
    mode: str,
    expected: list[int],
) -> None:
    store = f'[store]\nurl = "{redis_server.url}"\nop_timeout_ms = 50\non_error = "{mode}"\n'
    warnings: list[str] = []
    toml = MOCK + store + "[limits.default]\nrpm = 2\n"
    base, ctx = await start(nursery, toml, warn=warnings.append)
    body = {"model": "m", "messages": HI}
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        redis_server.stop()
        statuses, times = [], []
        for _ in range(3):
            started = time.monotonic()
            statuses.append((await client.post("/v1/chat/completions", json=body)).status_code)
            times.append(time.monotonic() - started)
    assert statuses == expected, (statuses, warnings)
    assert max(times) < 1.0, times  # op_timeout_ms = 50 (slack: a shared, loaded machine)
    assert warnings, "the outage is reported"
    assert ctx.metrics is not None and b"store_errors_total" in ctx.metrics.render()


async def test_the_cli_reports_a_store_outage_on_stderr(tmp_path: Path) -> None:
    """`louter` (a real process) hands the store its stderr reporter: a Redis that is not
    there is reported (never its password), and on_error = "local" still answers."""
    config = tmp_path / "louter.toml"
    dead = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    config.write_text(
        MOCK + f'[store]\nurl = "{dead}"\nop_timeout_ms = 50\n[limits.default]\nrpm = 5\n'
    )
    port = free_port()
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as err:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "louter", "--config", str(config), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=clean_env(PYTHONPATH=str(REPO), COLUMNS="200"),
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            with trio.fail_after(15):
                while True:
                    try:
                        await http.get("/health")
                        break
                    except httpx.TransportError:
                        await trio.sleep(0.05)
            body = {"model": "m", "messages": HI}
            answer = await http.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200
            assert answer.headers["x-ratelimit-remaining-requests"] == "4"
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await process.wait()
    printed = stderr.read_text()
    assert "louter: store: redis failed on get" in printed, printed  # the session lookup
    assert "hunter2secret" not in printed


# --------------------------------------------------------------------------- leases, round trips


@pytest.mark.parametrize("where", ["memory", "redis"])
async def test_a_long_exchange_keeps_its_slot_beyond_the_lease(
    nursery: trio.Nursery, request: pytest.FixtureRequest, where: str
) -> None:
    """A slot is a lease (`lease_seconds`, here 0.3 s) renewed while its exchange runs: a
    request held 1 s (three leases) still holds it; the slot is free once it ends."""
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    gate = trio.Event()
    fake.default = JSONReply(chat_completion("ok"), release=gate)
    extra = "[limits]\nlease_seconds = 0.3\n[limits.default]\nmax_concurrent = 1\n"
    if where == "redis":
        extra = _shared(request.getfixturevalue("redis_server"), extra)
    base, _ = await start(nursery, _upstream(fake.port) + extra, default="up")
    body = {"model": "m", "messages": HI}
    async with httpx.AsyncClient(base_url=base) as client:
        async with trio.open_nursery() as inner:
            inner.start_soon(partial(client.post, "/v1/chat/completions", json=body))
            await fake.wait_requests(1)
            await trio.sleep(1.0)
            refused = await client.post("/v1/chat/completions", json=body)
            gate.set()
        assert refused.status_code == 429, refused.text
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200


async def _settled(sent: list[list[Any]], timeout: float = 10.0) -> None:
    """Wait (bounded) until the background release and settle of a request went out."""
    from louter.proxy.store.redis import SETTLE  # noqa: PLC0415 - Redis code

    with trio.fail_after(timeout):
        while not any(SETTLE.sha in batch for batch in sent):
            await trio.sleep(0.01)
        seen = -1
        while seen != len(sent):  # then quiet for 0.3 s (a NOSCRIPT retry is an EVAL)
            seen = len(sent)
            await trio.sleep(0.3)


async def test_redis_admits_in_one_round_trip(
    nursery: trio.Nursery,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    """A request limited by rpm, tpm and max_concurrent costs one script on the critical
    path (slots and buckets at once); the release and the settle follow off it."""
    from louter.proxy.store.redis import ADMIT, SETTLE  # noqa: PLC0415 - Redis code

    extra = "[limits.default]\nrpm = 100\ntpm = 100000\nmax_concurrent = 4\n"
    base, ctx = await start(nursery, MOCK + _shared(redis_server, extra))
    pool: Any = ctx.store.remote.pool  # type: ignore[attr-defined]
    sent: list[list[Any]] = []
    run = pool.run

    async def counted(commands: Any) -> Any:
        names = [c[0] if c[0] != "EVALSHA" else c[1] for c in commands]
        if names != ["GET"]:  # not the shared breakers' background reads
            sent.append(names)
        return await run(commands)

    pool.run = counted
    async with httpx.AsyncClient(base_url=base) as client:
        body = {"model": "m", "messages": HI, "max_tokens": 10}
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        await _settled(sent)
        sent.clear()  # the first request loaded the script (EVAL after NOSCRIPT)
        reply = await client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200
        assert reply.headers["x-ratelimit-remaining-requests"] in {"98", "99"}  # refills 1/0.6 s
        await _settled(sent)
    admits = [batch for batch in sent if ADMIT.sha in batch]
    assert admits == [[ADMIT.sha]], sent  # one round trip, one script
    flat = [name for batch in sent for name in batch]
    assert flat.count("ZREM") == 1 and flat.count(SETTLE.sha) == 1, sent
    assert len(flat) == 3, sent
