"""The pure parts behind log-parser (`louter.logs`): reading, queries, tool-call
normalisation per dialect, pairing, stats and percentiles. Replay and the rich views
live in `louter.cli`: tests/cli/test_log_replay.py, tests/cli/test_log_views.py."""

from __future__ import annotations

import gzip
import io
import math
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from louter.cli import log_views as views
from louter.logs.pairs import Pairer, pair_entries, select_pairs, to_dict
from louter.logs.query import (
    QueryError,
    build_query,
    client_model,
    entry_time,
    gemini_path_model,
    parse_time,
)
from louter.logs.reader import (
    Follower,
    LineCounts,
    LogFileError,
    follow_lines,
    open_log,
    parse_lines,
)
from louter.logs.sketch import Sketch
from louter.logs.stats import Stats, usage_tokens
from louter.logs.tools import function_record, make_call, tool_use
from tests.logs.test_log_parser_support import (
    anthropic_entries,
    dialect_entries,
    gemini_entries,
    make_real_log,
    read_jsonl,
    responses_entries,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log of a real louter run (tests/logs/test_log_parser_support.py)."""
    return make_real_log(tmp_path_factory)


def entry(request_id: str, direction: str, **fields: Any) -> dict[str, Any]:
    return {"request_id": request_id, "direction": direction, **fields}


# --------------------------------------------------------------------------- reader


def test_parse_lines_counts_and_skips_bad_lines() -> None:
    lines = [b'{"a": 1}\n', b"not json\n", b"\n", b"[1, 2]\n", b'{"b": 2}', b"\xff\xfe\n"]
    counts = LineCounts()
    assert list(parse_lines(lines, counts)) == [{"a": 1}, {"b": 2}]
    assert (counts.lines, counts.bad, counts.first_bad_line) == (6, 3, 2)
    assert counts.first_bad_reason.startswith("not JSON (invalid literal")


def test_a_number_beyond_the_float_range_is_read_and_nan_is_not() -> None:
    """A client's body forwarded as written may hold one (valid JSON orjson refuses)."""
    lines = [b'{"payload": {"x": 1e400}}\n', b'{"x": NaN}\n', b'{"x": Infinity}\n']
    counts = LineCounts()
    assert list(parse_lines(lines, counts)) == [{"payload": {"x": float("inf")}}]
    assert counts.bad == 2


def test_open_log_reads_gzip_by_magic_and_stdin(tmp_path: Path) -> None:
    data = b'{"n": 1}\n{"n": 2}\n'
    packed = tmp_path / "rotated.1"  # no .gz suffix: recognised by its magic bytes
    packed.write_bytes(gzip.compress(data))
    with open_log(str(packed), io.BytesIO()) as stream:
        assert list(parse_lines(stream, LineCounts())) == [{"n": 1}, {"n": 2}]
    stdin = io.BufferedReader(io.BytesIO(gzip.compress(data)))
    assert [e["n"] for e in parse_lines(open_log("-", stdin), LineCounts())] == [1, 2]
    assert list(parse_lines(open_log("-", io.BytesIO(data)), LineCounts()))[1] == {"n": 2}


def test_open_log_missing_file_and_truncated_gzip(tmp_path: Path) -> None:
    with pytest.raises(LogFileError, match="cannot open .*missing"):
        open_log(str(tmp_path / "missing"), io.BytesIO())
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(b'{"n": 1}\n' * 1000)[:-20])
    counts = LineCounts()
    with pytest.raises(LogFileError, match="read failed"):
        list(parse_lines(open_log(str(cut), io.BytesIO()), counts))


def test_follower_keeps_partial_lines_and_survives_truncation(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"n": 1}\n{"n": ')
    follower = Follower(log)
    assert follower.read() == [b'{"n": 1}']
    assert follower.read() == []  # the partial line waits for its newline
    with log.open("ab") as f:
        f.write(b"2}\n")
    assert follower.read() == [b'{"n": 2}']
    log.write_bytes(b'{"n": 3}\n')  # copy-truncate: shorter than the read position
    assert follower.read() == [b'{"n": 3}']
    log.write_bytes(b'{"n": 4}\n{"n": 5}\n')  # rewritten, and longer than before
    assert follower.read() == [b'{"n": 4}', b'{"n": 5}']
    log.write_bytes(b'{"n": 6}\n{"n": 7}\n')  # rewritten to exactly the same size
    assert follower.read() == [b'{"n": 6}', b'{"n": 7}']
    assert follower.read() == []
    follower.close()


def test_follower_survives_rotation_draining_the_old_file(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"n": 1}\n')
    follower = Follower(log)
    assert follower.read() == [b'{"n": 1}']
    with log.open("ab") as f:
        f.write(b'{"n": 2}\n{"n": 3}')  # written just before the rename; no final newline
    os.rename(log, tmp_path / "log.jsonl.1")
    assert follower.read() == [b'{"n": 2}']
    assert follower.read() == []  # renamed away, the new file not there yet
    log.write_bytes(b'{"n": 4}\n')
    assert follower.read() == [b'{"n": 3}']  # the old file's unterminated last line
    assert follower.read() == [b'{"n": 4}']
    follower.close()


def test_follow_lines_polls_until_told_to_stop(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"a\n")
    script = iter([lambda: log.write_bytes(b"a\nb\n"), lambda: None])
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        next(script)()

    polls = iter([True, True, False])
    lines = list(follow_lines(log, poll_seconds=0.5, sleep=sleep, keep_going=lambda: next(polls)))
    assert lines == [b"a", b"b"]
    assert naps == [0.5, 0.5]


def test_follower_reopens_after_close_and_waits_for_the_file(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"a\nb\n")
    follower = Follower(log)
    assert follower.read() == [b"a", b"b"]
    follower.close()
    assert follower.read() == [b"a", b"b"]  # reopened, from the start
    follower.close()
    log.unlink()
    assert follower.read() == []  # nothing at the path (yet)
    log.write_bytes(b"c\n")
    assert follower.read() == [b"c"]
    follower.close()


def test_follow_refuses_missing_and_compressed_files(tmp_path: Path) -> None:
    with pytest.raises(LogFileError, match="cannot open .*Is a directory"):
        Follower(tmp_path)
    with pytest.raises(LogFileError, match="No such file"):
        Follower(tmp_path / "missing.jsonl")
    packed = tmp_path / "log.jsonl.gz"
    packed.write_bytes(gzip.compress(b"{}\n"))
    with pytest.raises(LogFileError, match="compressed"):
        Follower(packed)


# --------------------------------------------------------------------------- query


def test_parse_time_relative_iso_and_zones() -> None:
    assert parse_time("10m", NOW) == "2026-01-01T11:50:00.000Z"
    assert parse_time("1.5h", NOW) == "2026-01-01T10:30:00.000Z"
    assert parse_time("2026-01-01T10:30", NOW) == "2026-01-01T10:30:00.000Z"
    assert parse_time("2026-01-01T12:30:00.250+02:00", NOW) == "2026-01-01T10:30:00.250Z"
    assert parse_time("2026-01-01", NOW) == "2026-01-01T00:00:00.000Z"
    with pytest.raises(QueryError, match="bad time 'soon'"):
        parse_time("soon", NOW)


def test_entry_time_accepts_other_iso_forms() -> None:
    assert entry_time({"timestamp": "2026-01-01T10:00:00.123Z"}) == "2026-01-01T10:00:00.123Z"
    assert entry_time({"timestamp": "2026-01-01T11:00:00+01:00"}) == "2026-01-01T10:00:00.000Z"
    assert entry_time({"timestamp": "yesterday"}) is None
    assert entry_time({}) is None


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({}, ["1", "2", "3", "4"]),
        ({"direction": "client_response"}, ["2", "4"]),
        ({"status": "4xx"}, ["4"]),
        ({"status": "200"}, ["2"]),
        ({"errors": True}, ["3", "4"]),
        ({"model": "inner"}, ["1"]),  # the backend's model name matches too
        ({"model": "outer", "direction": "client_response"}, ["2", "4"]),
        ({"endpoint": "chat"}, ["1", "2"]),
        ({"backend": "qwen", "format": "openai"}, ["1", "2"]),
        ({"request_id": "b"}, ["3", "4"]),
        ({"since": "2026-01-01T10:00:01"}, ["2", "3", "4"]),
        ({"until": "2026-01-01T10:00:01.000"}, ["1", "2"]),
        ({"since": "2h", "until": "90m"}, ["1", "2", "3"]),  # 10:00 to 10:30, inclusive
    ],
)
def test_query_criteria_combine(criteria: dict[str, Any], expected: list[str]) -> None:
    entries = [
        entry(
            "a",
            "backend_request",
            n="1",
            backend="qwen",
            format="openai",
            model="outer",
            backend_model="inner",
            endpoint="/v1/chat",
            timestamp="2026-01-01T10:00:00.000Z",
        ),
        entry(
            "a",
            "client_response",
            n="2",
            backend="qwen",
            format="openai",
            model="outer",
            status=200,
            endpoint="/v1/chat",
            timestamp="2026-01-01T10:00:01.000Z",
        ),
        entry("b", "error", n="3", status=None, model="x", timestamp="2026-01-01T10:30:00.000Z"),
        entry(
            "b",
            "client_response",
            n="4",
            status=404,
            model="outer",
            timestamp="2026-01-01T11:45:00.000Z",
        ),
    ]
    query = build_query(now=NOW, **criteria)
    assert [e["n"] for e in entries if query.matches(e)] == expected
    assert query.empty == (not criteria)


@pytest.mark.parametrize(
    ("target", "model"),
    [
        ("/v1beta/models/gemini-pro:generateContent", "gemini-pro"),
        ("/v1beta/models/gpt-oss:20b:streamGenerateContent?alt=sse&key=x", "gpt-oss:20b"),
        ("/v1/models/qwen3:latest:countTokens", "qwen3:latest"),
        ("/v1beta/models/qwen3:latest", "qwen3:latest"),  # GET models/{m}: no action
        ("/v1beta/models/my%2Fmodel:generateContent", "my/model"),
        ("/v1beta/models/", None),
        ("/v1/chat/completions", None),
        (None, None),
    ],
)
def test_gemini_path_model(target: Any, model: str | None) -> None:
    assert gemini_path_model(target) == model


def test_client_model_in_every_dialect() -> None:
    """The entry's `model`; a Gemini request without one: its path's (then endpoint's)."""
    path = "/v1beta/models/m-1:streamGenerateContent?alt=sse"
    endpoint = "/v1beta/models/m-2:generateContent"
    gemini = entry("g", "client_request", format="gemini", model=None, path=path)
    assert client_model(gemini) == "m-1"
    assert client_model({**gemini, "path": None, "endpoint": endpoint}) == "m-2"
    assert client_model({**gemini, "model": "named"}) == "named"
    assert client_model({**gemini, "format": "openai"}) is None  # only Gemini paths
    assert client_model(entry("o", "client_request", format="openai", model="gpt")) == "gpt"
    assert client_model({}) is None
    query = build_query(now=NOW, model="m-1")
    assert query.matches(gemini) and not query.matches({**gemini, "path": endpoint})


def test_query_rejects_bad_input() -> None:
    with pytest.raises(QueryError, match="bad status 'ok'"):
        build_query(now=NOW, status="ok")
    with pytest.raises(QueryError, match="unknown criterion"):
        build_query(now=NOW, colour="red")
    assert not build_query(now=NOW, since="1h").matches({"direction": "error"})  # no timestamp


# --------------------------------------------------------------------------- tools


def calls(found: Any) -> list[tuple[Any, str, Any]]:
    return [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in found.calls]


def results(found: Any) -> list[tuple[Any, Any, Any]]:
    return [(r["id"], r["name"], r["content"]) for r in found.results]


def test_gemini_tools() -> None:
    request, response = (tool_use(e["payload"]) for e in gemini_entries())
    assert request.declared == ("get_weather", "get_time")
    assert calls(request) == [("g1", "get_weather", {"city": "Oslo"})]
    assert results(request) == [("g1", "get_weather", {"sky": "snow"})]
    assert calls(response) == [(None, "get_time", {})]
    assert response.calls[0]["arguments_text"] == "{}"


def test_anthropic_tools() -> None:
    request, response = (tool_use(e["payload"]) for e in anthropic_entries())
    assert request.declared == ("read_file",)
    assert calls(request) == [("toolu_1", "read_file", {"path": "README.md"})]
    assert results(request) == [("toolu_1", None, "# louter")]
    assert calls(response) == [("toolu_2", "list_files", {})]


def test_responses_tools_and_assembled_stream() -> None:
    request, response, _, stream = (tool_use(e["payload"]) for e in responses_entries())
    assert request.declared == ("shell",)
    assert calls(request) == [("fc_1", "shell", {"cmd": "ls"})]
    assert results(request) == [("fc_1", None, "README.md")]
    assert calls(response) == [("fc_2", "shell", "{bad json")]
    assert response.calls[0]["valid_json"] is False
    assert calls(stream) == [("fc_3", "shell", {})]


def test_openai_tools_in_requests_and_responses() -> None:
    payload = {
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "functions": [{"name": "legacy"}],
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "done"},
        ],
        "choices": [{"message": {"tool_calls": [{"id": "c2", "function": {"name": "g"}}]}}],
    }
    found = tool_use(payload)
    assert found.declared == ("f", "legacy")
    assert calls(found) == [("c1", "f", [1]), ("c2", "g", {})]
    assert results(found) == [("c1", "f", "done")]


def test_no_tools_and_odd_payloads() -> None:
    assert not tool_use({"messages": [{"role": "user", "content": "hi"}], "tools": []})
    assert not tool_use("not json")
    assert not tool_use(None)
    assert not tool_use({"content": "text", "input": "a string", "contents": [None, 3]})
    assert function_record({"payload": {"messages": []}}) is None
    odd = make_call(7, None, None)
    assert (odd["id"], odd["valid_json"]) == (None, True)
    assert odd["function"] == {"name": "", "arguments": {}}


def test_function_record_shape() -> None:
    record = function_record(responses_entries()[0])
    assert record is not None
    assert record["request_id"] == "rsp-1" and record["tools"] == ["shell"]
    assert record["tool_calls"][0] == {
        "id": "fc_1",
        "type": "function",
        "function": {"name": "shell", "arguments": {"cmd": "ls"}},
        "arguments_text": '{"cmd": "ls"}',
        "valid_json": True,
    }
    assert "payload" not in record


# --------------------------------------------------------------------------- pairs


def test_pairs_join_interleaved_exchanges() -> None:
    log = [
        entry("a", "client_request"),
        entry("b", "client_request"),
        entry("a", "backend_request"),
        entry("b", "backend_request"),
        entry("b", "backend_response", status=200),
        entry("a", "backend_response", status=500),
        entry("b", "client_response", status=200),
        entry("a", "error", status=502),
        entry("c", "client_request"),
        entry("a", "client_response", status=502),
        entry("d", "chunk"),
    ]
    exchanges = list(pair_entries(log))
    assert [(x.request_id, x.complete) for x in exchanges] == [
        ("b", True),
        ("a", True),
        ("c", False),
        ("d", False),
    ]
    a = exchanges[1]
    assert [e["direction"] for e in a.entries()] == [
        "client_request",
        "backend_request",
        "backend_response",
        "error",
        "client_response",
    ]
    assert exchanges[3].others[0]["direction"] == "chunk"
    summary = to_dict(exchanges[2])
    assert (summary["status"], summary["complete"], summary["client_response"]) == (
        None,
        False,
        None,
    )
    assert (summary["request"], summary["response"]) == (entry("c", "client_request"), None)
    answered = to_dict(a)
    assert answered["request"] == entry("a", "client_request")
    assert answered["response"] == entry("a", "client_response", status=502)


def test_pairer_bounds_open_exchanges() -> None:
    pairer = Pairer(max_open=2)
    assert pairer.feed(entry("a", "client_request")) == []
    assert pairer.feed(entry("b", "client_request")) == []
    evicted = pairer.feed(entry("c", "client_request"))
    assert [(x.request_id, x.complete) for x in evicted] == [("a", False)]
    assert [x.request_id for x in pairer.flush()] == ["b", "c"]
    assert pairer.flush() == []


def test_response_without_request_and_selection() -> None:
    log = [
        entry("x", "error", status=404, error="unknown path"),
        entry("x", "client_response", status=404),
        *dialect_entries(),
    ]
    exchanges = list(pair_entries(log))
    assert exchanges[0].client_request is None and exchanges[0].first()["direction"] == "error"
    errors = select_pairs(exchanges, lambda e: e.get("status") == 404)
    assert [x.request_id for x in errors] == ["x"]
    assert to_dict(exchanges[0])["request"] == log[0]  # no client request: the first entry
    tools = select_pairs(exchanges, lambda e: True, functions_only=True)
    assert [x.request_id for x in tools] == ["gem-1", "ant-1", "rsp-1", "rsp-2"]
    gemini = to_dict(exchanges[1])
    assert gemini["tools_declared"] == ["get_weather", "get_time"]
    assert gemini["tool_calls"] == ["get_time"]


def test_model_of_an_unanswered_gemini_exchange_is_in_its_path() -> None:
    """A Gemini client left mid-stream: no response, and a request whose body and entry
    name no model; the pair, its browse row and its `functions` record take the path's."""
    request = {**gemini_entries()[0], "model": None, "request_id": "gone"}
    [exchange] = pair_entries([request])
    assert not exchange.complete and exchange.model() == "qwen3-coder"
    assert to_dict(exchange)["model"] == "qwen3-coder"
    record = function_record(request)
    assert record is not None and record["model"] == "qwen3-coder"
    assert "qwen3-coder" in views.entry_line(request).plain


def test_pairs_of_the_real_log(real_log: Path) -> None:
    entries = read_jsonl(real_log)
    exchanges = list(pair_entries(entries))
    assert all(x.complete for x in exchanges)
    assert len(exchanges) == len({e["request_id"] for e in entries})
    for exchange in exchanges:
        mine = [e for e in entries if e["request_id"] == exchange.request_id]
        assert list(exchange.entries()) == sorted(mine, key=lambda e: _ORDER[e["direction"]])


_ORDER = {
    "client_request": 0,
    "backend_request": 1,
    "backend_response": 2,
    "error": 3,
    "client_response": 4,
}


# --------------------------------------------------------------------------- percentiles


def exact(values: list[float], q: float) -> float:
    return sorted(values)[max(1, math.ceil(q * len(values))) - 1]


def test_sketch_is_exact_for_small_samples() -> None:
    sketch = Sketch()
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    for value in values:
        sketch.add(value)
    assert sketch.exact
    assert [sketch.quantile(q) for q in (0.2, 0.5, 0.9, 1.0)] == [1.0, 3.0, 5.0, 5.0]
    assert sketch.summary() == {
        "count": 5,
        "min": 1.0,
        "p50": 3.0,
        "p90": 5.0,
        "p99": 5.0,
        "max": 5.0,
        "mean": 3.0,
        "method": "exact",
    }


def test_sketch_stays_within_one_percent_past_the_exact_limit() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1.5) for _ in range(20_000)] + [0.0] * 50
    sketch = Sketch(exact_limit=1000)
    for value in values:
        sketch.add(value)
    assert not sketch.exact
    for q in (0.001, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0):
        got = sketch.quantile(q)
        assert got is not None
        assert got == pytest.approx(exact(values, q), rel=0.01, abs=1e-9), q
    assert sketch.summary()["method"] == "sketch"
    assert len(sketch._buckets) < 2000  # bounded by the spread, not the count


def test_empty_sketch() -> None:
    sketch = Sketch()
    assert sketch.quantile(0.5) is None
    assert sketch.summary()["count"] == 0 and sketch.summary()["p99"] is None


# --------------------------------------------------------------------------- stats


def test_usage_shapes() -> None:
    assert usage_tokens({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == (3, 4)
    assert usage_tokens({"usage": {"input_tokens": 5, "output_tokens": 6}}) == (5, 6)
    gemini = {"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 8}}
    assert usage_tokens(gemini) == (7, 8)
    assert usage_tokens({"usage": None}) is None
    assert usage_tokens("text") is None


def test_stats_of_other_dialects() -> None:
    stats = Stats()
    for item in [*dialect_entries(), entry("e", "error", status=502), {"garbage": True}]:
        stats.feed(item)
    result = stats.result()
    assert result["entries"] == 10
    assert result["by_direction"] == {"client_request": 4, "client_response": 4, "error": 1, "-": 1}
    assert result["by_format"] == {"responses": 2, "anthropic": 1, "gemini": 1}
    assert result["tokens"]["total"] == {"in": 111, "out": 24}
    assert result["tokens"]["by_model"]["gpt-x"] == {"in": 41, "out": 8}
    assert result["tool_calls"]["by_name"] == {"shell": 2, "get_time": 1, "list_files": 1}
    assert result["errors"] == {"total": 1, "by_type": {"HTTP 502": 1}, "failed_responses": 0}
    assert result["streaming"] == {"stream": 1, "non_stream": 3}
    assert result["ttft"]["p50"] == 12.5 and result["latency"]["count"] == 4
