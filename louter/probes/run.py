"""Running probes against one target over HTTP: the only module here that does I/O.

`run_probes(probes, client, target)` sends each probe's requests with the
`httpx.AsyncClient` it is given (inject `httpx.MockTransport` in tests), reads every
answer through `louter.probes.wire.read`, judges it (`louter.probes.checks`) and
returns one `ProbeResult` per probe, in order. Probes run one after another: small
local servers have one or two slots. A transport failure fails that probe only.

With a `sink` (louter's `Journal`), every exchange is recorded in louter's JSONL format:
a `client_request` (headers with the key redacted, the body) and a `client_response`
(the answer; for a stream, the assembled result with `stream`, `chunks` and `ttft_ms`),
or an `error` entry, joined by `request_id`, so `log-parser` reads them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from louter.convert.probe.fields import load_json, short
from louter.convert.probe.model import Ask, Call, Json, Seen, Wire
from louter.convert.sse import SSEDecoder, SSEEvent
from louter.errors import ConversionError
from louter.probes.catalog import Probe, applicable
from louter.probes.checks import Verdict, judge
from louter.probes.wire import WIRES, Reply, read

REDACTED = "[REDACTED]"


@dataclass(frozen=True, slots=True)
class Target:
    """Where probes go: a base URL speaking `dialect`, and what to expect of it."""

    dialect: str  # a name in DIALECTS: openai | gemini | anthropic | responses
    url: str  # base URL, no trailing slash
    model: str
    key: str | None = None
    mock: bool | None = None  # True: louter's mock (exact answers); None: decide per answer
    backend: str = ""  # a name for reports and the log (default: the URL)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    probe: str
    title: str
    dialect: str
    backend: str
    model: str
    passed: bool
    latency_ms: float
    detail: str

    def as_dict(self) -> Json:
        return {
            "probe": self.probe,
            "title": self.title,
            "dialect": self.dialect,
            "backend": self.backend,
            "model": self.model,
            "passed": self.passed,
            "latency_ms": self.latency_ms,
            "detail": self.detail,
        }


class Sink(Protocol):
    """Where log entries go (louter's `Journal` is one); `timestamp` is its business."""

    def write(self, entry: dict[str, Any], *, payload: Any = None) -> None: ...


class ExchangeFailed(Exception):
    """An exchange that produced no answer to judge (connection refused, timeout, ...)."""


class Session:
    """One target's client, wire and log; numbers the exchanges."""

    def __init__(
        self, client: httpx.AsyncClient, target: Target, sink: Sink | None, run_id: str
    ) -> None:
        self.client = client
        self.target = target
        self.wire: Wire = WIRES[target.dialect]
        self.sink = sink
        self._ids = (f"{run_id}-{n:04d}" for n in itertools.count(1))

    async def send(self, ask: Ask, probe: str) -> Seen:
        """Write `ask`, send it, read the answer. Raises ExchangeFailed."""
        call = self.wire.write(ask, self.target.model)
        request_id = next(self._ids)
        headers = dict(call.headers)
        if self.target.key:
            name, value = self.wire.key_header(self.target.key)
            headers[name] = value
        log = _Log(self, request_id, call, probe)
        log.request(headers)
        started = time.perf_counter()
        try:
            reply, ttft = await self._exchange(call, headers, started)
        except (httpx.HTTPError, ConversionError) as exc:
            message = _describe(exc, self.target.url + call.path)
            log.error(message, started)
            raise ExchangeFailed(message) from exc
        seen = read(self.wire, ask, reply)
        log.response(seen, started, ttft)
        return seen

    async def _exchange(
        self, call: Call, headers: dict[str, str], started: float
    ) -> tuple[Reply, float | None]:
        url = self.target.url + call.path
        request = self.client.build_request(call.method, url, json=call.body, headers=headers)
        response = await self._send(request)
        try:
            kind = response.headers.get("content-type", "")
            if "text/event-stream" not in kind:
                return Reply(response.status_code, kind, await response.aread()), None
            decoder = SSEDecoder()
            events: list[SSEEvent] = []
            ttft: float | None = None
            async for chunk in response.aiter_bytes():
                ttft = _ms(started) if ttft is None else ttft
                events += decoder.feed(chunk)
            events += decoder.flush()
            return Reply(response.status_code, kind, events=tuple(events)), ttft
        finally:
            await response.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Send `request` and read the answer's head. A server may close a kept-alive
        connection just as it is reused (llama-server does after a stream): when one ends
        before any answer, the request goes once more, on a fresh connection."""
        try:
            return await self.client.send(request, stream=True)
        except httpx.RemoteProtocolError:
            return await self.client.send(request, stream=True)


def _describe(exc: Exception, url: str) -> str:
    if isinstance(exc, ConversionError):
        return f"unreadable stream from {url}: {exc.message}"
    return (
        f"{type(exc).__name__} from {url}: {exc}"
        if str(exc)
        else f"{type(exc).__name__} from {url}"
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class _Log:
    """The log entries of one exchange."""

    def __init__(self, session: Session, request_id: str, call: Call, probe: str) -> None:
        self.session = session
        self.call = call
        self.base = {
            "request_id": request_id,
            "format": session.target.dialect,
            "endpoint": call.path.partition("?")[0],
            "backend": session.target.backend or session.target.url,
            "model": session.target.model,
            "probe": probe,
        }

    def _write(self, direction: str, payload: Any = None, **fields: Any) -> None:
        if self.session.sink is not None:
            entry = {**self.base, "direction": direction, **fields}
            self.session.sink.write(entry, payload=payload)

    def request(self, headers: dict[str, str]) -> None:
        secret = self.session.wire.key_header("")[0]
        shown = {k: (REDACTED if k == secret else v) for k, v in headers.items()}
        self._write(
            "client_request",
            self.call.body,
            status=None,
            latency_ms=None,
            method=self.call.method,
            path=self.call.path,
            headers=shown,
        )

    def response(self, seen: Seen, started: float, ttft: float | None) -> None:
        extra = {"stream": True, "chunks": seen.chunks, "ttft_ms": ttft} if seen.stream else {}
        self._write(
            "client_response", seen.log, status=seen.status, latency_ms=_ms(started), **extra
        )

    def error(self, message: str, started: float) -> None:
        self._write("error", status=None, latency_ms=_ms(started), error=message)


# --------------------------------------------------------------------------- probes


async def _probe_verdict(session: Session, probe: Probe) -> Verdict:
    seen = await session.send(probe.ask, probe.name)
    verdict = judge(probe.expect, probe.ask, seen, session.target.mock)
    follow = probe.follow_up
    if follow is None or not verdict.passed:
        return verdict
    call = seen.answer.calls[0]
    arguments, _ = load_json(call.arguments or "{}")
    ask = probe.ask.answered(call, arguments, dict(follow.result))
    second = judge(follow.expect, ask, await session.send(ask, probe.name), session.target.mock)
    if not second.passed:
        return Verdict(tuple(f"after the tool result: {p}" for p in second.problems), second.detail)
    return Verdict((), f"{verdict.detail} → {second.detail}")


async def run_probe(session: Session, probe: Probe) -> ProbeResult:
    started = time.perf_counter()
    try:
        verdict = await _probe_verdict(session, probe)
    except ExchangeFailed as exc:
        verdict = Verdict((str(exc),), "no answer")
    target = session.target
    return ProbeResult(
        probe=probe.name,
        title=probe.title,
        dialect=target.dialect,
        backend=target.backend or target.url,
        model=target.model,
        passed=verdict.passed,
        latency_ms=_ms(started),
        detail=short(verdict.summary(), 300),
    )


async def run_probes(
    probes: Sequence[Probe],
    client: httpx.AsyncClient,
    target: Target,
    *,
    sink: Sink | None = None,
    on_result: Callable[[ProbeResult], None] | None = None,
    run_id: str = "probe",
) -> list[ProbeResult]:
    """Run `probes` against `target`, one after another.

    Args:
        sink: records every exchange in louter's JSONL format (a `Journal`).
        on_result: called with each result as soon as it is known (progress).
        run_id: the prefix of the logged request ids.
    """
    session = Session(client, target, sink, run_id)
    results = []
    for probe in applicable(probes, session.wire.lacks):
        result = await run_probe(session, probe)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results
