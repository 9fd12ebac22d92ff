"""Routing and resilience (issue 8): candidates by priority and weight, failover before the
first byte, retries with backoff and `Retry-After`, the circuit breaker and `/health`.

Router and Breaker are tested directly (an injected clock, no sleeping); the behaviour end
to end through louter with fake upstreams and the SDKs.
"""

from __future__ import annotations

import functools
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from louter.config import parse_config
from louter.convert import openai as openai_convert
from louter.convert.dialect import DIALECTS
from louter.convert.model import ResponseMeta
from louter.http.message import Responder
from louter.proxy.app import build_context, serve
from louter.proxy.attempts import retry_after, run
from louter.proxy.breaker import COOLING_DOWN, HEALTHY, PROBING, Breaker
from louter.proxy.bridge import ClientSide, conversation
from louter.proxy.exchange import Exchange
from louter.proxy.routing import Router
from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, Hang, JSONReply, SSEReply, chat_completion, chat_stream
from tests.proxy.test_faults import (
    DOORS,
    Door,
    backend_toml,
    closed_port,
    doors,
    expect_error,
    log_entries,
    performance,
    read_log,
)
from tests.sdk import Clients, in_thread


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def mock_backends(*specs: tuple[str, float, int]) -> str:
    """Mock backends (name, weight, priority) all serving client model "m" under their name."""
    return "".join(
        f'[backends.{name}]\nprotocol = "mock"\nweight = {weight}\npriority = {priority}\n'
        f'[backends.{name}.model_mapping]\n"m" = "{name}-model"\n'
        for name, weight, priority in specs
    )


def router_for(toml: str, clock: Clock | None = None, default: str = "mock") -> Router:
    config = parse_config(toml, path="test.toml", env={})
    return Router(config, default, clock=clock or Clock())


def firsts(router: Router, model: str, count: int) -> list[str]:
    return [router.candidates(model)[0].backend.name for _ in range(count)]


# =========================================================================== Router, Breaker


def test_smooth_weighted_round_robin_is_nginx_order() -> None:
    router = router_for(mock_backends(("a", 5, 1), ("b", 1, 1), ("c", 1, 1)))
    assert firsts(router, "m", 7) == ["a", "a", "b", "a", "c", "a", "a"]
    assert firsts(router, "m", 7) == ["a", "a", "b", "a", "c", "a", "a"]  # it repeats


def test_weights_hold_exactly_over_1000_picks() -> None:
    router = router_for(mock_backends(("a", 3, 1), ("b", 1.5, 1), ("c", 0.5, 1)))
    counts = Counter(firsts(router, "m", 1000))
    assert counts == {"a": 600, "b": 300, "c": 100}


def test_candidates_are_priority_groups_with_fallbacks_after_the_pick() -> None:
    toml = mock_backends(("a", 1, 10), ("b", 1, 10), ("c", 1, 5), ("d", 1, 20))
    router = router_for(toml)
    orders = [[r.backend.name for r in router.candidates("m")] for _ in range(2)]
    assert orders == [["c", "a", "b", "d"], ["c", "b", "a", "d"]]
    route = router.candidates("m")[0]
    assert (route.backend.name, route.model) == ("c", "c-model")


def test_unmapped_names_go_to_the_named_or_default_backend() -> None:
    router = router_for(mock_backends(("a", 1, 1)), default="a")
    (named,) = router.candidates("mock")
    assert (named.backend.name, named.model) == ("mock", "mock")
    (default,) = router.candidates("other")
    assert (default.backend.name, default.model) == ("a", "other")
    assert router.owner("m").name == "a" and router.owner("other").name == "a"


def test_open_breakers_leave_the_round_robin_and_go_last() -> None:
    clock = Clock()
    toml = "[performance]\nfailure_threshold = 1\ncooldown_seconds = 10\n" + mock_backends(
        ("a", 1, 1), ("b", 1, 1), ("c", 1, 1)
    )
    router = router_for(toml, clock)
    router.breakers["a"].fail("down")
    orders = [[r.backend.name for r in router.candidates("m")] for _ in range(4)]
    assert [order[0] for order in orders] == ["b", "c", "b", "c"]
    assert all(order[-1] == "a" for order in orders)
    clock.now += 10  # cooled down: back in the rotation
    assert "a" in firsts(router, "m", 3)


def test_breaker_opens_after_threshold_and_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = Breaker(3, 30.0, clock)
    for _ in range(2):
        breaker.fail("boom")
    assert breaker.state == HEALTHY and breaker.allow()
    breaker.succeed()  # a success resets the count
    for _ in range(3):
        breaker.fail("boom")
    assert breaker.state == COOLING_DOWN and not breaker.allow() and not breaker.usable()
    assert breaker.remaining() == 30.0 and breaker.last_error == "boom"
    clock.now += 30
    assert breaker.state == PROBING and breaker.usable()
    assert breaker.allow()  # the probe
    assert not breaker.allow() and not breaker.usable()  # only one at a time
    breaker.fail("still down")
    assert breaker.state == COOLING_DOWN and breaker.remaining() == 30.0
    clock.now += 30
    assert breaker.allow()
    breaker.release()  # the probe was cancelled: the next request may probe
    assert breaker.allow()
    breaker.succeed()
    assert breaker.state == HEALTHY and breaker.allow() and breaker.allow()


def test_breaker_threshold_zero_never_opens() -> None:
    breaker = Breaker(0, 30.0, Clock())
    for _ in range(100):
        breaker.fail("boom")
    assert breaker.state == HEALTHY and breaker.allow()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"7", 7.0),
        (b"0.25", 0.25),
        (b"-3", 0.0),
        (format_datetime(datetime.fromtimestamp(1030, UTC), usegmt=True).encode(), 30.0),
        (b"soon", None),
    ],
)
def test_retry_after_parsing(value: bytes, expected: float | None) -> None:
    assert retry_after([(b"retry-after", value)], now=1000.0) == expected


def test_no_retry_after_header() -> None:
    assert retry_after([(b"content-type", b"application/json")], now=0.0) is None


# =========================================================================== failover end to end


@pytest.fixture
async def fakes(nursery: trio.Nursery) -> list[FakeUpstream]:
    made = [FakeUpstream(), FakeUpstream()]
    for fake in made:
        await nursery.start(fake.serve)
    return made


def two_backends(first_port: int, second_port: int, extra: str = "", top: str = "") -> str:
    return (
        top
        + backend_toml("first", first_port, "priority = 1\n" + extra)
        + backend_toml("second", second_port, "priority = 2\n")
    )


@doors
async def test_failover_to_the_second_backend_when_the_first_is_down(
    door: Door, sdk: Clients, start_louter: StartLouter, fakes: list[FakeUpstream], tmp_path: Path
):
    second = fakes[1]
    second.default = JSONReply(chat_completion("from second"))
    log = tmp_path / "louter.jsonl"
    base = await start_louter(two_backends(closed_port(), second.port), log_file=log)
    assert await in_thread(lambda: door.ask(sdk, base, "m")) == "from second"
    assert second.requests[0].json["model"] == "real-second"
    second.default = SSEReply([chat_stream(["streamed ", "from second"])])
    assert await in_thread(lambda: door.ask_stream(sdk, base, "m")) == "streamed from second"

    entries = read_log(log)
    first_exchange = [e for e in entries if e["request_id"] == entries[0]["request_id"]]
    tried = [(e["direction"], e["backend"], e.get("attempt")) for e in first_exchange]
    assert tried[1:4] == [
        ("backend_request", "first", 1),
        ("error", "first", 1),
        ("backend_request", "second", 2),
    ]
    error = next(e for e in first_exchange if e["direction"] == "error")
    assert error["status"] == 502 and "cannot connect" in error["error"]
    requests = [e for e in first_exchange if e["direction"] == "backend_request"]
    assert [e["candidates"] for e in requests] == [["first", "second"]] * 2


@pytest.mark.parametrize(
    "fault",
    [
        JSONReply({"error": {"message": "boom"}}, status=500),
        JSONReply({"error": {"message": "busy"}}, status=429),
        JSONReply({"error": {"message": "overloaded"}}, status=503),
        Hang(),
    ],
    ids=["500", "429", "503", "hang"],
)
async def test_retryable_faults_fail_over(
    start_louter: StartLouter, fakes: list[FakeUpstream], fault: Any
):
    first, second = fakes
    first.script(fault)
    second.default = JSONReply(chat_completion("rescued"))
    top = performance(timeout_seconds=0.3)
    base = await start_louter(two_backends(first.port, second.port, top=top))
    async with httpx.AsyncClient() as http:
        response = await http.post(
            base + "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "rescued"
    assert len(first.requests) == len(second.requests) == 1


async def test_client_errors_are_not_retried(start_louter: StartLouter, fakes: list[FakeUpstream]):
    first, second = fakes
    first.script(JSONReply({"error": {"message": "bad request"}}, status=400))
    base = await start_louter(two_backends(first.port, second.port))
    async with httpx.AsyncClient() as http:
        response = await http.post(base + "/v1/chat/completions", json={"model": "m"})
    assert response.status_code == 400 and "bad request" in response.text
    assert not second.requests


async def test_no_retry_once_the_stream_has_started(
    start_louter: StartLouter, fakes: list[FakeUpstream]
):
    first, second = fakes
    first.script(SSEReply([chat_stream(["partial"])[:60]], end="close"))
    base = await start_louter(two_backends(first.port, second.port))
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    async with httpx.AsyncClient() as http:
        response = await http.post(base + "/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert b"mid-response" in response.content  # the in-stream error event
    assert not second.requests


@doors
async def test_all_candidates_failing_gives_the_last_error_in_the_clients_dialect(
    door: Door, sdk: Clients, start_louter: StartLouter, fakes: list[FakeUpstream]
):
    first, second = fakes
    first.script(JSONReply({"error": {"message": "first broke"}}, status=500))
    second.script(
        JSONReply(
            {"error": {"message": "second overloaded"}},
            status=503,
            headers=[("retry-after", "9")],
        )
    )
    base = await start_louter(two_backends(first.port, second.port))
    error = await expect_error(door, lambda: door.ask(sdk, base, "m"))
    assert door.status(error) == 503
    assert "second overloaded" in str(error)
    assert door.headers(error).get("retry-after") == "9"


async def test_every_candidate_unreachable_is_502(sdk: Clients, start_louter: StartLouter):
    base = await start_louter(two_backends(closed_port(), closed_port()))
    error = await expect_error(DOORS[0], lambda: DOORS[0].ask(sdk, base, "m"))
    assert DOORS[0].status(error) == 502


@doors
async def test_failover_across_dialects(door: Door, sdk: Clients, start_louter: StartLouter):
    """A client fails over from a backend of one protocol to one of another: the request
    is built anew for each candidate (here: the first is an unreachable Gemini backend,
    the second an Anthropic-protocol louter on the mock)."""
    upstream = await start_louter()
    config = (
        f'[backends.g]\nprotocol = "gemini"\nurl = "http://127.0.0.1:{closed_port()}"\n'
        'priority = 1\n[backends.g.model_mapping]\n"m" = "gm"\n'
        f'[backends.a]\nprotocol = "anthropic"\nurl = "{upstream}"\npriority = 2\n'
        '[backends.a.model_mapping]\n"m" = "am"\n'
    )
    base = await start_louter(config)
    answer = await in_thread(lambda: door.ask(sdk, base, "m"))
    assert answer == 'Mock answer to: "hello" (images: 0)'


# =========================================================================== retries


async def test_retry_on_the_same_backend_honours_retry_after(
    start_louter: StartLouter, fakes: list[FakeUpstream]
):
    first, _ = fakes
    first.script(
        JSONReply({"error": {"message": "wait"}}, status=429, headers=[("retry-after", "0.4")])
    )
    first.default = JSONReply(chat_completion("after the wait"))
    base = await start_louter(
        backend_toml("up", first.port, "max_retries = 1\nretry_backoff_seconds = 0.01")
    )
    started = trio.current_time()
    async with httpx.AsyncClient() as http:
        response = await http.post(base + "/v1/chat/completions", json={"model": "m"})
    elapsed = trio.current_time() - started
    assert response.status_code == 200 and "after the wait" in response.text
    assert len(first.requests) == 2
    assert 0.4 <= elapsed < 2
    overhead = float(response.headers["x-louter-overhead-ms"])
    assert overhead < elapsed * 1000 - 350  # the wait is upstream time, not louter's


async def test_backoff_doubles_between_retries(start_louter: StartLouter, fake_single):
    fake_single.script(*[JSONReply({"error": {"message": "x"}}, status=500)] * 3)
    fake_single.default = JSONReply(chat_completion("third time lucky"))
    extra = "max_retries = 3\nretry_backoff_seconds = 0.1"
    base = await start_louter(backend_toml("up", fake_single.port, extra))
    started = trio.current_time()
    async with httpx.AsyncClient() as http:
        response = await http.post(base + "/v1/chat/completions", json={"model": "m"})
    assert response.status_code == 200 and len(fake_single.requests) == 4
    assert 0.7 <= trio.current_time() - started < 3  # 0.1 + 0.2 + 0.4


async def test_retry_after_beyond_the_budget_is_not_waited_for(
    start_louter: StartLouter, fakes: list[FakeUpstream]
):
    """A wait that would keep the client beyond timeout_seconds is not taken: louter moves
    on to the next candidate at once (and with none left, answers the 429 at once)."""
    first, second = fakes
    limited = JSONReply(
        {"error": {"message": "later"}}, status=429, headers=[("retry-after", "30")]
    )
    first.script(limited, limited)
    second.default = JSONReply(chat_completion("elsewhere"))
    top = performance(timeout_seconds=1)
    base = await start_louter(two_backends(first.port, second.port, "max_retries = 2", top=top))
    started = trio.current_time()
    async with httpx.AsyncClient() as http:
        response = await http.post(base + "/v1/chat/completions", json={"model": "m"})
        assert response.status_code == 200 and "elsewhere" in response.text
        assert trio.current_time() - started < 0.5
        alone = await start_louter(top + backend_toml("up", first.port, "max_retries = 2"))
        response = await http.post(alone + "/v1/chat/completions", json={"model": "m"})
    assert response.status_code == 429 and response.headers["retry-after"] == "30"
    assert trio.current_time() - started < 1
    assert len(first.requests) == 2


@pytest.fixture
async def fake_single(nursery: trio.Nursery) -> FakeUpstream:
    fake = FakeUpstream()
    await nursery.start(fake.serve)
    return fake


# =========================================================================== weights


async def test_weights_are_honoured_over_1000_requests(start_louter: StartLouter):
    base = await start_louter(mock_backends(("heavy", 3, 1), ("light", 1, 1)))
    served: Counter[str] = Counter()
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(1000):
            served[(await http.post("/v1/chat/completions", json=body)).json()["model"]] += 1
        metrics = (await http.get("/metrics")).text
    assert abs(served["heavy-model"] / 1000 - 0.75) <= 0.02
    assert abs(served["light-model"] / 1000 - 0.25) <= 0.02
    decisions = {
        sample.labels["backend"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "routing_decisions"
        for sample in family.samples
        if sample.name == "routing_decisions_total" and sample.labels["outcome"] == "served"
    }
    assert decisions["heavy"] == served["heavy-model"]
    assert decisions["light"] == served["light-model"]


# =========================================================================== breaker and /health


async def start_with_clock(nursery: trio.Nursery, toml: str, clock: Clock) -> str:
    config = parse_config(toml, path="test.toml", env={})
    ctx = build_context(config, default_backend=config.backends[0].name, monotonic=clock)
    port = await nursery.start(functools.partial(serve, ctx, "127.0.0.1", 0))
    return f"http://127.0.0.1:{port}"


def backend_up(metrics: str) -> dict[str, float]:
    return {
        sample.labels["backend"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "backend_up"
        for sample in family.samples
    }


async def test_breaker_opens_and_closes(nursery: trio.Nursery, fakes: list[FakeUpstream]):
    first, second = fakes
    first.script(*[JSONReply({"error": {"message": "gpu on fire"}}, status=500)] * 2)
    first.default = JSONReply(chat_completion("first is back"))
    second.default = JSONReply(chat_completion("from second"))
    clock = Clock()
    top = performance(failure_threshold=2, cooldown_seconds=60)
    base = await start_with_clock(nursery, two_backends(first.port, second.port, top=top), clock)
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    async with httpx.AsyncClient(base_url=base) as http:

        async def ask() -> str:
            response = await http.post("/v1/chat/completions", json=body)
            assert response.status_code == 200
            return str(response.json()["choices"][0]["message"]["content"])

        assert [await ask(), await ask()] == ["from second", "from second"]
        assert len(first.requests) == 2  # two failures in a row: the breaker opens
        health = await http.get("/health")
        assert health.status_code == 200
        state = health.json()["backends"]["first"]
        assert state["state"] == "cooling_down"
        assert state["consecutive_failures"] == 2
        assert "gpu on fire" in state["last_error"]
        until = datetime.fromisoformat(state["cooling_down_until"].replace("Z", "+00:00"))
        assert 55 <= until.timestamp() - datetime.now(UTC).timestamp() <= 61
        assert backend_up((await http.get("/metrics")).text) == {
            "first": 0.0, "second": 1.0, "mock": 1.0, "openai": 1.0, "gemini": 1.0,
            "anthropic": 1.0, "openrouter": 1.0,
        }  # fmt: skip

        assert await ask() == "from second"
        assert len(first.requests) == 2  # skipped while cooling down

        clock.now += 60  # cool-down over: one probe goes to the first backend, and works
        assert (await http.get("/health")).json()["backends"]["first"]["state"] == "probing"
        assert await ask() == "first is back"
        assert len(first.requests) == 3
        state = (await http.get("/health")).json()["backends"]["first"]
        assert state["state"] == "healthy" and state["consecutive_failures"] == 0
        assert state["cooling_down_until"] is None and "gpu on fire" in state["last_error"]
        assert await ask() == "first is back"
        assert backend_up((await http.get("/metrics")).text)["first"] == 1.0


async def test_failed_probe_starts_a_new_cool_down(
    nursery: trio.Nursery, fakes: list[FakeUpstream]
):
    first, second = fakes
    first.default = JSONReply({"error": {"message": "still broken"}}, status=500)
    second.default = JSONReply(chat_completion("from second"))
    clock = Clock()
    top = performance(failure_threshold=1, cooldown_seconds=10)
    base = await start_with_clock(nursery, two_backends(first.port, second.port, top=top), clock)
    body = {"model": "m"}
    async with httpx.AsyncClient(base_url=base) as http:
        await http.post("/v1/chat/completions", json=body)  # opens
        clock.now += 10
        await http.post("/v1/chat/completions", json=body)  # the probe fails
        assert len(first.requests) == 2
        await http.post("/v1/chat/completions", json=body)
        assert len(first.requests) == 2  # cooling down again
        state = (await http.get("/health")).json()["backends"]["first"]
        assert state["state"] == "cooling_down" and state["consecutive_failures"] == 2


async def test_health_is_503_when_no_backend_is_usable(nursery: trio.Nursery):
    clock = Clock()
    toml = performance(failure_threshold=1, cooldown_seconds=30) + backend_toml(
        "down", closed_port()
    )
    base = await start_with_clock(nursery, toml, clock)
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/health")).status_code == 200
        first = await http.post("/v1/chat/completions", json={"model": "m"})
        assert first.status_code == 502
        health = await http.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert health.json()["backends"]["down"]["state"] == "cooling_down"
        assert health.json()["backends"]["mock"]["state"] == "healthy"  # not routed to
        # while it cools down, requests fail at once with 503 in the client's dialect
        skipped = await http.post("/v1/chat/completions", json={"model": "m"})
        assert skipped.status_code == 503 and "cooling down" in skipped.json()["error"]["message"]
        gemini = await http.post("/v1beta/models/m:generateContent", json={"contents": []})
        assert gemini.status_code == 503 and gemini.json()["error"]["code"] == 503
        clock.now += 30
        assert (await http.get("/health")).status_code == 200  # a probe may go


async def test_failed_attempts_are_journaled(
    start_louter: StartLouter, fakes: list[FakeUpstream], tmp_path: Path
):
    first, second = fakes
    first.script(JSONReply({"error": {"message": "oops"}}, status=502))
    second.default = JSONReply(chat_completion("ok"))
    log = tmp_path / "louter.jsonl"
    base = await start_louter(two_backends(first.port, second.port), log_file=log)
    async with httpx.AsyncClient() as http:
        await http.post(base + "/v1/chat/completions", json={"model": "m"})
    await log_entries(log, "client_response")
    entries = [(e["direction"], e["backend"], e["status"], e.get("attempt")) for e in read_log(log)]
    assert entries == [
        ("client_request", None, None, None),
        ("backend_request", "first", None, 1),
        ("error", "first", 502, 1),
        ("backend_request", "second", None, 2),
        ("backend_response", "second", 200, None),
        ("client_response", "second", 200, None),
    ]


# =============================================================== bridge.conversation


class _Channel:
    """A client connection that keeps what louter writes."""

    closed_by_peer = False
    hangup = None
    stop = None

    def __init__(self) -> None:
        self.sent = b""

    async def send_all(self, data: bytes) -> None:
        self.sent += data


async def test_converse_fails_over_for_doors_that_always_convert() -> None:
    """`bridge.conversation` plans for the attempt loop: a request that always goes
    through the neutral model gets failover by model name with no routing code of its own."""
    toml = backend_toml("down", closed_port(), "priority = 1") + (
        '[backends.spare]\nprotocol = "mock"\npriority = 2\n'
        '[backends.spare.model_mapping]\n"m" = "spare-model"\n'
    )
    config = parse_config(toml, path="test.toml", env={})
    ctx = build_context(config, default_backend="down")
    exchange = Exchange(ctx.journal, "r-1", "/v1/chat/completions", "openai")
    request = openai_convert.parse_request(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    meta = ResponseMeta(id="chatcmpl-r-1", model="m", created=0)
    client = ClientSide(
        dialect=DIALECTS["openai"],
        meta=meta,
        emitter=lambda: openai_convert.StreamEmitter(meta),
        stream_headers=[(b"content-type", b"text/event-stream")],
    )
    channel = _Channel()
    try:
        await run(
            ctx,
            exchange,
            Responder(channel, True),
            ctx.router.candidates(request.model),
            lambda route: conversation(ctx, request, route, client),
            lambda: 0,
        )
    finally:
        for upstream in ctx.upstreams.values():
            await upstream.transport.aclose()
    head, _, body = channel.sent.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    answer = orjson.loads(body)
    assert answer["choices"][0]["message"]["content"] == 'Mock answer to: "hi" (images: 0)'
    assert (exchange.backend, exchange.attempts) == ("spare", 2)
    assert ctx.router.breakers["down"].failures == 1
