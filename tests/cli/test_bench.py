"""`bin/bench`: the mock upstream over real loopback HTTP, the report (JSON and table) from
sample wrk summaries, the soak's log count, and end-to-end runs of `bin/bench` (wrk is a
system package, `apt-get install -y wrk`; these tests fail, not skip, without it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httptools
import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from louter.bench import bodies, sanity
from louter.bench.model import (
    CASES,
    BenchError,
    CaseResult,
    CasesReport,
    CpuShare,
    LogCount,
    Machine,
    Measured,
    Memory,
    Pinning,
    SoakReport,
    WrkSummary,
)
from louter.bench.processes import read_line, start
from louter.bench.run import BODIES, choose_pinning
from louter.bench.soak import count_log, marks
from louter.bench.stack import package_env
from louter.bench.upstream import Answers, scan
from louter.bench.wrk import parse_summary
from louter.cli.bench import app, case_notes, cases_view, json_text, render, soak_view
from tests.paths import REPO

BIN = REPO / "bin" / "bench"
CHAT = "/v1/chat/completions"


# --------------------------------------------------------------------------- mock upstream


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """`python3 -m louter.bench.upstream --port 0`, as `bin/bench` starts it: (host, port)."""
    argv = [sys.executable, "-m", "louter.bench.upstream", "--port", "0"]
    output = tmp_path_factory.mktemp("upstream") / "upstream.log"
    child = start("mock upstream", argv, output, env=package_env(), keep_stdout=True)
    try:
        url = read_line(child, 30).rsplit(" ", 1)[-1]
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)
    finally:
        child.stop()


def base(upstream: tuple[str, int]) -> str:
    return f"http://{upstream[0]}:{upstream[1]}"


def request(body: bytes, path: str = CHAT, *, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


class Responses:
    """httptools callbacks collecting complete responses: (status, headers, body)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[tuple[int, dict[str, str], bytes]] = []
        self._headers: dict[str, str] = {}
        self._body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self._headers, self._body))
        self._headers, self._body = {}, b""


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    collected = Responses()
    while len(collected.done) < count:
        data = sock.recv(65536)
        assert data, f"connection closed after {len(collected.done)} of {count} responses"
        collected.parser.feed_data(data)
    return collected.done


@pytest.fixture
def connection(upstream: tuple[str, int]) -> Iterator[socket.socket]:
    with socket.create_connection(upstream, timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield sock


def data_events(body: bytes) -> list[bytes]:
    return [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]


def test_plain_request_gets_a_chat_completion_with_usage(upstream: tuple[str, int]) -> None:
    answer = httpx.post(base(upstream) + CHAT, content=bodies.small_request())
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    data = answer.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": bodies.TEXT}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"]["total_tokens"] == 29


@pytest.mark.parametrize("spelling", [b'"stream": true', b'"stream":true', b'"stream" : true'])
def test_stream_request_gets_a_100_chunk_sse_stream(
    upstream: tuple[str, int], spelling: bytes
) -> None:
    body = b'{"model": "m", ' + spelling + b', "messages": []}'
    answer = httpx.post(base(upstream) + CHAT, content=body)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/event-stream"
    events = data_events(answer.content)
    assert len(events) == bodies.STREAM_CHUNKS + 1 and events[-1] == b"[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 97
    assert sanity.problem("stream", 200, answer.content) is None


def test_stream_false_is_not_a_stream(upstream: tuple[str, int]) -> None:
    answer = httpx.post(base(upstream) + CHAT, content=b'{"stream": false, "messages": []}')
    assert answer.json()["object"] == "chat.completion"


def test_request_with_tools_gets_one_tool_call(upstream: tuple[str, int]) -> None:
    answer = httpx.post(base(upstream) + CHAT, content=bodies.small_request(tools=True))
    choice = answer.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


@pytest.mark.parametrize(
    "path", ["/chat/completions", "/v1/chat/completions", "/openai/v1/chat/completions?x=1"]
)
def test_any_prefix_is_served(upstream: tuple[str, int], path: str) -> None:
    assert httpx.post(base(upstream) + path, content=bodies.small_request()).status_code == 200


@pytest.mark.parametrize(("method", "path"), [("GET", CHAT), ("POST", "/v1/models")])
def test_other_requests_get_404(upstream: tuple[str, int], method: str, path: str) -> None:
    answer = httpx.request(method, base(upstream) + path, content=b"{}")
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "not found"


def test_keep_alive_serves_many_requests_on_one_connection(connection: socket.socket) -> None:
    kinds = [bodies.small_request(), bodies.small_request(stream=True)] * 3
    for body in kinds:
        connection.sendall(request(body))
        ((status, headers, _),) = read_responses(connection, 1)
        assert status == 200 and "connection" not in headers


def test_httpx_reuses_the_connection(upstream: tuple[str, int]) -> None:
    with httpx.Client(base_url=base(upstream)) as client:
        seen = set()
        for _ in range(5):
            response = client.post(CHAT, content=bodies.small_request())
            assert response.status_code == 200
            stream = response.extensions["network_stream"]
            seen.add(id(stream.get_extra_info("socket")))
        assert len(seen) == 1


def test_request_split_across_many_writes(connection: socket.socket) -> None:
    raw = request(bodies.big_request())
    cuts = [10, raw.index(b"\r\n\r\n") + 2, raw.index(b"\r\n\r\n") + 3, 5000, 30000, len(raw)]
    start_at = 0
    for cut in cuts:
        connection.sendall(raw[start_at:cut])
        start_at = cut
        time.sleep(0.02)  # separate TCP segments, separate reads on the server
    ((status, _, body),) = read_responses(connection, 1)
    assert status == 200
    assert sanity.problem("big", status, body) is None


def test_pipelined_requests_are_answered_in_order(connection: socket.socket) -> None:
    kinds = ["small", "stream", "tools", "big", "small"]
    raw = b"".join(request(BODIES[kind]()) for kind in kinds)
    connection.sendall(raw[:-7])  # the last request's end comes in a later write
    time.sleep(0.02)
    connection.sendall(raw[-7:])
    answers = read_responses(connection, len(kinds))
    for kind, (status, _, body) in zip(kinds, answers, strict=True):
        assert sanity.problem(kind, status, body) is None, kind


def test_connection_close_is_honoured(connection: socket.socket) -> None:
    connection.sendall(request(bodies.small_request(), extra="Connection: close\r\n"))
    ((status, headers, _),) = read_responses(connection, 1)
    assert status == 200 and headers["connection"] == "close"
    assert connection.recv(100) == b""


def test_chunked_request_body_is_refused(connection: socket.socket) -> None:
    head = f"POST {CHAT} HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n"
    connection.sendall(head.encode() + b"2\r\n{}\r\n0\r\n\r\n")
    ((status, _, _),) = read_responses(connection, 1)
    assert status == 501
    assert connection.recv(100) == b""


def test_bad_content_length_gets_400(connection: socket.socket) -> None:
    connection.sendall(f"POST {CHAT} HTTP/1.1\r\nHost: b\r\nContent-Length: x1\r\n\r\n".encode())
    ((status, headers, _),) = read_responses(connection, 1)
    assert status == 400 and headers["connection"] == "close"
    assert connection.recv(100) == b""


def test_large_bodies_are_remembered_by_content_not_length() -> None:
    pad = "x" * 6000
    streamed = f'{{"stream": true, "pad": "{pad}"}}'.encode()
    plain = f'{{"stream": null, "pad": "{pad}"}}'.encode()
    tools = f'{{"tools": [1], "pad": "{pad[:-5]}"}}'.encode()
    assert len(streamed) == len(plain)
    answers = Answers()
    head = b"post /v1/chat/completions http/1.1"
    for body, kind in [
        (streamed, "stream"),
        (plain, "chat"),
        (streamed, "stream"),
        (tools, "tools"),
    ] * 2:
        buffer = bytearray(b"..." + body)
        assert answers.kind(head, buffer, 3, len(buffer)) == kind


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"stream": true}', "stream"),
        (b'{"stream_options": {}, "stream":true}', "stream"),
        (b'{"x": "stream", "y": true}', "chat"),
        (b'{"stream":', "chat"),
        (b'{"tools": [], "stream": false}', "tools"),
    ],
)
def test_scan_picks_the_answer(body: bytes, kind: str) -> None:
    assert scan(bytearray(body), 0, len(body)) == kind


def test_big_request_is_about_50_kb_with_12_tools_and_a_long_conversation() -> None:
    data = json.loads(bodies.big_request())
    assert 50_000 <= len(bodies.big_request()) < 56_000
    assert len(data["tools"]) == 12
    roles = {m["role"] for m in data["messages"]}
    assert roles == {"system", "user", "assistant", "tool"} and len(data["messages"]) > 40


# --------------------------------------------------------------------------- reports

SUMMARY = (
    '{"requests":30000,"bytes":12300000,"duration_us":3000000,'
    '"errors":{"connect":0,"read":0,"write":0,"status":0,"timeout":0},'
    '"latency_us":{"min":20,"mean":30.5,"max":900,"p50":25,"p90":40,"p99":120}}'
)
MACHINE = Machine("Test CPU", 2, Pinning(1, 0), "wrk 4.1.0", "3.11.7", "0.1.0")


def summary(requests: int, p50_us: int, errors: int = 0) -> WrkSummary:
    data = json.loads(SUMMARY)
    data["requests"], data["latency_us"]["p50"] = requests, p50_us
    data["errors"]["status"] = errors
    return WrkSummary.from_json(data)


def cases_report(errors: int = 0, load_own: float = 40.0) -> CasesReport:
    direct = Measured(summary(30000, 25), load_cpu=CpuShare(100.0, 99.0))
    louter = Measured(
        summary(6000, 265, errors),
        cpu_s=2.7,
        load_cpu=CpuShare(load_own + 1, load_own),
        proxy_cpu=CpuShare(95.0, 90.0),
    )
    return CasesReport(
        machine=MACHINE,
        duration=3,
        warmup=1,
        results=(CaseResult(CASES["S1"], direct, louter),),
        memory=Memory(start_kib=50_000, end_kib=52_000, peak_kib=53_000),
    )


def text_of(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def test_parse_summary_reads_post_lua_output() -> None:
    parsed = parse_summary(SUMMARY)
    assert parsed.requests == 30000 and parsed.rps == 10000.0
    assert (parsed.p50_ms, parsed.p90_ms, parsed.p99_ms) == (0.025, 0.04, 0.12)
    assert parsed.errors == 0


def test_parse_summary_counts_every_error_kind() -> None:
    data = json.loads(SUMMARY)
    data["errors"] = {"connect": 1, "read": 2, "write": 3, "status": 4, "timeout": 5}
    assert parse_summary(json.dumps(data)).errors == 15


@pytest.mark.parametrize("text", ["", "Running 1s test", '{"requests": 1}'])
def test_parse_summary_rejects_anything_else(text: str) -> None:
    with pytest.raises(BenchError, match="unreadable wrk summary"):
        parse_summary(text)


def test_cases_report_as_json() -> None:
    data = json.loads(json_text(cases_report()))
    (case,) = data["cases"]
    assert case["case"] == "S1" and case["connections"] == 1
    assert case["direct"]["rps"] == 10000.0 and case["louter"]["rps"] == 2000.0
    assert case["overhead"] == {"p50_ms": 0.24, "p90_ms": 0.0, "p99_ms": 0.0, "rps_ratio": 0.2}
    assert case["louter"]["cpu_us_per_request"] == 450.0
    assert case["louter"]["proxy_cpu"] == {"busy_pct": 95.0, "own_pct": 90.0, "others_pct": 5.0}
    assert "cpu_s" not in case["direct"]
    assert data["machine"]["proxy_cpu"] == 1 and data["machine"]["load_cpu"] == 0
    assert data["louter_memory"] == {
        "rss_start_kib": 50000,
        "rss_end_kib": 52000,
        "peak_rss_kib": 53000,
    }
    assert data["errors"] == 0


def test_cases_report_as_table() -> None:
    text = text_of(cases_view(cases_report()))
    row = next(line.split() for line in text.splitlines() if line.split()[:1] == ["S1"])
    assert row == ["S1", "1", "10,000", "2,000", "0.025", "0.265", "+0.240", "+0.000", "450", "0"]
    assert "louter RSS 48.8 MiB after start-up, 50.8 MiB at the end, peak 51.8 MiB" in text
    assert "louter on CPU 1, mock upstream and load on CPU 0" in text
    assert "S1: small chat, latency" in text


def test_render_prints_json_or_a_table_and_gives_the_exit_status() -> None:
    out = Console(file=io.StringIO(), width=100, color_system=None)
    assert render(cases_report(), out, use_json=True) == 0
    assert json.loads(out.file.getvalue())["cases"][0]["case"] == "S1"  # type: ignore[attr-defined]
    assert render(cases_report(errors=3), Console(file=io.StringIO()), use_json=False) == 1


def test_notes_warn_about_a_saturated_or_shared_cpu() -> None:
    assert case_notes(cases_report().results[0]) == []
    (busy,) = case_notes(cases_report(load_own=95.0).results[0])
    assert busy.startswith("S1: wrk and the mock upstream used 95% of the load CPU")
    shared = CaseResult(
        CASES["S2"],
        Measured(summary(1, 1)),
        Measured(summary(1, 1), cpu_s=1.0, load_cpu=CpuShare(60, 20), proxy_cpu=CpuShare(99, 50)),
    )
    assert case_notes(shared) == [
        "S2: other processes took 40% of the load CPU and 49% of the proxy CPU during the "
        "louter run; the numbers are noisy"
    ]


def soak_report(end_kib: int, complete: int = 20_000, failures: int = 0) -> SoakReport:
    log = LogCount(
        lines=80_004,
        size_bytes=80_004_000,
        exchanges=20_000,
        complete=complete,
        incomplete=20_000 - complete,
        duplicated=0,
        errors=0,
        unreadable=0,
    )
    return SoakReport(
        machine=MACHINE,
        requests=20_000,
        connections=16,
        elapsed_s=10.0,
        failures=failures,
        cpu_s=9.0,
        baseline_requests=10_000,
        samples=((2_000, 50_000), (10_000, 60_000), (20_000, end_kib)),
        peak_kib=end_kib,
        log=log,
    )


@pytest.mark.parametrize(
    ("report", "ok"),
    [
        (soak_report(65_000), True),
        (soak_report(67_000), False),  # +11.7 %
        (soak_report(61_000, complete=19_999), False),
        (soak_report(61_000, failures=1), False),
    ],
)
def test_soak_verdict(report: SoakReport, ok: bool) -> None:
    assert report.ok is ok
    data = json.loads(json_text(report))
    assert data["ok"] is ok
    assert data["rss_baseline_kib"] == 60_000 and data["rss_end_kib"] == report.end_kib
    assert data["cpu_us_per_request"] == 450.0 and data["rps"] == 2000.0
    text = text_of(soak_view(report))
    assert ("✅ pass" if ok else "❌ fail") in text
    assert "10,000 (baseline)" in text


def test_soak_samples_start_at_10000_unless_the_run_is_short() -> None:
    assert marks(200_000) == (10_000, 20_000)
    assert marks(20_000) == (10_000, 2_000)
    assert marks(3_000) == (1_500, 300)


def entry(rid: str, direction: str) -> str:
    return json.dumps({"request_id": rid, "direction": direction, "payload": {}}) + "\n"


def test_count_log_finds_complete_incomplete_and_duplicated_exchanges(tmp_path: Path) -> None:
    before = entry("check", "client_request") + entry("check", "client_response")
    lines = [
        *(entry("a", d) for d in ("client_request", "backend_request", "backend_response")),
        entry("a", "client_response"),
        entry("b", "client_request"),  # never answered
        entry("c", "client_request"),
        entry("c", "error"),
        entry("c", "client_response"),
        entry("d", "client_request"),
        entry("d", "client_request"),  # twice
        entry("d", "client_response"),
        "not json\n",
    ]
    log = tmp_path / "louter.jsonl"
    log.write_text(before + "".join(lines))
    count = count_log(log, start=len(before.encode()))
    assert count == LogCount(
        lines=12,
        size_bytes=len("".join(lines).encode()),
        exchanges=4,
        complete=2,
        incomplete=1,
        duplicated=1,
        errors=1,
        unreadable=1,
    )


def test_pinning_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 2, 6})
    assert choose_pinning(None, None, has_taskset=True) == Pinning(proxy_cpu=4, load_cpu=2)
    assert choose_pinning(None, None, has_taskset=False) is None
    assert choose_pinning(6, None, has_taskset=True) == Pinning(proxy_cpu=6, load_cpu=2)
    with pytest.raises(BenchError, match="share CPU 2") as same:
        choose_pinning(2, 2, has_taskset=True)
    assert same.value.exit_code == 2
    with pytest.raises(BenchError, match="need taskset"):
        choose_pinning(1, 0, has_taskset=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert choose_pinning(None, None, has_taskset=True) is None


# --------------------------------------------------------------------------- the CLI


def test_missing_wrk_exits_2_saying_how_to_install_it() -> None:
    result = CliRunner().invoke(app, ["--wrk", "/nonexistent/wrk", "--cases", "S1"])
    assert result.exit_code == 2
    assert "apt-get install wrk" in result.stderr
    assert result.stdout == ""


def test_unknown_case_exits_2() -> None:
    result = CliRunner().invoke(app, ["--cases", "S1,S9"])
    assert result.exit_code == 2
    assert "unknown case 'S9'; cases: S1, S2, S3, S4" in result.stderr


def run_bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PROXY_BACKEND"}
    return subprocess.run(
        [sys.executable, str(BIN), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_bin_bench_measures_s1_direct_and_through_louter() -> None:
    done = run_bench("--duration", "1", "--warmup", "0", "--cases", "S1")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # stdout is a pipe: JSON
    (case,) = data["cases"]
    assert case["case"] == "S1"
    for target in ("direct", "louter"):
        numbers = case[target]
        assert numbers["requests"] > 0 and numbers["rps"] > 0, target
        assert 0 < numbers["p50_ms"] <= numbers["p99_ms"], target
        assert numbers["errors"] == 0, target
    assert case["louter"]["cpu_us_per_request"] > 0
    assert isinstance(case["overhead"]["p50_ms"], float)
    assert data["louter_memory"]["rss_start_kib"] > 0
    assert re.search(r"bench: louter on http://127\.0\.0\.1:\d+ \(pid \d+\)", done.stderr)


def test_config_extra_reaches_louter(tmp_path: Path) -> None:
    """`--config-extra` is appended to louter's config: with a client key for wrk's
    `Bearer sk-bench-client` there, every request is admitted under that key's name."""
    extra = tmp_path / "extra.toml"
    digest = hashlib.sha256(b"sk-bench-client").hexdigest()
    extra.write_text(f'[keys.bench]\nkey_sha256 = "{digest}"\n\n[limits.default]\nrpm = 10000000\n')
    work = tmp_path / "work"
    done = run_bench(
        "--duration", "1", "--warmup", "0", "--cases", "S1",
        "--config-extra", str(extra), "--workdir", str(work),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (case,) = json.loads(done.stdout)["cases"]
    assert case["direct"]["errors"] == 0 and case["louter"]["errors"] == 0
    assert "[keys.bench]" in (work / "louter.toml").read_text()
    entries = [json.loads(line) for line in (work / "louter.jsonl").read_text().splitlines()]
    requests = [e for e in entries if e["direction"] == "client_request"]
    assert requests and all(e.get("key") == "bench" for e in requests)


def test_bin_bench_soak_counts_every_exchange() -> None:
    done = run_bench("--soak", "600", "--connections", "4")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] is True and data["failures"] == 0
    assert data["rss_baseline_requests"] == 300
    assert [s["requests"] for s in data["rss_kib"]] == list(range(60, 601, 60))
    assert data["log"]["exchanges"] == data["log"]["complete"] == 600
    assert data["log"]["lines"] == 2400  # four entries an exchange


def stderr_lines_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """What `proc` wrote on stderr up to a line containing `marker`."""
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        while marker not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and selector.select(remaining), f"no {marker!r} in {seen!r}"
            line = proc.stderr.readline()
            assert line, f"stderr ended without {marker!r}: {seen!r}"
            seen += line
    return seen


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_stops_every_started_process(signum: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(BIN), "--duration", "30", "--warmup", "0", "--cases", "S1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = stderr_lines_until(proc, "S1 direct", timeout=60)
        pids = [int(pid) for pid in re.findall(r"\(pid (\d+)\)", seen)]
        assert len(pids) == 2, seen
        proc.send_signal(signum)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} was left running"


def test_workers_pin_louter_to_as_many_cpus() -> None:
    from louter.bench.model import Pinning, Settings
    from louter.bench.stack import louter_cpus

    one = Settings(louter=("louter",), pinning=Pinning(proxy_cpu=1, load_cpu=0))
    assert louter_cpus(one) == 1
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) >= 2:
        two = Settings(
            louter=("louter",), pinning=Pinning(proxy_cpu=allowed[1], load_cpu=allowed[0]),
            workers=2,
        )  # fmt: skip
        assert louter_cpus(two) == f"{allowed[1]},{allowed[0]}"
    assert louter_cpus(Settings(louter=("louter",), workers=2)) is None
