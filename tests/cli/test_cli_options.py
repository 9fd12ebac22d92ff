"""Issue 25's command-line items: `python -m louter`, `--default-backend`, the `dev` extra,
and `--log-level` / `-v` / `-vv` (what each level prints per exchange on stderr).

The log-level tests run louter as a real process (`python -m louter`) in front of a fake
OpenAI upstream on 127.0.0.1 and read what it printed after it stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
import trio

from louter.cli.echo import body_text, level_of, redact
from tests.cli.test_cli import REPO, clean_env, free_port, invoke, louter_bin, run
from tests.fakes import FakeUpstream, JSONReply, chat_completion


def test_python_dash_m_louter_prints_the_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "louter", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(PYTHONPATH=str(REPO)),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("louter ")


def test_default_backend_is_an_alias_of_backend() -> None:
    result = invoke(["--default-backend", "nosuch"])
    assert result.exit_code == 2
    assert result.stderr.startswith("louter: unknown backend 'nosuch'; known backends: mock")
    assert "--default-backend" in invoke(["--help"], COLUMNS="200").stdout


def test_dev_extra_has_the_test_extra_and_the_linters() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "test" in extras  # CI installs .[test]
    assert "louter[test]" in extras["dev"]
    assert any(dep.startswith("ruff") for dep in extras["dev"])


@pytest.mark.parametrize(
    ("log_level", "verbose", "expected"),
    [
        (None, 0, None),
        (None, 1, "info"),
        (None, 2, "debug"),
        (None, 5, "debug"),
        ("warning", 2, "warning"),  # --log-level wins over -v
    ],
)
def test_level_of(log_level: str | None, verbose: int, expected: str | None) -> None:
    assert level_of(log_level, verbose) == expected


def test_bodies_are_redacted_and_cut() -> None:
    text = redact('{"api_key": "s3cr3t", "x": "Bearer abc.def", "k": "sk-abcdefghijkl"}')
    assert "s3cr3t" not in text and "abc.def" not in text and "sk-abcdefghijkl" not in text
    assert text.count("[REDACTED]") == 3
    long = body_text({"text": "x" * 10_000}, limit=100)
    assert long.startswith('{"text":"xxx') and long.endswith("… [cut, 10011 bytes]")
    assert len(long) < 130
    assert body_text(b'{"a":1}') == '{"a":1}'


async def run_louter(tmp_path: Path, upstream: FakeUpstream, *flags: str, status: int = 200) -> str:
    """Start `python -m louter FLAGS` before `upstream`, send one chat request with a
    secret and a long text, stop it, and return what it printed on stderr."""
    config = tmp_path / "louter.toml"
    config.write_text(f'[backends.up]\nurl = "{upstream.url}"\napi_key = "sk-upstreamsecret1"\n')
    port = free_port()
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as err:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "louter", "--config", str(config), "--port", str(port)]
            + list(flags),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=clean_env(PYTHONPATH=str(REPO), COLUMNS="200"),
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            with trio.fail_after(15):
                while True:
                    try:
                        await http.get("/health")
                        break
                    except httpx.TransportError:
                        await trio.sleep(0.05)
            body = {
                "model": "m",
                "api_key": "client-secret-value",
                "messages": [{"role": "user", "content": "hello " + "y" * 9000}],
            }
            answer = await http.post(
                "/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-cli"}
            )
            assert answer.status_code == status, answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await process.wait()
    return stderr.read_text()


@pytest.fixture
async def upstream(nursery: trio.Nursery) -> FakeUpstream:
    fake = FakeUpstream(JSONReply(chat_completion("hi from upstream")))
    await nursery.start(fake.serve)
    return fake


@pytest.mark.parametrize("flags", [["--log-level", "debug"], ["-vv"]])
async def test_debug_prints_the_three_bodies_redacted_and_cut(
    tmp_path: Path, upstream: FakeUpstream, flags: list[str]
) -> None:
    err = await run_louter(tmp_path, upstream, *flags)
    lines = err.splitlines()
    request = [line for line in lines if line.startswith("[DEBUG] Request body: ")]
    sent = [line for line in lines if line.startswith("[DEBUG] OpenAI request: ")]
    got = [line for line in lines if line.startswith("[DEBUG] OpenAI response: ")]
    assert len(request) == len(sent) == len(got) == 1, err
    assert '"content":"hello yyy' in request[0] and "… [cut, " in request[0]
    assert "client-secret-value" not in err and "sk-upstreamsecret1" not in err
    assert '"api_key":"[REDACTED]"' in request[0]
    assert "hi from upstream" in got[0]
    assert any(line.startswith("[DEBUG] Response body: ") for line in lines)
    assert any("client_request" in line for line in lines)  # the summary lines stay


@pytest.mark.parametrize("flags", [["--log-level", "info"], ["-v"], ["--verbose"]])
async def test_info_prints_one_line_per_entry_without_bodies(
    tmp_path: Path, upstream: FakeUpstream, flags: list[str]
) -> None:
    err = await run_louter(tmp_path, upstream, *flags)
    assert "[DEBUG]" not in err
    for direction in ("client_request", "backend_request", "backend_response", "client_response"):
        assert direction in err


@pytest.mark.parametrize("level", ["warning", "error"])
async def test_warning_and_error_print_only_errors(
    tmp_path: Path, nursery: trio.Nursery, level: str
) -> None:
    down = FakeUpstream(JSONReply({"error": {"message": "gpu on fire"}}, status=500))
    await nursery.start(down.serve)
    err = await run_louter(tmp_path, down, "--log-level", level, status=500)
    assert [line for line in err.splitlines() if " error " in line and "gpu on fire" in line]
    for direction in ("client_request", "backend_request", "backend_response", "[DEBUG]"):
        assert direction not in err


def test_no_level_no_echo(tmp_path: Path) -> None:
    """Without a level the journal is inactive when there is no log file (no cost)."""
    from louter.config import load_config
    from louter.proxy.app import build_context

    ctx = build_context(load_config(None, dict(os.environ)), default_backend="mock")
    assert not ctx.journal.active


def test_help_texts_keep_their_config_table_names() -> None:
    """Rich markup must not eat `[keys.NAME]` (a tag to rich) from the help texts."""
    from typer.testing import CliRunner

    from louter.cli.bench import app as bench_app

    keys = run(louter_bin("keys", "--help"), COLUMNS="200").stdout
    assert "Client keys for [keys.NAME]." in keys
    bench = CliRunner().invoke(bench_app, ["--help"], env={"COLUMNS": "200"}).stdout
    assert "(e.g. [keys.NAME] and [limits];" in bench
