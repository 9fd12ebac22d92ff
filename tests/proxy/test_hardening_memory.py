"""Bounded memory per request and no event-loop stalls (issue 16, part 4).

louter runs as a subprocess so its memory can be read from /proc/PID/status (VmHWM: the
peak resident set). The upstreams here are raw trio sockets that generate their answers
piece by piece (a 1 GiB answer is never held by the test either).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import trio

from louter.convert.collect import StreamCollector, stream_view
from louter.convert.model import MessageStop, TextDelta, ToolCallDelta, ToolCallStart
from louter.convert.openai.stream_parser import StreamAssembler
from tests.paths import REPO as ROOT

MIB = 1024 * 1024
GIB = 1024 * MIB
CHAT = "/v1/chat/completions"
STREAM_SIZE = 256 * MIB  # 1 GiB takes 15-60 s on the shared 2-core machine; 256 MiB proves it
RSS_BOUND = 200 * MIB  # louter's peak resident set in the answer tests


def status_kib(pid: int, key: str) -> int:
    """A `/proc/PID/status` figure (VmRSS, VmHWM) in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{key}:\s+(\d+) kB$", text, re.MULTILINE)
    assert match is not None, text
    return int(match.group(1))


@dataclass
class Louter:
    proc: subprocess.Popen[str]
    url: str

    @property
    def peak(self) -> int:
        return status_kib(self.proc.pid, "VmHWM") * 1024

    @property
    def rss(self) -> int:
        return status_kib(self.proc.pid, "VmRSS") * 1024


@asynccontextmanager
async def louter(config: str, tmp_path: Path, *args: str) -> AsyncIterator[Louter]:
    """`bin/louter` on a free port with `config`; stopped (and reaped) at the end."""
    path = tmp_path / "louter.toml"
    path.write_text(config)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / "louter"), "--config", str(path), "--port", "0",
         *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = ""
        with trio.fail_after(20):
            while (found := re.search(r"http://127\.0\.0\.1:(\d+)", seen)) is None:
                line = await trio.to_thread.run_sync(proc.stdout.readline)
                assert line, f"louter exited: {seen}"
                seen += line
        yield Louter(proc, f"http://127.0.0.1:{found.group(1)}")
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def openai_config(upstream_port: int, performance: str = "") -> str:
    return (
        f"[performance]\n{performance}\n"
        f'[backends.up]\nprotocol = "openai"\nurl = "http://127.0.0.1:{upstream_port}"\n'
    )


# --------------------------------------------------------------------------- raw upstream

Answer = Callable[[trio.SocketStream, bytes], Awaitable[None]]


@dataclass
class RawUpstream:
    """Answers every request with `answers[n]` (the last one repeats), n counted over
    all connections; records how many connections were opened."""

    answers: list[Answer]
    connections: int = 0
    requests: int = 0
    bodies: list[int] = field(default_factory=list)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = await stream.receive_some(1 << 16)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))
                parts, size = [buffer], len(buffer)
                while size < length:
                    data = await stream.receive_some(1 << 20)
                    if not data:
                        return
                    parts.append(data)
                    size += len(data)
                buffer = b"".join(parts)
                body, buffer = buffer[:length], buffer[length:]
                self.bodies.append(len(body))
                answer = self.answers[min(self.requests, len(self.answers) - 1)]
                self.requests += 1
                await answer(stream, body)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            await stream.aclose()


def completion(text: str = "ok") -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text},
                 "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )  # fmt: skip


async def small_answer(stream: trio.SocketStream, body: bytes) -> None:
    data = completion()
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    await stream.send_all(head % len(data) + data)


def huge_body(size: int, *, chunked: bool) -> Answer:
    """A JSON answer of `size` bytes (a string of spaces... never finished in practice),
    sent 1 MiB at a time with a Content-Length or chunked."""
    piece = b" " * MIB

    async def answer(stream: trio.SocketStream, body: bytes) -> None:
        framing = b"transfer-encoding: chunked" if chunked else b"content-length: %d" % size
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + framing + b"\r\n\r\n"
        )
        frame = (b"%x\r\n" % len(piece) + piece + b"\r\n") if chunked else piece
        for _ in range(size // MIB):
            await stream.send_all(frame)

    return answer


def chat_request(content: str = "hi", *, stream: bool = False) -> bytes:
    return orjson.dumps(
        {"model": "m", "messages": [{"role": "user", "content": content}], "stream": stream}
    )


# --------------------------------------------------------------------------- tests


async def check_huge_whole_answer(tmp_path: Path, *, chunked: bool) -> None:
    upstream = RawUpstream([huge_body(GIB, chunked=chunked), small_answer])
    async with trio.open_nursery() as nursery:
        port = await nursery.start(upstream.serve)
        async with louter(openai_config(port), tmp_path) as proxy:
            async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as http:
                started = time.perf_counter()
                answer = await http.post(CHAT, content=chat_request())
                elapsed = time.perf_counter() - started
                assert answer.status_code == 502, answer.text
                message = answer.json()["error"]["message"]
                assert "max_response_bytes = 67108864" in message
                assert elapsed < 10
                # The next request gets a new connection: the cut one is never reused.
                again = await http.post(CHAT, content=chat_request())
                assert again.status_code == 200, again.text
                assert upstream.connections == 2
                assert proxy.peak < RSS_BOUND, proxy.peak / MIB
        nursery.cancel_scope.cancel()


async def test_whole_answer_with_a_huge_content_length_is_refused_unread(tmp_path: Path) -> None:
    await check_huge_whole_answer(tmp_path, chunked=False)


async def test_whole_chunked_answer_past_the_cap_is_cut(tmp_path: Path) -> None:
    await check_huge_whole_answer(tmp_path, chunked=True)


def sse_stream(size: int, text: str) -> tuple[Answer, int, int]:
    """An OpenAI stream of about `size` bytes: 64 KiB blocks of content events, each
    carrying `text`, then a finish event with usage and `[DONE]`. Returns the answer, its
    exact body size and the characters of text it carries."""
    event = (
        b"data: "
        + orjson.dumps(
            {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": text}}]}
        )
        + b"\n\n"
    )
    block = event * (64 * 1024 // len(event))
    blocks = size // len(block)
    finish = b"data: " + orjson.dumps(
        {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}}
    ) + b"\n\ndata: [DONE]\n\n"  # fmt: skip
    total = blocks * len(block) + len(finish)
    chars = blocks * (len(block) // len(event)) * len(text)

    async def answer(stream: trio.SocketStream, body: bytes) -> None:
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        frame = b"%x\r\n" % len(block) + block + b"\r\n"
        for _ in range(blocks):
            await stream.send_all(frame)
        await stream.send_all(b"%x\r\n" % len(finish) + finish + b"\r\n0\r\n\r\n")

    return answer, total, chars


async def test_huge_stream_passes_whole_and_its_log_line_is_capped(tmp_path: Path) -> None:
    answer, total, chars = sse_stream(STREAM_SIZE, "x" * 100)
    upstream = RawUpstream([answer])
    log = tmp_path / "louter.jsonl"
    async with trio.open_nursery() as nursery:
        port = await nursery.start(upstream.serve)
        async with louter(openai_config(port), tmp_path, "--log-file", str(log)) as proxy:
            async with httpx.AsyncClient(base_url=proxy.url, timeout=60) as http:
                received = 0
                tail = b""
                request = chat_request(stream=True)
                async with http.stream("POST", CHAT, content=request) as response:
                    assert response.status_code == 200
                    async for piece in response.aiter_raw():
                        received += len(piece)
                        tail = (tail + piece)[-200:]
            peak = proxy.peak
        nursery.cancel_scope.cancel()
    assert received == total  # the client got every byte
    assert tail.endswith(b"data: [DONE]\n\n")
    assert peak < min(RSS_BOUND, total), peak / MIB
    lines = log.read_bytes().splitlines()
    assert max(len(line) for line in lines) < 3 * MIB
    entries = [orjson.loads(line) for line in lines]
    (client,) = [e for e in entries if e["direction"] == "client_response"]
    payload = client["payload"]
    assert payload["truncated"] is True
    assert payload["text_chars"] == chars
    assert len(payload["content"]) == 1024 * 1024  # log_max_text_chars' default
    assert payload["finish_reason"] == "stop"
    assert payload["usage"]["total_tokens"] == 10
    assert payload["done"] is True


LARGE_REQUEST = 40 * MIB  # a Gemini request converted for an OpenAI backend
MOCK_REQUEST = 20 * MIB  # a long conversation for the mock (inline: 0.56 s at 10 MB)


def gemini_request(size: int) -> bytes:
    """A generateContent body of about `size` bytes: many text parts (conversion work
    grows with their number, as in a long conversation)."""
    part = {"text": "y" * 1000}
    contents = [
        {"role": "user" if n % 2 == 0 else "model", "parts": [part, part]}
        for n in range(size // 2020)
    ]
    contents.append({"role": "user", "parts": [{"text": "and now?"}]})
    return orjson.dumps({"contents": contents})


def chat_conversation(size: int) -> bytes:
    """A Chat Completions body of about `size` bytes in many short messages."""
    messages = [
        {"role": "user" if n % 2 == 0 else "assistant", "content": "y" * 100}
        for n in range(size // 130)
    ]
    return orjson.dumps({"model": "m", "messages": messages})


async def check_no_stall(config: str, tmp_path: Path, path: str, body: bytes) -> None:
    """While louter handles `body`, small requests keep being answered within 0.5 s."""
    upstream = RawUpstream([small_answer])
    async with trio.open_nursery() as nursery:
        port = await nursery.start(upstream.serve)
        config = config.replace("127.0.0.1:0", f"127.0.0.1:{port}")
        async with louter(config, tmp_path) as proxy:
            async with httpx.AsyncClient(base_url=proxy.url, timeout=60) as http:
                for _ in range(3):  # warm: connections open, code paths loaded
                    assert (await http.post(CHAT, content=chat_request())).status_code == 200
                large_done = trio.Event()
                latencies: list[float] = []

                async def large() -> None:
                    answer = await http.post(path, content=body)
                    assert answer.status_code == 200, answer.text
                    large_done.set()

                async with trio.open_nursery() as inner:
                    inner.start_soon(large)
                    while not large_done.is_set():
                        started = time.perf_counter()
                        answer = await http.post(CHAT, content=chat_request())
                        latencies.append(time.perf_counter() - started)
                        assert answer.status_code == 200
                        await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert len(latencies) >= 3, latencies
    assert max(latencies) < 0.5, latencies


async def test_large_converted_request_does_not_stall_small_ones(tmp_path: Path) -> None:
    path = "/v1beta/models/m:generateContent"
    await check_no_stall(openai_config(0), tmp_path, path, gemini_request(LARGE_REQUEST))


async def test_large_request_to_the_mock_does_not_stall_small_ones(tmp_path: Path) -> None:
    """The mock answers in-process: a large prompt is parsed and answered in a thread.
    Small requests go to the OpenAI backend, the large one to the mock by its model."""
    config = openai_config(0) + '[backends.mock]\nmodel_mapping = { big = "big" }\n'
    body = chat_conversation(MOCK_REQUEST).replace(b'"model":"m"', b'"model":"big"', 1)
    await check_no_stall(config, tmp_path, CHAT, body)


BODY = 40 * MIB
BODIES = 6
BODY_BUDGET = 100 * MIB


async def slow_answer(stream: trio.SocketStream, body: bytes) -> None:
    await trio.sleep(0.5)  # keep the admitted requests in flight together
    await small_answer(stream, body)


async def test_concurrent_large_bodies_cost_bounded_memory(tmp_path: Path) -> None:
    """Six 40 MiB bodies at once with max_inflight_body_bytes = 100 MiB: two are handled
    together, the others get a 503 naming the limit. Bound: louter's peak grows by less
    than 2.5x the bodies' total (without the budget, each body costs ~4x its size while
    it is handled: 6 x 40 MiB took louter's peak to ~1 GB)."""
    upstream = RawUpstream([slow_answer])
    config = openai_config(0, f"max_inflight_body_bytes = {BODY_BUDGET}")
    body = chat_request("y" * BODY)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(upstream.serve)
        config = config.replace("127.0.0.1:0", f"127.0.0.1:{port}")
        async with louter(config, tmp_path) as proxy:
            limits = httpx.Limits(max_connections=BODIES)
            async with httpx.AsyncClient(base_url=proxy.url, timeout=60, limits=limits) as http:
                assert (await http.post(CHAT, content=chat_request())).status_code == 200
                base = proxy.peak
                answers: list[httpx.Response] = []

                async def send() -> None:
                    answers.append(await http.post(CHAT, content=body))

                async with trio.open_nursery() as inner:
                    for _ in range(BODIES):
                        inner.start_soon(send)
            grown = proxy.peak - base
        nursery.cancel_scope.cancel()
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) == {200, 503}, statuses
    for answer in answers:
        if answer.status_code == 503:
            assert "max_inflight_body_bytes = 104857600" in answer.json()["error"]["message"]
    assert grown < 2.5 * BODIES * len(body), grown / MIB


# --------------------------------------------------------------------------- log caps (pure)


def test_collector_keeps_text_up_to_its_cap_and_counts_the_rest() -> None:
    collector = StreamCollector(max_text=10)
    for _ in range(1000):
        collector.feed(TextDelta("abcd"))
    collector.feed(ToolCallStart(0, "c1", "f"))
    collector.feed(ToolCallDelta(0, '{"x": 1}'))
    collector.feed(MessageStop("stop"))
    view = stream_view(collector)
    assert view["content"] == "abcdabcdab"
    assert view["truncated"] is True and view["text_chars"] == 4008
    assert view["finish_reason"] == "stop"
    assert sum(len(part.chunks) for part in collector._parts) <= 3  # nothing kept past it
    whole = StreamCollector()
    whole.feed(TextDelta("abcd" * 1000))
    assert "truncated" not in stream_view(whole)


def test_assembler_keeps_text_up_to_its_cap_and_counts_the_rest() -> None:
    event = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"abcd"}}]}\n\n'
    assembler = StreamAssembler(max_text=10)
    for _ in range(100):
        assembler.feed_block(event * 10)
    assert len(assembler._content) <= 300  # folded as it goes
    assembler.feed_block(
        b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        b'"usage":{"total_tokens":5}}\n\ndata: [DONE]\n\n'
    )
    result = assembler.result()
    assert result["content"] == "abcdabcdab"
    assert result["truncated"] is True and result["text_chars"] == 4000
    assert result["finish_reason"] == "stop" and result["usage"] == {"total_tokens": 5}
    uncapped = StreamAssembler()
    uncapped.feed_block(event * 10)
    assert uncapped.result()["content"] == "abcd" * 10
    assert "truncated" not in uncapped.result()
