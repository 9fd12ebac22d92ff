"""`/metrics` (issue 8): parsed with prometheus-client's own text parser, every counter
checked against the traffic sent; the `x-louter-overhead-ms` header; `enable_metrics`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, Hang, JSONReply, SSEReply, chat_chunk, chat_completion
from tests.fakes import sse_events as fake_sse
from tests.proxy.test_faults import backend_toml, closed_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
CHAT = "/v1/chat/completions"


def parse(text: str) -> Samples:
    """Every sample as {(sample name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def body(text: str, *, stream: bool = False, usage: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": text}]}
    if stream:
        out["stream"] = True
        if usage:
            out["stream_options"] = {"include_usage": True}
    return out


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


async def post_all(http: httpx.AsyncClient, bodies: Iterable[dict[str, Any]]) -> None:
    for item in bodies:
        assert (await http.post(CHAT, json=item)).status_code == 200


async def test_counters_match_the_traffic(start_louter: StartLouter):
    """The mock counts a word as a token: "one two three" is 3 input tokens, and its
    answer `Mock answer to: "one two three" (images: 0)` 8 output tokens."""
    base = await start_louter('[backends.mock]\nprotocol = "mock"\n')
    async with httpx.AsyncClient(base_url=base) as http:
        await post_all(http, [body("one two three")] * 3)
        await post_all(http, [body("one two three", stream=True)] * 2)
        gemini = "/v1beta/models/g:generateContent"
        contents = {"contents": [{"role": "user", "parts": [{"text": "one two three"}]}]}
        assert (await http.post(gemini, json=contents)).status_code == 200
        assert (await http.get("/nowhere")).status_code == 404
        samples = await scrape(http)

    requests = "http_request_duration_seconds_count"
    assert value(samples, requests, endpoint=CHAT, method="POST", status="200") == 5
    assert value(samples, requests, endpoint="/v1beta/models/{model}:generateContent") == 1
    assert value(samples, requests, endpoint="unmatched", status="404") == 1
    assert value(samples, requests) == 7
    assert value(samples, "louter_overhead_seconds_count") == 7
    assert (
        0
        < value(samples, "louter_overhead_seconds_sum")
        < value(samples, "http_request_duration_seconds_sum")
    )
    assert value(samples, "tokens_total", backend="mock", type="input") == 6 * 3
    assert value(samples, "tokens_total", backend="mock", type="output") == 6 * 8
    assert value(samples, "backend_request_duration_seconds_count", backend="mock") == 6
    assert value(samples, "backend_request_duration_seconds_count", status="200") == 6
    assert value(samples, "time_to_first_token_seconds_count", backend="mock") == 6
    assert value(samples, "routing_decisions_total", backend="mock", outcome="served") == 6
    assert value(samples, "routing_decisions_total", outcome="failed") == 0
    assert value(samples, "errors_total", type="not_found", endpoint="unmatched") == 1
    assert value(samples, "errors_total") == 1
    assert value(samples, "backend_up", backend="mock") == 1
    assert value(samples, "http_requests_in_flight") == 1  # the scrape itself
    assert value(samples, "backend_requests_in_flight") == 0


async def test_stream_without_usage_counts_estimated_tokens(start_louter: StartLouter):
    base = await start_louter('[backends.mock]\nprotocol = "mock"\n')
    async with httpx.AsyncClient(base_url=base) as http:
        await post_all(http, [body("one two three four five six seven eight", stream=True,
                                   usage=False)])  # fmt: skip
        samples = await scrape(http)
    # estimates: 40 characters + 3 per message -> 13 in; the 70-character answer -> 18 out
    answer = 'Mock answer to: "one two three four five six seven eight" (images: 0)'
    assert (len(answer) + 3) // 4 == 18
    assert value(samples, "tokens_total", backend="mock", type="input") == 13
    assert value(samples, "tokens_total", backend="mock", type="output") == 18


@pytest.fixture
async def fake(nursery: trio.Nursery) -> FakeUpstream:
    upstream = FakeUpstream()
    await nursery.start(upstream.serve)
    return upstream


async def test_failures_and_failover_are_counted(start_louter: StartLouter, fake: FakeUpstream):
    fake.script(JSONReply({"error": {"message": "boom"}}, status=500))
    fake.default = JSONReply(chat_completion("ok"))  # usage 3 in, 2 out
    config = (
        backend_toml("down", closed_port(), "priority = 1")
        + backend_toml("flaky", fake.port, "priority = 2")
        + backend_toml("spare", fake.port, "priority = 3")
    )
    base = await start_louter(config)
    async with httpx.AsyncClient(base_url=base) as http:
        # down fails, flaky answers 500, spare answers
        assert (await http.post(CHAT, json=body("x"))).status_code == 200
        samples = await scrape(http)
    decisions = "routing_decisions_total"
    assert value(samples, decisions, backend="down", outcome="failed") == 1
    assert value(samples, decisions, backend="flaky", outcome="failed") == 1
    assert value(samples, decisions, backend="spare", outcome="served") == 1
    durations = "backend_request_duration_seconds_count"
    assert value(samples, durations, backend="down", status="error") == 1
    assert value(samples, durations, backend="flaky", status="500") == 1
    assert value(samples, durations, backend="spare", status="200") == 1
    assert value(samples, "tokens_total", backend="spare", type="input") == 3
    assert value(samples, "tokens_total", backend="spare", type="output") == 2
    assert value(samples, "tokens_total", backend="flaky") == 0
    assert value(samples, "errors_total") == 0  # the client got its answer


async def test_client_facing_errors_are_counted_by_kind(
    start_louter: StartLouter, fake: FakeUpstream
):
    fake.script(
        JSONReply({"error": {"message": "nope"}}, status=429),
        JSONReply(b"not json"),
        Hang(),
        SSEReply([fake_sse(chat_chunk("cut"), done=False)], end="close"),
    )
    base = await start_louter(
        "[performance]\ntimeout_seconds = 0.3\n" + backend_toml("up", fake.port)
    )
    async with httpx.AsyncClient(base_url=base) as http:
        statuses = [(await http.post(CHAT, json=body("x"))).status_code for _ in range(3)]
        assert statuses == [429, 502, 504]
        streamed = await http.post(CHAT, json=body("x", stream=True))
        assert streamed.status_code == 200 and b"mid-response" in streamed.content
        assert (await http.post(CHAT, content=b"{")).status_code == 400
        samples = await scrape(http)
    errors = "errors_total"
    for kind in ("upstream_status", "bad_upstream_answer", "upstream_timeout", "stream"):
        assert value(samples, errors, type=kind, endpoint=CHAT) == 1, kind
    assert value(samples, errors, type="bad_request", endpoint=CHAT) == 1
    assert value(samples, errors) == 5
    assert value(samples, "http_request_duration_seconds_count", status="429") == 1
    assert value(samples, "routing_decisions_total", backend="up", outcome="failed") == 2


async def test_in_flight_gauges_follow_a_running_stream(
    start_louter: StartLouter, fake: FakeUpstream
):
    release = trio.Event()
    first = fake_sse(chat_chunk("first"), done=False)
    fake.script(
        SSEReply([first, fake_sse(chat_chunk(finish="stop"))], hold_after=1, release=release)
    )
    base = await start_louter(backend_toml("up", fake.port))
    async with httpx.AsyncClient(base_url=base) as http:
        async with http.stream("POST", CHAT, json=body("x", stream=True)) as response:
            chunks = response.aiter_raw()
            assert b"first" in await chunks.__anext__()
            samples = await scrape(http)
            assert value(samples, "http_requests_in_flight") == 2
            assert value(samples, "backend_requests_in_flight", backend="up") == 1
            release.set()
            assert b"[DONE]" in b"".join([chunk async for chunk in chunks])
        samples = await scrape(http)
    assert value(samples, "http_requests_in_flight") == 1
    assert value(samples, "backend_requests_in_flight", backend="up") == 0
    assert value(samples, "time_to_first_token_seconds_count", backend="up") == 1


async def test_every_response_carries_the_overhead_header(
    start_louter: StartLouter, fake: FakeUpstream
):
    fake.script(JSONReply(chat_completion("slow"), status=200), Hang())
    base = await start_louter(
        "[performance]\ntimeout_seconds = 0.5\n" + backend_toml("up", fake.port)
    )
    async with httpx.AsyncClient(base_url=base) as http:
        responses = [
            await http.post(CHAT, json=body("x")),
            await http.post(CHAT, json=body("x")),  # hangs: 504 after 0.5 s
            await http.get("/health"),
            await http.get("/metrics"),
            await http.post("/nowhere", json={}),
        ]
    for response in responses:
        overhead = float(response.headers["x-louter-overhead-ms"])
        assert 0 <= overhead < 300, response.request.url
    assert responses[1].status_code == 504
    assert float(responses[1].headers["x-louter-overhead-ms"]) < 300  # the 500 ms are upstream's


async def test_metrics_disabled_is_404(start_louter: StartLouter):
    base = await start_louter("[performance]\nenable_metrics = false\n")
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.post(CHAT, json=body("x"))).status_code == 200
        response = await http.get("/metrics")
    assert response.status_code == 404
    assert "enable_metrics" in response.json()["error"]["message"]
    assert "x-louter-overhead-ms" in response.headers


async def test_several_louters_in_one_process_keep_their_own_metrics(start_louter: StartLouter):
    one = await start_louter()
    two = await start_louter()
    async with httpx.AsyncClient() as http:
        await http.post(one + CHAT, json=body("x"))
        samples = parse((await http.get(two + "/metrics")).text)
    assert value(samples, "http_request_duration_seconds_count") == 0


def responses_answer(text: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """A whole Responses answer whose usage is far from any estimate of its text."""
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens,
             "total_tokens": input_tokens + output_tokens}  # fmt: skip
    return {"id": "resp_1", "object": "response", "created_at": 1, "model": "real",
            "status": "completed", "output": [message], "usage": usage}  # fmt: skip


@pytest.mark.parametrize("door", ["/v1/responses", CHAT])
async def test_whole_responses_answers_count_the_backends_tokens(
    start_louter: StartLouter, fake: FakeUpstream, door: str
):
    """A whole answer from a `responses` backend counts its own usage (issue 17: it was an
    estimate), passed through to a Responses client or converted for a chat client."""
    fake.default = JSONReply(responses_answer("hi", 1234, 567))
    base = await start_louter(backend_toml("resp", fake.port, 'protocol = "responses"'))
    request = {"model": "m", "input": "one two three"} if door != CHAT else body("one two three")
    async with httpx.AsyncClient(base_url=base) as http:
        answer = await http.post(door, json=request)
        assert answer.status_code == 200, answer.text
        samples = await scrape(http)
    assert fake.requests[0].path == "/v1/responses"
    assert value(samples, "tokens_total", backend="resp", type="input") == 1234
    assert value(samples, "tokens_total", backend="resp", type="output") == 567
