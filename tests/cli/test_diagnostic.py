"""`diagnostic`: louter started in-process (port 0) or already running (`--url`), every
probe through every front door; the summary, the matrix, the JSON report, progress on
stderr, exit codes; the broken fakes behind louter; real processes; the real llama-server.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from rich.console import Console
from typer.testing import CliRunner

from louter.cli.diagnostic import Report, app, render
from louter.probes import PROBES, ProbeResult
from louter.probes.catalog import applicable
from louter.probes.matrix import Served
from louter.probes.wire import WIRES
from tests.llama import LLAMA_MODEL
from tests.probes.test_probes_backends import CAUGHT_BY, start_fake

REPO = Path(__file__).resolve().parents[2]
DOORS = ("OpenAI", "Gemini", "Anthropic", "Responses", "Completions")
ALL_DOORS = ("openai", "gemini", "anthropic", "responses", "completions")
BY_TITLE = dict(zip(DOORS, ALL_DOORS, strict=True))
# what each door is asked: every probe, but tools and images where its API has none
ASKED = {door: applicable(PROBES, WIRES[door].lacks) for door in ALL_DOORS}
TOTAL = sum(len(probes) for probes in ASKED.values())
SKIP_ALL = [f"--skip-{door}-frontend" for door in ALL_DOORS]


def invoke(args: list[str]) -> Any:
    return CliRunner(env={"PROXY_BACKEND": None}).invoke(app, args)


async def invoke_async(args: list[str]) -> Any:
    return await trio.to_thread.run_sync(invoke, args)


def report_of(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)


def failures(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(r["dialect"], r["backend"], r["probe"]) for r in report["results"] if not r["passed"]}


def asked(door: str, probe: str) -> bool:
    return any(p.name == probe for p in ASKED[door])


def summary_for(doors: tuple[str, ...] = DOORS) -> str:
    lines = ["=== Diagnostic Test Summary ==="]
    for door in doors:
        lines.append(f"{door} Frontend Tests:")
        lines += [f"  ✅ {door} {probe.title}" for probe in ASKED[BY_TITLE[door]]]
    total = sum(len(ASKED[BY_TITLE[door]]) for door in doors)
    lines.append(f"Overall: {total}/{total} tests passed")
    return "\n".join(lines) + "\n"


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "louter.toml"
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------- the mock


def test_everything_passes_on_the_mock() -> None:
    result = invoke(["--port", "0"])
    assert result.exit_code == 0, result.output
    assert result.stdout == summary_for()
    progress = result.stderr.splitlines()
    assert len(progress) == TOTAL == 36  # 8 probes x 4 doors, and the 4 Completions can carry
    assert progress[0].startswith(f"diagnostic: [1/{TOTAL}] ✅ OpenAI Text Generation (")
    assert progress[-1].startswith(f"diagnostic: [{TOTAL}/{TOTAL}] ✅ Completions Error Handling (")


def test_the_json_report() -> None:
    result = invoke(
        ["--port", "0", "--json", "--skip-anthropic-frontend", "--skip-responses-frontend",
         "--skip-completions-frontend"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = report_of(result)
    assert report["url"].startswith("http://127.0.0.1:") and report["in_process"] is True
    assert report["backends"] == [{"backend": "mock", "protocol": "mock", "models": ["mock"]}]
    assert (report["passed"], report["total"], report["ok"]) == (16, 16, True)
    assert [(r["dialect"], r["probe"]) for r in report["results"]] == [
        (door, p.name) for door in ("openai", "gemini") for p in PROBES
    ]


def test_skipping_front_doors() -> None:
    result = invoke(["--port", "0", "--skip-openai-frontend", "--skip-anthropic-frontend"])
    assert result.exit_code == 0
    assert result.stdout == summary_for(("Gemini", "Responses", "Completions"))


def test_the_matrix_on_a_terminal() -> None:
    results = tuple(
        ProbeResult(p.name, p.title, door, "mock", "mock", p.name != "image", 3.0, "boom")
        for door in ("openai", "gemini")
        for p in PROBES
    )
    report = Report("http://127.0.0.1:9000", True, (Served("mock", "mock", ("mock",)),), results)
    console = Console(file=io.StringIO(), width=120, color_system=None)
    render(report, console, as_json=False, tty=True)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert text.startswith("louter at http://127.0.0.1:9000")
    header = next(line for line in text.splitlines() if "backend" in line)
    assert "OpenAI" in header and "Gemini" in header and "Anthropic" not in header
    assert "│ mock    │ mock  │ Multimedia                   │ ❌ boom │ ❌ boom │" in text
    assert "✅ 3 ms" in text
    assert "┘\n\n=== Diagnostic Test Summary ===\n" in text
    assert "  ❌ OpenAI Multimedia (Error: boom)" in text
    assert text.rstrip().endswith("Overall: 14/16 tests passed")


# --------------------------------------------------------------------------- usage errors


def busy_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (SKIP_ALL,
         "diagnostic: every front door is skipped: nothing to probe"),
        (["--backend", "nosuch"],
         "diagnostic: unknown backend 'nosuch'; known backends: "
         "mock, openai, gemini, anthropic, openrouter"),
        (["--url", "http://127.0.0.1:9", "--config", "x.toml"],
         "diagnostic: --config is for the louter started here; with --url, leave it out"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = invoke(["--port", "0", *args])
    assert result.exit_code == 2
    assert result.stderr == message + "\n" and result.stdout == ""


def test_a_missing_config_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    result = invoke(["--config", str(missing)])
    assert result.exit_code == 2
    assert result.stderr == f"diagnostic: {missing}: config file not found\n"


def test_a_busy_port_exits_2() -> None:
    sock, port = busy_port()
    with sock:
        result = invoke(["--port", str(port)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"diagnostic: cannot listen on 127.0.0.1:{port}: ")


def test_nothing_at_the_url_exits_2() -> None:
    result = invoke(["--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert result.stderr.startswith("diagnostic: no louter answers at http://127.0.0.1:9: ")


# --------------------------------------------------------------------------- a running louter


async def test_a_running_louter(start_louter: Any) -> None:
    base = await start_louter()
    result = await invoke_async(["--url", base + "/", "--json"])
    assert result.exit_code == 0, result.output
    report = report_of(result)
    assert (report["url"], report["in_process"], report["ok"]) == (base, False, True)
    assert report["total"] == TOTAL


async def test_backends_of_a_running_louter(start_louter: Any, nursery: trio.Nursery) -> None:
    fake = await start_fake(nursery, "ignore-images")
    base = await start_louter(
        f'[backends.good]\nprotocol = "mock"\n[backends.good.model_mapping]\n"g" = "x"\n'
        f'[backends.broken]\nurl = "{fake.url}"\n[backends.broken.model_mapping]\n"b" = "y"\n'
    )
    result = await invoke_async(["--url", base, "--json"])
    assert result.exit_code == 1
    report = report_of(result)
    assert [b["backend"] for b in report["backends"]] == ["good", "broken"]
    assert failures(report) == {(d, "broken", "image") for d in ALL_DOORS if asked(d, "image")}
    only = report_of(await invoke_async(["--url", base, "--json", "--backend", "good"]))
    assert only["ok"] and {r["backend"] for r in only["results"]} == {"good"}


# --------------------------------------------------------------------------- broken fakes


@pytest.mark.parametrize("defect", sorted(CAUGHT_BY))
async def test_every_front_door_catches_each_broken_backend(
    nursery: trio.Nursery, tmp_path: Path, defect: str
) -> None:
    fake = await start_fake(nursery, defect)
    config = write_config(tmp_path, f'[backends.fake]\nurl = "{fake.url}"\n')
    result = await invoke_async(["--port", "0", "--config", config, "--json"])
    assert result.exit_code == 1
    expected = {(d, "fake", p) for d in ALL_DOORS for p in CAUGHT_BY[defect] if asked(d, p)}
    assert failures(report_of(result)) == expected


async def test_the_summary_names_backends_and_errors(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake = await start_fake(nursery, "truncate-streams")
    config = write_config(
        tmp_path,
        f'[backends.fake]\nurl = "{fake.url}"\n[backends.fake.model_mapping]\n"m" = "real"\n'
        '[backends.mock]\nprotocol = "mock"\n[backends.mock.model_mapping]\n"mm" = "x"\n',
    )
    result = await invoke_async(["--port", "0", "--config", config, "--skip-gemini-frontend"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "  ✅ OpenAI Text Generation [fake/m]" in lines
    assert "  ✅ OpenAI Streaming [mock/mm]" in lines
    streaming = next(line for line in lines if line.startswith("  ❌ OpenAI Streaming [fake/m]"))
    assert streaming.startswith(
        "  ❌ OpenAI Streaming [fake/m] (Error: the stream ended without `data: [DONE]`"
    )
    anthropic = next(line for line in lines if line.startswith("  ❌ Anthropic Streaming [fake"))
    assert "(Error: the stream reported an error: " in anthropic
    responses = next(line for line in lines if line.startswith("  ❌ Responses Streaming [fake"))
    assert "(Error: " in responses
    # 2 backends x (8 probes x 3 doors + the 4 Completions can carry); the fake's streams fail
    assert lines[-1] == "Overall: 49/56 tests passed"


# --------------------------------------------------------------------------- processes


def test_bin_wrapper_from_a_checkout(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bin" / "diagnostic"), "--port", "0", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["passed"] == TOTAL
    assert f"diagnostic: [{TOTAL}/{TOTAL}]" in done.stderr


def test_installed_script() -> None:
    path = shutil.which("diagnostic")
    if path is None:
        pytest.skip("louter is not installed (pip install -e .)")
    done = subprocess.run(
        [
            path,
            "--port",
            "0",
            "--skip-gemini-frontend",
            "--skip-anthropic-frontend",
            "--skip-responses-frontend",
            "--skip-completions-frontend",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == summary_for(("OpenAI",))


# --------------------------------------------------------------------------- llama-server

# What SmolLM2-135M behind llama-server passes, through every front door, with the
# reproducible tool-call recipe: everything but Multimedia (llama-server runs without a
# multimodal projector and answers 500 "image input is not supported").
LLAMA_FAILS = {"image"}


@pytest.mark.llama
async def test_diagnostic_against_llama_server(llama_url: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f'[performance]\ntimeout_seconds = 180\n[backends.llama]\nurl = "{llama_url}"\n'
        f'[backends.llama.model_mapping]\n"smol" = "{LLAMA_MODEL}"\n',
    )
    result = await invoke_async(["--port", "0", "--config", config, "--json", "--timeout", "180"])
    report = report_of(result)
    details = {(r["dialect"], r["probe"]): r["detail"] for r in report["results"]}
    assert failures(report) == {
        (door, "llama", probe) for door in ALL_DOORS for probe in LLAMA_FAILS if asked(door, probe)
    }, details
    assert result.exit_code == 1
    assert report["backends"] == [{"backend": "llama", "protocol": "openai", "models": ["smol"]}]
    for door in ALL_DOORS:
        if asked(door, "tools"):
            assert details[(door, "tools")] == 'get_weather({"city":"Paris"})'
            assert "image input is not supported" in details[(door, "image")]
    assert {probe for door, probe in details if door == "completions"} == {
        "text", "stream", "count-tokens", "error"
    }  # fmt: skip
