"""`log-parser` end to end: typer's CliRunner and real processes (`bin/log-parser`, piped
into jq) over the log of a real louter run (tests/logs/test_log_parser_support.py), with
hand-written entries of the other dialects mixed in; following a growing, rotated and
truncated file; replaying to a running louter.

jq is a system package (`apt-get install -y jq`); the jq tests fail, not skip, without it.
"""

from __future__ import annotations

import gzip
import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
from typer.testing import CliRunner

from louter.cli.log_parser import app
from tests.logs.test_log_parser_support import (
    CONCURRENT,
    CONFIG,
    LOG_PARSER,
    ODD_ENTRIES,
    SEQUENTIAL,
    dialect_entries,
    make_real_log,
    read_jsonl,
    run_log_parser,
    write_jsonl,
)

EXCHANGES = SEQUENTIAL + CONCURRENT


@pytest.fixture
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log of a real louter run (tests/logs/test_log_parser_support.py)."""
    return make_real_log(tmp_path_factory)


def invoke(*args: str, stdin: bytes | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=stdin)


def objects(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def asked_model(request: dict[str, Any]) -> str:
    """The model a logged client request asked for: in its body, or for Gemini (whose
    body has no model) in its path, `/v1beta/models/{model}:{action}`."""
    payload = request.get("payload")
    if isinstance(payload, dict) and "model" in payload:
        return str(payload["model"])
    assert request["format"] == "gemini", request
    return str(request["path"].split("/models/", 1)[1].rsplit(":", 1)[0])


def usage_of(response: dict[str, Any]) -> tuple[int, int] | None:
    """(in, out) tokens of a client response: OpenAI's usage (and a stream's assembled
    view), Anthropic's, or Gemini's usageMetadata, by what the payload holds."""
    payload = response.get("payload")
    if not isinstance(payload, dict):
        return None
    usage, meta = payload.get("usage") or {}, payload.get("usageMetadata") or {}
    if "completion_tokens" in usage:
        return usage["prompt_tokens"], usage["completion_tokens"]
    if "output_tokens" in usage:
        return usage["input_tokens"], usage["output_tokens"]
    if "candidatesTokenCount" in meta:
        return meta["promptTokenCount"], meta["candidatesTokenCount"]
    return None


@pytest.fixture
def mixed_log(real_log: Path, tmp_path: Path) -> Path:
    """The real log with Gemini, Anthropic and Responses exchanges appended."""
    path = tmp_path / "mixed.jsonl"
    path.write_text(real_log.read_text())
    with path.open("a") as f:
        f.writelines(json.dumps(e) + "\n" for e in dialect_entries())
    return path


def jq(log: Path, args: list[str], program: list[str]) -> str:
    """`bin/log-parser --file LOG ARGS | jq PROGRAM`, checked (no error either: jq 1.6
    exits 0 after a run-time error); jq's stdout."""
    binary = shutil.which("jq")
    assert binary, "jq is missing: apt-get install -y jq"
    with subprocess.Popen([*LOG_PARSER, "--file", str(log), *args], stdout=subprocess.PIPE) as lp:
        result = subprocess.run(
            [binary, *program], stdin=lp.stdout, capture_output=True, text=True, timeout=60
        )
        assert lp.stdout is not None
        lp.stdout.close()
        assert lp.wait(timeout=60) == 0
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


# --------------------------------------------------------------------------- all / filter


def test_all_is_the_default_and_prints_every_entry(real_log: Path) -> None:
    entries = read_jsonl(real_log)
    default = invoke("--file", str(real_log))
    explicit = invoke("--file", str(real_log), "all")
    assert default.exit_code == explicit.exit_code == 0
    assert objects(default.stdout) == objects(explicit.stdout) == entries
    assert default.stderr == ""


@pytest.mark.parametrize(
    ("args", "check"),
    [
        (
            ["--direction", "client_response", "--backend", "beta"],
            lambda e: e["direction"] == "client_response" and e["backend"] == "beta",
        ),
        (["--model", "alpha-internal"], lambda e: e.get("backend_model") == "alpha-internal"),
        (["--endpoint", "nowhere"], lambda e: e["endpoint"] == "/v1/nowhere"),
        (
            ["--status", "4xx", "--direction", "client_response"],
            lambda e: e["direction"] == "client_response" and 400 <= e["status"] < 500,
        ),
        (["--errors"], lambda e: e["direction"] == "error" or (e["status"] or 0) >= 400),
        (["--format", "openai", "--since", "1h"], lambda e: e["format"] == "openai"),
        (
            ["--format", "gemini", "--direction", "client_request"],
            lambda e: e["format"] == "gemini" and e["direction"] == "client_request",
        ),
    ],
)
def test_filter_options_combine(real_log: Path, args: list[str], check: Any) -> None:
    entries = read_jsonl(real_log)
    result = invoke("--file", str(real_log), "filter", *args)
    assert result.exit_code == 0, result.stderr
    assert objects(result.stdout) == [e for e in entries if check(e)]


def test_filter_by_model_finds_requests_of_every_front_door(real_log: Path) -> None:
    """A Gemini client names its model in the path, not the body: `--model` finds its
    requests all the same, like those of the OpenAI and Anthropic doors."""
    entries = read_jsonl(real_log)
    result = invoke(
        "-f", str(real_log), "filter", "--model", "model-b", "--direction", "client_request"
    )
    assert result.exit_code == 0
    found = objects(result.stdout)
    requested = {e["request_id"] for e in entries if e["direction"] == "client_request"}
    answered = {
        e["request_id"]
        for e in entries
        if e["direction"] == "client_response" and e["model"] == "model-b"
    }
    assert {e["request_id"] for e in found} == requested & answered
    assert {e["format"] for e in found} == {"openai", "gemini"}
    assert all(asked_model(e) == "model-b" for e in found)


def test_filter_by_request_id_and_absolute_times(real_log: Path) -> None:
    entries = read_jsonl(real_log)
    target = entries[-1]["request_id"]
    result = invoke("-f", str(real_log), "filter", "--request-id", target)
    assert {e["request_id"] for e in objects(result.stdout)} == {target}
    first, last = entries[0]["timestamp"], entries[-1]["timestamp"]
    window = invoke("-f", str(real_log), "filter", "--since", first, "--until", last)
    assert len(objects(window.stdout)) == len(entries)
    assert invoke("-f", str(real_log), "filter", "--until", "1h").exit_code == 1


def test_nothing_matched_exits_1_with_no_output(real_log: Path) -> None:
    result = invoke("-f", str(real_log), "filter", "--model", "no-such-model")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["filter", "--since", "yesterday"], "bad time 'yesterday'"),
        (["filter", "--status", "teapot"], "bad status 'teapot'"),
        (["--json", "--pretty", "all"], "cannot be combined with --pretty"),
        (["replay"], "give --to URL (or --curl)"),
        (["replay", "--curl", "-H", "no-colon"], "is not 'Name: value'"),
        (["all", "--bogus"], "No such option"),
    ],
)
def test_usage_errors_exit_2(real_log: Path, args: list[str], message: str) -> None:
    result = invoke("-f", str(real_log), *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split()), result.stderr
    assert result.stdout == ""


def test_file_errors_exit_2(tmp_path: Path) -> None:
    missing = invoke("--file", str(tmp_path / "none.jsonl"), "stats")
    assert missing.exit_code == 2
    assert (
        missing.stderr
        == f"log-parser: cannot open {tmp_path / 'none.jsonl'}: No such file or directory\n"
    )
    no_file = invoke("stats")
    assert no_file.exit_code == 2 and "--file" in no_file.stderr
    assert invoke("stats", "--help").exit_code == 0  # help needs no --file


def test_bad_lines_are_counted_on_stderr(real_log: Path, tmp_path: Path) -> None:
    log = tmp_path / "damaged.jsonl"
    good = real_log.read_text().splitlines(keepends=True)
    log.write_text("".join(good[:3]) + "garbage\n" + '"a string"\n' + "".join(good[3:]) + '{"cut')
    result = invoke("-f", str(log), "all")
    assert result.exit_code == 0
    assert len(objects(result.stdout)) == len(good)
    assert result.stderr.startswith(
        f"log-parser: skipped 3 bad lines of {len(good) + 3} (first: line 4: not JSON "
    )
    assert result.stderr.count("\n") == 1


def test_gzip_and_stdin(real_log: Path, tmp_path: Path) -> None:
    packed = tmp_path / "louter.jsonl.gz"
    packed.write_bytes(gzip.compress(real_log.read_bytes()))
    entries = read_jsonl(real_log)
    assert objects(invoke("-f", str(packed)).stdout) == entries
    piped = invoke("-f", "-", "filter", "--errors", stdin=real_log.read_bytes())
    assert objects(piped.stdout) == [
        e for e in entries if e["direction"] == "error" or (e["status"] or 0) >= 400
    ]
    process = run_log_parser("-f", "-", "stats", stdin=packed.read_bytes())  # gzip on stdin
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["responses"] == EXCHANGES


def test_pretty_output_on_request(real_log: Path) -> None:
    result = invoke("--pretty", "-f", str(real_log), "filter", "--endpoint", "nowhere")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[2] for line in lines] == ["error", "client_response"]
    assert "404" in lines[1] and "unknown path /v1/nowhere" in lines[0]


# --------------------------------------------------------------------------- functions


def test_functions_normalises_calls_in_every_dialect(mixed_log: Path) -> None:
    result = invoke("-f", str(mixed_log), "functions")
    assert result.exit_code == 0, result.stderr
    records = objects(result.stdout)
    calls = {
        (r["format"], r["direction"], c["function"]["name"], json.dumps(c["function"]["arguments"]))
        for r in records
        for c in r["tool_calls"]
    }
    assert {
        ("openai", "client_response", "get_weather", '{"city": "mock-city"}'),
        ("openai", "client_response", "get_time", "{}"),
        ("openai", "client_request", "get_weather", '{"city": "Paris"}'),
        ("gemini", "client_request", "get_weather", '{"city": "Oslo"}'),
        ("gemini", "client_response", "get_time", "{}"),
        ("anthropic", "client_request", "read_file", '{"path": "README.md"}'),
        ("anthropic", "client_response", "list_files", "{}"),
        ("responses", "client_request", "shell", '{"cmd": "ls"}'),
        ("responses", "client_response", "shell", '"{bad json"'),
        ("responses", "client_response", "shell", "{}"),
    } <= calls
    results = {(r["format"], t["id"]) for r in records for t in r["tool_results"]}
    assert results == {
        ("openai", "call_1"),
        ("gemini", "g1"),
        ("anthropic", "toolu_1"),
        ("responses", "fc_1"),
    }
    assert all(r["tools"] or r["tool_calls"] or r["tool_results"] for r in records)
    assert all("payload" not in r for r in records)


def test_functions_finds_the_calls_of_every_front_door(real_log: Path) -> None:
    """The Gemini and Anthropic exchanges of the real log: tools declared in the requests
    (Gemini's model from the path), calls in the answers, wire shape and stream alike."""
    entries = read_jsonl(real_log)
    stream = {e["request_id"]: bool(e.get("stream")) for e in entries}
    answers = invoke("-f", str(real_log), "functions", "--direction", "client_response")
    calls = sorted(
        (r["format"], stream[r["request_id"]], c["function"]["name"], c["arguments_text"])
        for r in objects(answers.stdout)
        if r["format"] != "openai"
        for c in r["tool_calls"]
    )
    assert calls == [
        ("anthropic", False, "get_time", "{}"),
        ("anthropic", True, "get_time", "{}"),
        ("gemini", False, "get_weather", '{"city":"mock-city"}'),
        ("gemini", True, "get_weather", '{"city":"mock-city"}'),
    ]
    asked = invoke("-f", str(real_log), "functions", "--direction", "client_request")
    declared = sorted(
        (r["format"], r["model"], r["tools"])
        for r in objects(asked.stdout)
        if r["format"] != "openai"
    )
    assert declared == [
        ("anthropic", "model-a", ["get_time"]),
        ("anthropic", "model-a", ["get_time"]),
        ("gemini", "model-a", ["get_weather"]),
        ("gemini", "model-b", ["get_weather"]),
    ]


def test_functions_with_a_filter_and_pretty(mixed_log: Path) -> None:
    result = invoke("--pretty", "-f", str(mixed_log), "functions", "--format", "anthropic")
    assert result.exit_code == 0
    assert "call toolu_2: list_files({})" in result.stdout
    assert 'result toolu_1: "# louter"' in result.stdout
    assert "declares: read_file" in result.stdout


# --------------------------------------------------------------------------- pairs


def test_pairs_join_concurrent_exchanges(real_log: Path) -> None:
    entries = read_jsonl(real_log)
    result = invoke("-f", str(real_log), "pairs")
    assert result.exit_code == 0
    pairs = objects(result.stdout)
    assert len(pairs) == EXCHANGES and all(p["complete"] for p in pairs)
    for pair in pairs:
        parts = [pair["client_request"], *pair["hops"], *pair["errors"], pair["client_response"]]
        mine = [e for e in entries if e["request_id"] == pair["request_id"]]
        assert sorted(map(json.dumps, filter(None, parts))) == sorted(map(json.dumps, mine))
        assert pair["status"] == pair["client_response"]["status"]
        if pair["client_request"] is not None and pair["hops"]:
            asked = asked_model(pair["client_request"])
            assert pair["model"] == asked
            assert (
                pair["hops"][0]["backend_model"]
                == {"model-a": "alpha-internal", "model-b": "beta-internal"}[asked]
            )
    doors = [
        (p["format"], p["model"], p["stream"], p["tools_declared"], p["tool_calls"])
        for p in pairs
        if p["format"] != "openai"
    ]
    assert sorted(doors) == [
        ("anthropic", "model-a", False, ["get_time"], ["get_time"]),
        ("anthropic", "model-a", True, ["get_time"], ["get_time"]),
        ("gemini", "model-a", False, ["get_weather"], ["get_weather"]),
        ("gemini", "model-b", True, ["get_weather"], ["get_weather"]),
    ]


def test_pairs_functions_only_and_filters(mixed_log: Path) -> None:
    tools = objects(invoke("-f", str(mixed_log), "pairs", "--functions-only").stdout)
    assert {p["request_id"] for p in tools} >= {"gem-1", "ant-1", "rsp-1", "rsp-2"}
    assert all(p["tools_declared"] or p["tool_calls"] or p["format"] == "openai" for p in tools)
    errors = objects(invoke("-f", str(mixed_log), "pairs", "--errors").stdout)
    assert sorted(p["status"] for p in errors) == [400, 400, 404]
    streams = objects(invoke("-f", str(mixed_log), "pairs", "--model", "gpt-x").stdout)
    assert [(p["request_id"], p["stream"]) for p in streams] == [("rsp-1", False), ("rsp-2", True)]


# --------------------------------------------------------------------------- stats


def test_stats_of_the_real_log(real_log: Path) -> None:
    entries = read_jsonl(real_log)
    responses = [e for e in entries if e["direction"] == "client_response"]
    result = invoke("-f", str(real_log), "stats")
    assert result.exit_code == 0
    [stats] = objects(result.stdout)
    assert stats["entries"] == stats["lines"] == len(entries) and stats["bad_lines"] == 0
    assert stats["responses"] == EXCHANGES
    assert sum(stats["by_backend"].values()) == EXCHANGES
    assert stats["by_status"] == {"200": EXCHANGES - 3, "400": 2, "404": 1}
    assert stats["streaming"]["stream"] == sum(1 for e in responses if e.get("stream"))
    latencies = sorted(e["latency_ms"] for e in responses)
    assert stats["latency"]["count"] == EXCHANGES and stats["latency"]["method"] == "exact"
    assert stats["latency"]["p50"] == latencies[EXCHANGES // 2 - 1]
    assert stats["latency"]["max"] == latencies[-1]
    assert stats["ttft"]["count"] == stats["streaming"]["stream"]
    expected: dict[str, dict[str, list[int]]] = {"backend": {}, "model": {}}
    total = [0, 0]
    for response in responses:
        tokens = usage_of(response)
        if tokens is None:
            continue
        for by in ("backend", "model"):
            sums = expected[by].setdefault(response[by], [0, 0])
            sums[0], sums[1] = sums[0] + tokens[0], sums[1] + tokens[1]
        total = [total[0] + tokens[0], total[1] + tokens[1]]
    for by in ("backend", "model"):
        got = {k: [v["in"], v["out"]] for k, v in stats["tokens"][f"by_{by}"].items()}
        assert got == expected[by], by
    assert [stats["tokens"]["total"]["in"], stats["tokens"]["total"]["out"]] == total
    assert set(stats["tokens"]["by_backend"]) == {"alpha", "beta"}
    assert stats["errors"]["by_type"] == {"ConversionError": 1, "LouterError": 1}
    assert stats["errors"]["failed_responses"] == 3
    assert stats["tool_calls"]["by_name"]["get_weather"] >= 1
    assert stats["tool_calls"]["by_name"]["get_time"] >= 1


@pytest.mark.parametrize(("fmt", "called"), [("gemini", "get_weather"), ("anthropic", "get_time")])
def test_stats_count_the_other_front_doors(real_log: Path, fmt: str, called: str) -> None:
    """Tokens and tool calls of the Gemini and Anthropic exchanges, streamed (the assembled
    answer) and not (the wire shape: `usageMetadata`, `usage.input_tokens`)."""
    responses = [
        e
        for e in read_jsonl(real_log)
        if e["direction"] == "client_response" and e["format"] == fmt
    ]
    assert sorted(bool(e.get("stream")) for e in responses) == [False, True]
    shape = "usageMetadata" if fmt == "gemini" else "usage"
    assert all(shape in e["payload"] for e in responses if not e.get("stream"))
    result = invoke("-f", str(real_log), "stats", "--format", fmt)
    assert result.exit_code == 0
    [stats] = objects(result.stdout)
    assert stats["responses"] == 2 and stats["tool_calls"]["by_name"] == {called: 2}
    tokens = [usage_of(e) for e in responses]
    assert None not in tokens
    spent = [sum(t[0] for t in tokens if t), sum(t[1] for t in tokens if t)]
    assert spent[0] > 0 and spent[1] > 0
    assert stats["tokens"]["total"] == {"in": spent[0], "out": spent[1]}
    for by in ("backend", "model"):
        names = {e[by] for e in responses}
        assert set(stats["tokens"][f"by_{by}"]) == names, by
        assert sum(v["out"] for v in stats["tokens"][f"by_{by}"].values()) == spent[1]


def test_stats_pretty_and_filtered(mixed_log: Path) -> None:
    gemini = [e for e in read_jsonl(mixed_log) if e.get("format") == "gemini"]
    answered = sum(1 for e in gemini if e["direction"] == "client_response")
    assert answered == 3  # two from the real log, one written by hand
    pretty = invoke("--pretty", "-f", str(mixed_log), "stats", "--format", "gemini")
    assert pretty.exit_code == 0
    assert f"{len(gemini)} entries, {answered} client responses" in pretty.stdout
    assert "nearest rank" in pretty.stdout
    empty = invoke("-f", str(mixed_log), "stats", "--backend", "nobody")
    assert empty.exit_code == 1 and objects(empty.stdout)[0]["entries"] == 0


# --------------------------------------------------------------------------- replay / browse


def test_replay_as_curl_commands(real_log: Path) -> None:
    result = invoke("-f", str(real_log), "replay", "--curl", "--status", "400")
    assert result.exit_code == 0
    commands = [shlex.split(r["curl"]) for r in objects(result.stdout)]
    assert len(commands) == 2  # bad JSON, and no messages
    bodies = sorted(words[words.index("--data-binary") + 1] for words in commands)
    assert bodies == ['{"model": "model-a", "messages": [', '{"model":"model-b"}']
    assert all(words[4] == "http://127.0.0.1:8080/v1/chat/completions" for words in commands)
    assert not any("authorization" in " ".join(words).lower() for words in commands)


def curl_parts(command: str) -> tuple[str, list[str], Any]:
    """A `replay --curl` command's URL, headers and JSON body."""
    words = shlex.split(command)
    headers = [words[i + 1] for i, word in enumerate(words) if word == "-H"]
    return words[4], headers, json.loads(words[words.index("--data-binary") + 1])


def test_replay_other_front_doors_as_curl(real_log: Path) -> None:
    """Gemini requests go back to the path they were logged at (the model and `alt=sse`
    in it, the redacted `?key=` left out), Anthropic ones to /v1/messages with their
    headers; the redacted keys are never sent, fresh ones are."""
    entries = read_jsonl(real_log)
    logged = {e["request_id"]: e for e in entries if e["direction"] == "client_request"}
    base = "http://127.0.0.1:8080"
    gemini = objects(invoke("-f", str(real_log), "replay", "--curl", "--format", "gemini").stdout)
    parts = [curl_parts(r["curl"]) for r in gemini]
    assert [url for url, _, _ in parts] == [
        base + "/v1beta/models/model-a:generateContent",
        base + "/v1beta/models/model-b:streamGenerateContent?alt=sse",
    ]
    assert [body for _, _, body in parts] == [logged[r["request_id"]]["payload"] for r in gemini]
    assert not any("goog" in h or "REDACTED" in h for _, headers, _ in parts for h in headers)
    anthropic = invoke(
        "-f", str(real_log), "replay", "--curl", "--format", "anthropic", "-H", "X-Api-Key: sk-new"
    )
    reports = objects(anthropic.stdout)
    assert len(reports) == 2
    for report in reports:
        url, headers, body = curl_parts(report["curl"])
        assert url == base + "/v1/messages"
        assert body == logged[report["request_id"]]["payload"]
        assert "anthropic-version: 2023-06-01" in headers
        assert [h for h in headers if h.startswith("x-api-key")] == ["x-api-key: sk-new"]
        assert f"x-louter-replay-of: {report['request_id']}" in headers


def test_replay_pretty_with_fresh_headers(real_log: Path) -> None:
    curl = invoke(
        "--pretty",
        "-f",
        str(real_log),
        "replay",
        "--curl",
        "--status",
        "404",
        "--endpoint",
        "chat",
        "-H",
        "Authorization: Bearer sk-new",
    )
    assert curl.exit_code == 1 and curl.stdout == ""  # the 404 has no chat endpoint
    curl = invoke(
        "--pretty",
        "-f",
        str(real_log),
        "replay",
        "--curl",
        "--model",
        "model-b",
        "--direction",
        "client_response",
        "-H",
        "Authorization: Bearer sk-new",
    )
    assert curl.exit_code == 0
    assert all(line.startswith("curl -sS -X POST ") for line in curl.stdout.splitlines())
    assert "-H 'authorization: Bearer sk-new'" in curl.stdout
    sent = invoke(
        "--pretty",
        "-f",
        str(real_log),
        "replay",
        "--to",
        "http://127.0.0.1:9",
        "--endpoint",
        "nowhere",
    )
    assert sent.exit_code == 0
    assert "skipped: no client_request entry in the log" in sent.stdout


async def test_replay_to_a_running_louter(
    real_log: Path, tmp_path: Path, start_louter: Any
) -> None:
    replayed_log = tmp_path / "replayed.jsonl"
    base = await start_louter(CONFIG, log_file=replayed_log)
    process = await trio.run_process(
        [
            *LOG_PARSER,
            "-f",
            str(real_log),
            "replay",
            "--to",
            base,
            "-H",
            "Authorization: Bearer sk-new",
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    reports = objects(process.stdout.decode())
    original = {
        e["request_id"]: e for e in read_jsonl(real_log) if e["direction"] == "client_response"
    }
    assert len(reports) == EXCHANGES
    for report in reports:
        if report.get("skipped"):  # the unknown path: no client_request was logged
            assert original[report["request_id"]]["status"] == 404
            continue
        assert report["status"] == original[report["request_id"]]["status"], report
        assert report["replay_request_id"] and report["error"] is None
    requests = [e for e in read_jsonl(replayed_log) if e["direction"] == "client_request"]
    assert {e["headers"]["x-louter-replay-of"] for e in requests} == {
        r["request_id"] for r in reports if not r.get("skipped")
    }
    assert all(e["headers"]["authorization"] == "[REDACTED]" for e in requests)
    logged = {
        e["request_id"]: e for e in read_jsonl(real_log) if e["direction"] == "client_request"
    }
    for request in requests:  # every front door: the same path, less the redacted key
        first = logged[request["headers"]["x-louter-replay-of"]]
        assert request["path"] == first["path"].replace("&key=[REDACTED]", "")
        assert request["payload"] == first["payload"]
        assert request["headers"].get("anthropic-version") == first["headers"].get(
            "anthropic-version"
        )
    assert {e["format"] for e in requests} == {"openai", "gemini", "anthropic"}


async def test_replay_into_the_log_being_read_ends(
    real_log: Path, tmp_path: Path, start_louter: Any
) -> None:
    """Replaying to the louter that writes the very log being replayed reads the log as
    it was at the start: each request is sent once, nothing loops."""
    shared = tmp_path / "shared.jsonl"
    shared.write_bytes(real_log.read_bytes())
    base = await start_louter(CONFIG, log_file=shared)
    with trio.fail_after(60):
        process = await trio.run_process(
            [*LOG_PARSER, "-f", str(shared), "replay", "--to", base],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert process.returncode == 0, process.stderr
    assert len(objects(process.stdout.decode())) == EXCHANGES


def test_replay_to_nowhere_exits_2(real_log: Path) -> None:
    result = invoke(
        "-f",
        str(real_log),
        "replay",
        "--to",
        "http://127.0.0.1:9",
        "--status",
        "404",
        "--timeout",
        "5",
    )
    assert result.exit_code == 0  # only the unknown path matched: skipped, nothing to send
    assert objects(result.stdout)[0]["skipped"] == "no client_request entry in the log"
    failed = invoke("-f", str(real_log), "replay", "--to", "http://127.0.0.1:9", "--errors")
    assert failed.exit_code == 2
    assert all(r.get("skipped") or "ConnectError" in r["error"] for r in objects(failed.stdout))


def test_browse_needs_a_terminal_and_a_match(real_log: Path) -> None:
    assert invoke("-f", str(real_log), "browse", "--model", "none").exit_code == 1
    result = invoke("-f", str(real_log), "browse")
    assert result.exit_code == 2 and "browse needs a terminal" in result.stderr


# --------------------------------------------------------------------------- jq, processes


def test_jq_all_and_filter(real_log: Path) -> None:
    count = len(read_jsonl(real_log))
    assert jq(real_log, ["all"], ["-s", "length"]).strip() == str(count)
    statuses = jq(
        real_log, ["filter", "--direction", "client_response", "--status", "4xx"], [".status"]
    )
    assert sorted(statuses.split()) == ["400", "400", "404"]


def test_jq_functions_finds_empty_arguments(mixed_log: Path) -> None:
    by_value = jq(
        mixed_log,
        ["functions", "--direction", "client_response"],
        ["-r", ".tool_calls[] | select(.function.arguments == {}) | .function.name"],
    )
    by_text = jq(
        mixed_log,
        ["functions", "--direction", "client_response"],
        ["-r", '.tool_calls[] | select(.arguments_text == "{}") | .function.name'],
    )
    assert set(by_value.split()) == set(by_text.split()) == {"get_time", "list_files", "shell"}
    invalid = jq(
        mixed_log, ["functions"], ["-c", ".tool_calls[] | select(.valid_json | not) | .id"]
    )
    assert invalid.split() == ['"fc_2"']


def test_jq_pairs_stats_and_replay(mixed_log: Path) -> None:
    complete = jq(mixed_log, ["pairs"], ["-s", "map(select(.complete)) | length"])
    assert int(complete) == EXCHANGES + 4
    gets = jq(
        mixed_log, ["stats"], [".tool_calls.by_name.get_time > 0, .latency.p99 >= .latency.p50"]
    )
    assert gets.split() == ["true", "true"]
    curls = jq(mixed_log, ["replay", "--curl", "--format", "gemini"], ["-r", ".curl"])
    assert [shlex.split(line)[4] for line in curls.splitlines()] == [
        "http://127.0.0.1:8080/v1beta/models/model-a:generateContent",
        "http://127.0.0.1:8080/v1beta/models/model-b:streamGenerateContent?alt=sse",
        "http://127.0.0.1:8080/v1beta/models/qwen3-coder:generateContent",  # no path: endpoint
    ]


def test_jq_the_tutorials_pairs_query(mixed_log: Path) -> None:
    """`pairs | jq 'select(.request.endpoint | contains("generateContent"))'`, as written:
    `request` and `response` are the client request and response entries."""
    found = jq(
        mixed_log,
        ["pairs"],
        ["-c", 'select(.request.endpoint | contains("generateContent"))'],
    )
    records = objects(found)
    assert len(records) == 2  # the real run's and dialect_entries()'s (not stream: capital G)
    for record in records:
        assert "generateContent" in record["request"]["endpoint"]
        assert record["request"] == record["client_request"] is not None
        assert record["response"] == record["client_response"]
        assert record["request"]["direction"] == "client_request"
    every = objects(jq(mixed_log, ["pairs"], ["-c", "."]))
    (unknown,) = [r for r in every if r["client_request"] is None]  # /v1/nowhere
    assert unknown["request"]["direction"] == "error" and unknown["request"]["endpoint"]
    gemini = {r["request_id"] for r in every if "generateContent" in (r["endpoint"] or "")}
    assert {r["request_id"] for r in records} == gemini


def test_bin_wrapper_help_and_a_closed_pipe(real_log: Path, tmp_path: Path) -> None:
    helped = run_log_parser("--help")
    assert helped.returncode == 0
    for command in (b"all", b"filter", b"functions", b"pairs", b"stats", b"replay", b"browse"):
        assert command in helped.stdout
    big = tmp_path / "big.jsonl"
    big.write_bytes(real_log.read_bytes() * 200)
    with subprocess.Popen(
        [*LOG_PARSER, "-f", str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["direction"] == "client_request"
        proc.stdout.close()  # like `| head -1`
        assert proc.wait(timeout=60) == 0
        assert proc.stderr.read() == b""


# --------------------------------------------------------------------------- --follow


class LineReader:
    """A process's stdout, one line at a time, with a timeout."""

    def __init__(self, stream: Any) -> None:
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line)

    def next(self) -> dict[str, Any]:
        return json.loads(self._lines.get(timeout=15))


def test_follow_survives_appends_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "live.jsonl"

    def response(n: int) -> dict[str, Any]:
        return {"request_id": f"r{n}", "direction": "client_response", "status": 200, "n": n}

    write_jsonl(log, [response(1), {"request_id": "r1", "direction": "client_request"}])
    args = [*LOG_PARSER, "-f", str(log), "filter", "--follow", "--direction", "client_response"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        reader = LineReader(proc.stdout)
        try:
            assert reader.next()["n"] == 1
            with log.open("a") as f:
                f.write(json.dumps(response(2)) + "\n" + json.dumps(response(3))[:10])
            assert reader.next()["n"] == 2
            with log.open("a") as f:  # the rest of a line written in two parts
                f.write(json.dumps(response(3))[10:] + "\n")
            assert reader.next()["n"] == 3
            os.rename(log, tmp_path / "live.jsonl.1")
            write_jsonl(log, [response(4)])  # rotated: a new file at the path
            assert reader.next()["n"] == 4
            write_jsonl(log, [])  # truncated in place, then written again
            with log.open("a") as f:
                f.write(json.dumps(response(5)) + "\n")
            assert reader.next()["n"] == 5
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=15) == 0
        assert proc.stderr is not None
        assert proc.stderr.read() == b""


@pytest.mark.parametrize(
    "command",
    [
        ["all"],
        ["filter", "--since", "1d", "--status", "2xx"],
        ["functions"],
        ["pairs"],
        ["stats"],
        ["replay", "--curl"],
        ["--pretty", "pairs"],
        ["--pretty", "stats"],
        ["--pretty", "functions"],
        ["--pretty", "all"],
    ],
)
def test_odd_entries_never_crash(tmp_path: Path, command: list[str]) -> None:
    log = write_jsonl(tmp_path / "odd.jsonl", ODD_ENTRIES)
    options = [c for c in command if c.startswith("--pretty")]
    rest = [c for c in command if not c.startswith("--pretty")]
    result = invoke(*options, "-f", str(log), *rest)
    assert result.exit_code in (0, 1), result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
