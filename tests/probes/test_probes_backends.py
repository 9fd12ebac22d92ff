"""`run_probes` against real HTTP backends: louter on the mock through each front door
(everything passes) and deliberately broken OpenAI-dialect fakes, which the probes must
catch: one drops tool calls, one truncates streams, one ignores images.

The fakes answer like louter's mock (its engine renders the answers) except for their one
defect, so exactly the probes aimed at that defect fail. `test_test_runner.py` and
`test_diagnostic.py` reuse them (`BrokenMock`, `start_fake`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import trio

from louter.errors import ConversionError
from louter.mock import responder
from louter.probes import PROBES, ProbeResult, Target, run_probes
from tests.fakes import FakeUpstream, JSONReply, Recorded, Reply, SSEReply, chat_completion

ALL = {probe.name for probe in PROBES}

# defect -> the probes that must catch it
CAUGHT_BY = {
    "drop-tools": {"tools", "tools-stream", "round-trip"},
    "truncate-streams": {"stream", "tools-stream"},
    "ignore-images": {"image"},
}


# --------------------------------------------------------------------------- broken mocks


def _without_images(body: dict[str, Any]) -> dict[str, Any]:
    def strip(message: Any) -> Any:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            return message
        kept = [p for p in content if not (isinstance(p, dict) and p.get("type") == "image_url")]
        return {**message, "content": kept}

    return {**body, "messages": [strip(m) for m in body.get("messages") or []]}


@dataclass(frozen=True)
class BrokenMock:
    """louter's mock in the OpenAI dialect, with one `defect` (None: a correct backend)."""

    defect: str | None = None

    def answer(self, body: dict[str, Any]) -> tuple[int, str, list[bytes]]:
        """(status, content type, body chunks) for a chat-completions request body."""
        if self.defect == "drop-tools":  # answers text although tools were declared
            body = {k: v for k, v in body.items() if k not in ("tools", "tool_choice")}
        if self.defect == "ignore-images":  # never looks at the images
            body = _without_images(body)
        endpoint = responder.find(responder.endpoints(), "/v1/chat/completions")
        assert endpoint is not None
        try:
            reply = responder.respond(
                endpoint, "/v1/chat/completions", body, response_id="chatcmpl-fake1", created=1
            )
        except ConversionError as exc:
            reply = responder.error(endpoint, exc.status_hint, exc.message)
        kind = dict(reply.headers)[b"content-type"].decode()
        events = reply.chunks
        if kind != "text/event-stream":
            return reply.status, kind, events
        if self.defect == "truncate-streams":  # no finish chunk, no usage, no [DONE]
            events = [e for e in events if b'"finish_reason":null' in e]
        return 200, "text/event-stream", events

    def reply(self, request: Recorded) -> Reply:
        """For FakeUpstream."""
        status, kind, chunks = self.answer(request.json)
        if kind == "text/event-stream":
            return SSEReply(chunks, status=status, pause=0)
        return JSONReply(b"".join(chunks), status=status, content_type=kind)

    def handler(self, request: httpx.Request) -> httpx.Response:
        """For httpx.MockTransport."""
        status, kind, chunks = self.answer(orjson.loads(request.content))
        return httpx.Response(status, headers={"content-type": kind}, content=b"".join(chunks))


async def start_fake(nursery: trio.Nursery, defect: str | None) -> FakeUpstream:
    fake = FakeUpstream(default=BrokenMock(defect).reply)
    await nursery.start(fake.serve)
    return fake


def failed(results: list[ProbeResult]) -> set[str]:
    return {r.probe for r in results if not r.passed}


def by_name(results: list[ProbeResult]) -> dict[str, ProbeResult]:
    return {r.probe: r for r in results}


async def probe(target: Target, **options: Any) -> list[ProbeResult]:
    async with httpx.AsyncClient(timeout=30) as client:
        return await run_probes(PROBES, client, target, **options)


# --------------------------------------------------------------------------- louter's mock


@pytest.mark.parametrize("dialect", ["openai", "gemini", "anthropic"])
@pytest.mark.parametrize("mock", [True, None], ids=["mock", "auto"])
async def test_every_probe_passes_through_every_door_on_the_mock(
    start_louter: Callable[..., Any], dialect: str, mock: bool | None
) -> None:
    base = await start_louter()
    results = await probe(Target(dialect, base, "any-model", mock=mock, backend="mock"))
    assert [r.probe for r in results] == [p.name for p in PROBES]
    assert failed(results) == set(), [r.detail for r in results if not r.passed]
    details = by_name(results)
    question = "What is the capital of France? Answer in one sentence."
    assert details["text"].detail == repr(f'Mock answer to: "{question}" (images: 0)')
    assert details["stream"].detail == details["text"].detail
    assert details["tools"].detail == 'get_weather({"city":"mock-city"})'
    assert "(images: 1)" in details["image"].detail
    assert details["count-tokens"].detail == "7 tokens"
    assert details["error"].detail.startswith("HTTP 400: ")
    assert all(r.dialect == dialect and r.backend == "mock" for r in results)


@pytest.mark.parametrize(("mock", "text_passes"), [(True, False), (None, True), (False, True)])
async def test_exact_answers_are_compared_only_for_the_mock(
    nursery: trio.Nursery, mock: bool | None, text_passes: bool
) -> None:
    """A backend that always says "Paris." is a fine model, but not the mock."""
    fake = FakeUpstream(default=JSONReply(chat_completion("Paris.")))
    await nursery.start(fake.serve)
    result = by_name(await probe(Target("openai", fake.url, "m", mock=mock)))["text"]
    assert result.passed is text_passes
    if not text_passes:
        assert result.detail.startswith("the mock answers 'Mock answer to: ")


# --------------------------------------------------------------------------- broken fakes


async def test_a_correct_fake_passes(nursery: trio.Nursery) -> None:
    fake = await start_fake(nursery, None)
    results = await probe(Target("openai", fake.url, "m"))
    assert failed(results) == set(), [r.detail for r in results if not r.passed]


@pytest.mark.parametrize("defect", sorted(CAUGHT_BY))
async def test_the_probes_catch_each_broken_backend(nursery: trio.Nursery, defect: str) -> None:
    fake = await start_fake(nursery, defect)
    results = await probe(Target("openai", fake.url, "m"))
    assert failed(results) == CAUGHT_BY[defect], [(r.probe, r.detail) for r in results]


async def test_what_the_failures_say(nursery: trio.Nursery) -> None:
    details = {}
    for defect in CAUGHT_BY:
        fake = await start_fake(nursery, defect)
        details[defect] = by_name(await probe(Target("openai", fake.url, "m")))
    assert details["drop-tools"]["tools"].detail.startswith("no tool call (finish 'stop'")
    assert details["drop-tools"]["round-trip"].detail.startswith("no tool call")
    truncated = details["truncate-streams"]["stream"].detail
    assert "the stream ended without `data: [DONE]`" in truncated
    assert "0 finish reasons (one expected)" in truncated
    image = details["ignore-images"]["image"].detail
    assert image.startswith("the mock answers 'Mock answer to: ") and "(images: 0)" in image


async def test_structural_checks_alone_cannot_see_ignored_images(nursery: trio.Nursery) -> None:
    """With `mock=False` (a real model) an image request that is accepted and answered
    passes: only the mock's exact answer proves the image arrived."""
    fake = await start_fake(nursery, "ignore-images")
    results = await probe(Target("openai", fake.url, "m", mock=False))
    assert failed(results) == set()


# --------------------------------------------------------------------------- transports


async def test_run_probes_over_an_injected_transport() -> None:
    transport = httpx.MockTransport(BrokenMock("truncate-streams").handler)
    async with httpx.AsyncClient(transport=transport) as client:
        results = await run_probes(PROBES, client, Target("openai", "http://fake", "m"))
    assert failed(results) == CAUGHT_BY["truncate-streams"]


async def test_an_unreachable_backend_fails_every_probe_with_the_reason() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    seen: list[ProbeResult] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        results = await run_probes(
            PROBES, client, Target("gemini", "http://nowhere", "m"), on_result=seen.append
        )
    assert seen == results
    assert failed(results) == ALL
    assert results[0].detail == (
        "ConnectError from http://nowhere/v1beta/models/m:generateContent: connection refused"
    )


async def test_the_sink_gets_louter_style_entries_with_the_key_redacted(
    start_louter: Any,
) -> None:
    class ListSink:
        def __init__(self) -> None:
            self.entries: list[tuple[dict[str, Any], Any]] = []

        def write(self, entry: dict[str, Any], *, payload: Any = None) -> None:
            self.entries.append((entry, payload))

    sink = ListSink()
    base = await start_louter()
    target = Target("anthropic", base, "any", key="sk-secret", backend="local")
    stream = [p for p in PROBES if p.name == "stream"]
    async with httpx.AsyncClient() as client:
        await run_probes(stream, client, target, sink=sink, run_id="run")
    (request, body), (response, view) = sink.entries
    assert request["direction"] == "client_request" and response["direction"] == "client_response"
    assert request["request_id"] == response["request_id"] == "run-0001"
    assert request["headers"]["x-api-key"] == "[REDACTED]"
    assert "sk-secret" not in orjson.dumps(sink.entries).decode()
    assert request["endpoint"] == "/v1/messages" and request["format"] == "anthropic"
    assert body["stream"] is True and request["probe"] == "stream"
    assert response["status"] == 200 and response["stream"] is True and response["chunks"] > 3
    assert view["content"].startswith("Mock answer to: ") and view["finish_reason"] == "stop"
    assert view["done"] is True and view["error"] is None


async def _serve_once_per_connection(stream: trio.SocketStream) -> None:
    """Answers the first request on a connection (keeping it alive), then reads the next one
    and hangs up without a word: a keep-alive connection the server closed as it was reused."""
    buffer = b""
    for answered in (True, False):
        while b"\r\n\r\n" not in buffer:
            buffer += await stream.receive_some(65536)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(buffer) < length:
            buffer += await stream.receive_some(65536)
        body, buffer = buffer[:length], buffer[length:]
        if not answered:
            break
        status, kind, chunks = BrokenMock().answer(orjson.loads(body))
        payload = b"".join(chunks)
        await stream.send_all(
            b"HTTP/1.1 %d OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
            % (status, kind.encode(), len(payload), payload)
        )
    await stream.aclose()


async def test_a_kept_alive_connection_closed_on_reuse_is_retried_once(
    nursery: trio.Nursery,
) -> None:
    serve = functools.partial(trio.serve_tcp, _serve_once_per_connection, 0, host="127.0.0.1")
    listeners = await nursery.start(serve)
    port = listeners[0].socket.getsockname()[1]
    results = await probe(Target("openai", f"http://127.0.0.1:{port}", "m", mock=True))
    assert failed(results) == set(), [r.detail for r in results]
    assert len(results) == len(PROBES)
