"""A load generator that sends an exact number of requests (trio sockets, httptools).

wrk runs for a time, and the requests in flight when it stops are cut off; the soak test
needs to know exactly how many requests louter got, to match them against its log. So:
`drive(...)` keeps `connections` keep-alive connections busy, one request in flight on
each, until `total` requests have been answered, each body taken in turn from `requests`
(request n gets `requests[n % len(requests)]`). `on_answered(n)` is called when the n-th
request is done (answered, or failed), for the n in `marks`. Failures (no answer, a
non-2xx status) are counted, not retried (a retry would be a second exchange in louter's
log); after `MAX_FAILURES` the run is abandoned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import httptools
import trio

from louter.bench.stack import PATH

ANSWER_TIMEOUT_S = 60.0
MAX_FAILURES = 100


def raw_request(host: str, port: int, body: bytes) -> bytes:
    """A complete HTTP/1.1 POST of `body` to louter's chat endpoint."""
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nAuthorization: Bearer sk-bench-client\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Completion:
    """httptools callbacks: notes when a response is complete."""

    def __init__(self) -> None:
        self.done = False

    def on_message_complete(self) -> None:
        self.done = True


@dataclass(slots=True)
class Tally:
    """The run so far, shared by the workers (one trio thread: no locks needed)."""

    total: int
    started: int = 0
    answered: int = 0
    failures: int = 0
    first_failure: str = ""
    elapsed_s: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failures += 1
        self.first_failure = self.first_failure or reason


async def exchange(stream: trio.SocketStream, request: bytes) -> tuple[int, bool]:
    """Send one request and read its response: (status, connection reusable).

    Raises:
        trio.BrokenResourceError, OSError: the connection failed.
        EOFError: it closed before the response was complete.
        httptools.HttpParserError: the response is not HTTP.
    """
    await stream.send_all(request)
    completion = _Completion()
    parser = httptools.HttpResponseParser(completion)
    while not completion.done:
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError("connection closed mid-response")
        parser.feed_data(data)
    return parser.get_status_code(), parser.should_keep_alive()


async def _worker(
    address: tuple[str, int],
    requests: Sequence[bytes],
    tally: Tally,
    on_answered: Callable[[int], None],
    marks: Collection[int],
    cancel: trio.CancelScope,
) -> None:
    stream: trio.SocketStream | None = None
    while tally.started < tally.total:
        n = tally.started
        tally.started += 1
        try:
            with trio.fail_after(ANSWER_TIMEOUT_S):
                if stream is None:
                    stream = await trio.open_tcp_stream(*address)
                status, reusable = await exchange(stream, requests[n % len(requests)])
        except (
            OSError,
            EOFError,
            trio.BrokenResourceError,
            trio.TooSlowError,
            httptools.HttpParserError,
        ) as exc:
            tally.fail(f"request {n}: {exc!r}")
            status, reusable = 0, False
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status and not 200 <= status < 300:
            tally.fail(f"request {n}: status {status}")
        if not reusable and stream is not None:
            await stream.aclose()
            stream = None
        tally.answered += 1
        if tally.answered in marks:
            on_answered(tally.answered)
        if tally.failures >= MAX_FAILURES:
            cancel.cancel()
    if stream is not None:
        await stream.aclose()


async def drive(
    host: str,
    port: int,
    requests: Sequence[bytes],
    total: int,
    *,
    connections: int,
    on_answered: Callable[[int], None],
    marks: Collection[int] = (),
) -> Tally:
    """Send `total` requests over `connections` connections; see the module docstring."""
    tally = Tally(total)
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(min(connections, total)):
            nursery.start_soon(
                _worker, (host, port), requests, tally, on_answered, marks, nursery.cancel_scope
            )
    tally.elapsed_s = time.perf_counter() - started
    return tally
