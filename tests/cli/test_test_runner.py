"""`test-runner`: the command line (CliRunner, in a worker thread while the backend runs in
the test's trio loop), its output, `--log-file`, exit codes, the broken fakes, real
processes (`bin/test-runner`, the installed script) and the real llama-server."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from typer.testing import CliRunner

from louter.cli.log_parser import app as log_parser
from louter.cli.test_runner import DEFAULT_MODELS, UsageError, app, make_plan
from louter.probes import PROBES
from tests.llama import LLAMA_MODEL
from tests.probes.test_probes_backends import CAUGHT_BY, start_fake

REPO = Path(__file__).resolve().parents[2]
NO_KEYS = {"OPENAI_API_KEY": None, "GEMINI_API_KEY": None, "ANTHROPIC_API_KEY": None}
NAMES = [p.name for p in PROBES]


def invoke(args: list[str], **env: str | None) -> Any:
    return CliRunner(env={**NO_KEYS, **env}).invoke(app, args)


async def invoke_async(args: list[str], **env: str | None) -> Any:
    return await trio.to_thread.run_sync(lambda: invoke(args, **env))


def lines(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def failures(result: Any) -> set[str]:
    return {line["probe"] for line in lines(result) if not line["passed"]}


# --------------------------------------------------------------------------- arguments


def plan_of(*args: str, **options: Any) -> Any:
    settings = {"url": None, "key": None, "model": None, "probes": [], "expect": "auto", "env": {}}
    return make_plan(args[0], list(args[1:]), **{**settings, **options})


def test_positionals_are_url_key_then_probes() -> None:
    plan = plan_of("openai", "http://h:1/v1/", "sk-1", "text", "error")
    assert (plan.target.url, plan.target.key) == ("http://h:1", "sk-1")
    assert [p.name for p in plan.probes] == ["text", "error"]
    assert plan.target.model == DEFAULT_MODELS["openai"] and plan.target.mock is None


def test_a_probe_name_where_the_key_would_be_is_a_probe() -> None:
    plan = plan_of("gemini", "http://h", "stream")
    assert plan.target.key is None and [p.name for p in plan.probes] == ["stream"]


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("function", "tools"),
        ("functions", "tools"),
        ("function-calling", "tools"),
        ("streaming", "stream"),
        ("multimedia", "image"),
        ("vision", "image"),
    ],
)
def test_the_tutorials_probe_names_are_aliases(alias: str, name: str) -> None:
    with_key = plan_of("gemini", "http://h", "KEY", alias)
    assert with_key.target.key == "KEY" and [p.name for p in with_key.probes] == [name]
    without_key = plan_of("gemini", "http://h", alias, probes=[name])
    assert without_key.target.key is None and [p.name for p in without_key.probes] == [name]


def test_options_instead_of_positionals() -> None:
    plan = plan_of(
        "anthropic", "sk-2", "tools", url="http://h", model="m", probes=["image"], expect="mock"
    )
    assert (plan.target.url, plan.target.key, plan.target.model) == ("http://h", "sk-2", "m")
    assert [p.name for p in plan.probes] == ["tools", "image"] and plan.target.mock is True
    assert [p.name for p in plan_of("openai", url="http://h").probes] == NAMES


def test_the_key_defaults_to_the_protocols_variable() -> None:
    env = {"GEMINI_API_KEY": "g", "OPENAI_API_KEY": "o"}
    assert plan_of("gemini", "http://h", env=env).target.key == "g"
    assert plan_of("gemini", "http://h", "k", env=env).target.key == "k"


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (
            ["grpc", "http://h"],
            {},
            "unknown protocol 'grpc'; use one of openai, gemini, anthropic, responses, completions",
        ),
        (["openai"], {}, "missing URL: give it after PROTOCOL or with --url"),
        (
            ["openai", "http://h", "k", "nope"],
            {},
            "unknown probe 'nope'; probes: text, stream, "
            "tools, tools-stream, image, round-trip, count-tokens, error",
        ),  # fmt: skip
        (
            ["openai", "http://h"],
            {"expect": "exact"},
            "unknown --expect 'exact'; use one of auto, mock, model",
        ),  # fmt: skip
    ],
)
def test_usage_errors(args: list[str], options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        plan_of(*args, **options)
    assert str(info.value) == message


def test_usage_errors_exit_2() -> None:
    result = invoke(["openai", "http://127.0.0.1:9", "--probe", "nope"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("test-runner: unknown probe 'nope'; probes: text, ")


def test_an_unwritable_log_file_exits_2(tmp_path: Path) -> None:
    log_file = tmp_path / "no" / "dir" / "log.jsonl"
    result = invoke(["openai", "http://127.0.0.1:9", "--log-file", str(log_file)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"test-runner: cannot open log file {log_file}: ")


def test_help_lists_the_options() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    for option in ("PROTOCOL", "--url", "--key", "--model", "--probe", "--log-file", "--json"):
        assert option in result.stdout
    words = " ".join(result.stdout.replace("│", " ").split())
    assert "Aliases: function, functions, function-calling = tools; streaming = stream; " in words
    assert "multimedia, vision = image." in words


# --------------------------------------------------------------------------- louter's mock


@pytest.mark.parametrize("protocol", ["openai", "gemini", "anthropic", "responses"])
async def test_every_probe_passes_against_the_mock(start_louter: Any, protocol: str) -> None:
    """louter on the mock stands in for a backend of each protocol."""
    base = await start_louter()
    result = await invoke_async([protocol, base, "--expect", "mock", "--json"])
    assert result.exit_code == 0, result.output
    records = lines(result)
    assert [r["probe"] for r in records] == NAMES
    assert all(r["passed"] and r["dialect"] == protocol for r in records)
    assert {r["backend"] for r in records} == {base}
    assert {r["model"] for r in records} == {DEFAULT_MODELS[protocol]}


async def test_json_lines_are_the_default_when_piped(start_louter: Any) -> None:
    base = await start_louter()
    result = await invoke_async(["anthropic", base, "text", "error"])
    assert result.exit_code == 0
    assert [r["probe"] for r in lines(result)] == ["text", "error"]


async def test_the_tutorials_command_runs_against_the_mock(
    start_louter: Any, tmp_path: Path
) -> None:
    """`test-runner --log-file direct-gemini.jsonl gemini URL KEY function`, as written."""
    base = await start_louter()
    log_file = tmp_path / "direct-gemini.jsonl"
    args = ["--log-file", str(log_file), "gemini", base, "YOUR_KEY", "function"]
    result = await invoke_async(args)
    assert result.exit_code == 0, result.output
    (record,) = lines(result)
    assert record["probe"] == "tools" and record["passed"]
    assert "YOUR_KEY" not in log_file.read_text()
    assert len(log_file.read_text().splitlines()) == 2


async def test_the_table(start_louter: Any) -> None:
    base = await start_louter()
    result = await invoke_async(["gemini", "--url", base, "--model", "m", "--pretty"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"test-runner: gemini {base} (m)")
    for word in ("probe", "result", "latency", "detail", "Token Counting", "✅ pass"):
        assert word in out
    assert out.rstrip().endswith("8/8 probes passed")


async def test_the_log_file_is_louters_jsonl(start_louter: Any, tmp_path: Path) -> None:
    base = await start_louter()
    log_file = tmp_path / "probes.jsonl"
    result = await invoke_async(
        ["openai", base, "sk-secret", "stream", "round-trip", "--json", "--log-file", str(log_file)]
    )
    assert result.exit_code == 0, result.output
    assert "sk-secret" not in log_file.read_text()
    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [e["direction"] for e in entries] == ["client_request", "client_response"] * 3
    assert all(e["timestamp"].endswith("Z") and e["format"] == "openai" for e in entries)
    assert entries[0]["headers"]["authorization"] == "[REDACTED]"
    assert entries[1]["stream"] is True and entries[1]["ttft_ms"] is not None
    pairs = CliRunner().invoke(log_parser, ["--file", str(log_file), "--json", "pairs"])
    exchanges = [json.loads(line) for line in pairs.stdout.splitlines()]
    assert len(exchanges) == 3 and all(x["complete"] and x["status"] == 200 for x in exchanges)
    assert exchanges[0]["stream"] is True and exchanges[1]["tool_calls"] == ["get_weather"]


# --------------------------------------------------------------------------- broken fakes


async def test_a_correct_fake_passes(nursery: trio.Nursery) -> None:
    fake = await start_fake(nursery, None)
    result = await invoke_async(["openai", fake.url, "sk-fake", "--json"])
    assert result.exit_code == 0, result.output
    assert fake.requests[0].headers["authorization"] == "Bearer sk-fake"


@pytest.mark.parametrize("defect", sorted(CAUGHT_BY))
async def test_broken_backends_fail_the_right_probes(nursery: trio.Nursery, defect: str) -> None:
    fake = await start_fake(nursery, defect)
    result = await invoke_async(["openai", fake.url, "--json"])
    assert result.exit_code == 1
    assert failures(result) == CAUGHT_BY[defect]


async def test_selected_probes_decide_the_exit_status(nursery: trio.Nursery) -> None:
    fake = await start_fake(nursery, "ignore-images")
    assert (await invoke_async(["openai", fake.url, "text", "tools", "--json"])).exit_code == 0
    assert (await invoke_async(["openai", fake.url, "-p", "image", "--json"])).exit_code == 1


async def test_an_unreachable_backend_exits_1() -> None:
    result = await invoke_async(["openai", "http://127.0.0.1:9", "text", "--json"])
    assert result.exit_code == 1
    (record,) = lines(result)
    assert record["detail"].startswith("ConnectError from http://127.0.0.1:9/v1/chat/completions")


# --------------------------------------------------------------------------- processes


async def run_process(*args: str) -> Any:
    return await trio.run_process(list(args), capture_stdout=True, capture_stderr=True, check=False)


async def test_bin_wrapper_from_a_checkout(nursery: trio.Nursery) -> None:
    fake = await start_fake(nursery, "truncate-streams")
    done = await run_process(sys.executable, str(REPO / "bin" / "test-runner"), "openai", fake.url)
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert {r["probe"] for r in records if not r["passed"]} == CAUGHT_BY["truncate-streams"]


async def test_installed_script(start_louter: Any) -> None:
    path = shutil.which("test-runner")
    if path is None:
        pytest.skip("louter is not installed (pip install -e .)")
    base = await start_louter()
    done = await run_process(path, "gemini", base, "text", "count-tokens")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["probe"] for line in done.stdout.decode().splitlines()] == [
        "text",
        "count-tokens",
    ]


# --------------------------------------------------------------------------- llama-server


@pytest.mark.llama
async def test_llama_server_directly(llama_url: str) -> None:
    """SmolLM2-135M behind llama-server, no louter: everything but images (the server has
    no multimodal projector) passes with the reproducible tool-call recipe."""
    result = await invoke_async(["openai", llama_url, "--model", LLAMA_MODEL, "--json"])
    records = {r["probe"]: r for r in lines(result)}
    assert failures(result) == {"image"}, records
    assert result.exit_code == 1
    assert "image input is not supported" in records["image"]["detail"]
    assert records["tools"]["detail"] == 'get_weather({"city":"Paris"})'
