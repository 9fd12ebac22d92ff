"""The seed's tutorials run as written (issue 25's "done when").

The commands are extracted from louter's original tutorials (`SHARED/seeds/000_*.txt`,
see tests/paths.py), not copied: every fenced shell block is read, continuation lines
joined, and each command that runs one of louter's programs (`cargo run --bin NAME --`)
becomes the console script of today (`louter`, `log-parser`, `test-runner`,
`diagnostic`; the seed's suggested `test-xml-parser` is `xml-tool-parse`). The config
files the seed writes (`config.toml`, `qwen-config.toml`, ...) are taken from its TOML
blocks, each command seeing the latest version written before it.

They then run in the seed's order in a scratch directory, as a reader would: a `louter`
command starts the proxy (and stays up, as in its own terminal, until the next one that
starts), gets a little Gemini-dialect traffic for the model `mock` (the in-process mock)
and one request to the `gemini` backend, and every later command (`log-parser` on the log
it wrote, the `curl` requests to louter — chat requests included —, `test-runner`,
`diagnostic`) runs through bash. A stand-in (a second louter whose backends are all the
mock) takes the place of llama-server and the clouds; the only changes made to commands
and configs are listed in `ADJUSTMENTS`. The environment points HTTP(S)_PROXY at a closed
port, so nothing can reach the network even by mistake (the `gemini` preset's request
fails there: that is also the `error` entry the seed's `filter --direction error` finds).

A command passes when it exits 0 (1 for a pipeline ending in `grep`: no match) and, for
`curl`, the answer is not an error. Two commands carry mistakes of the seed itself; their
outcome is pinned in `SEED_MISTAKES`. Commands that are not run are listed in `NOT_RUN`
with the reason; the test fails when the seed holds a command that is neither run nor
listed.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import clean_env, free_port
from tests.paths import REPO, SHARED
from tests.proxy.test_faults import closed_port

SEED = SHARED / "seeds" / "000_f4b65b5cca6df6e6.txt"
SCRIPTS = {
    "louter": "louter",
    "log-parser": "log-parser",
    "test-runner": "test-runner",
    "diagnostic": "diagnostic",
    "test-xml-parser": "xml-tool-parse",
}
CARGO = re.compile(r"cargo run --bin ([\w-]+)(?: --)?")
FENCE = re.compile(r"^```(\S*)\s*$")
TOML_NAME = re.compile(r"`([\w.-]+\.toml)`")
SEED_PORTS = ("8080", "8081", "9000")
LLAMA_URLS = ("http://localhost:11211", "http://localhost:11212")
CLOUD_URL = "https://generativelanguage.googleapis.com"
CLOUD_URLS = ("https://api.openai.com", CLOUD_URL)
STAND_IN_NAMES = ("mock", "openai", "gemini", "anthropic", "openrouter")

# What the test changes in a command, and why (applied by `adjust`).
ADJUSTMENTS = {
    "--port 8080/8081 (louter)": "a free port: other tests run in parallel",
    "louter without --port": "--port FREE appended, for the same reason",
    "diagnostic --port 9000 or none": "--port 0 (any free port)",
    "http://localhost:11211": "the stand-in backend: a second louter whose backends are all "
    "the mock (the seed's llama-server is not running here)",
    f"test-runner ... {CLOUD_URL} YOUR_KEY": "the stand-in: the real call needs a Gemini key "
    "and the network",
    "diagnostic --backend openai without --config": "--config llama-cpp-config.toml added, "
    "whose `openai` is the stand-in: the preset would call OpenAI with a real key",
    "the seed's config files": "their llama-server and cloud URLs (`http://localhost:11211`, "
    "`https://api.openai.com`, ...) point at the stand-in: chat requests for their models "
    "then work without llama-server, keys or network",
    "llama-cpp-config.toml": "written by the test (the seed never shows it): `openai` = the "
    "stand-in",
}
# Commands (by a piece of their text) that run but are meant to fail, and how.
EXPECTED_FAILURES = {
    "--config test-config.toml": "test-config.toml: config file not found",
}


@dataclass(frozen=True)
class Outcome:
    """What a command the seed itself gets wrong does instead of succeeding."""

    returncode: int
    output: str  # shown on stdout or stderr
    reason: str
    file: tuple[str, str] | None = None  # (file, text it must hold) afterwards


# Commands (by a piece of their text) whose own mistakes the test expects, and why.
SEED_MISTAKES = {
    'contains("problematic query")': Outcome(
        5,
        "cannot have their containment checked",
        "the filter assumes every client request is Gemini-shaped: for the OpenAI-format "
        "request of 'Debug Streaming Issues' (sent to the same louter, as in the seed) jq "
        "reports `null ... cannot have their containment checked` and exits 5; the "
        "matching request is still saved",
        ("failing-request.json", "problematic query"),
    ),
    "-d @failing-request.json": Outcome(
        0,
        "contents: missing or empty",
        "the file holds the whole log entry, not its payload (`jq .payload` would be the "
        "request): louter's Gemini door says what is missing",
    ),
}
# Shell commands of the seed that are not run, by what they start with.
NOT_RUN = {
    "git clone": "fetches the Rust sources",
    "cd ": "directories of the Rust checkout and llama.cpp",
    "cargo build": "the Rust build; louter is a Python package",
    "cp config.toml.example": "the seed's example; its own config.toml blocks are used",
    "export ": "shown keys and URLs; the test sets its own environment",
    "mkdir build": "llama.cpp build",
    "cmake": "llama.cpp build",
    "huggingface-cli": "model download (network)",
    "./llama-server": "a real llama-server with a multi-GB model",
    "npm ": "installs gemini-cli from the network",
    "npm link": "installs gemini-cli",
    "gemini-cli": "a third-party client (louter's own tutorials run it against stand-ins)",
    "tail -f": "follows a file forever",
    "watch ": "repeats forever",
    "sudo tcpdump": "needs root and a network interface",
    "mitmproxy": "a third-party tool",
    "ab ": "load test tools (bin/bench covers load)",
    "wrk ": "load test tools (bin/bench covers load)",
    "ps aux": "inspects the machine",
    "lsof": "inspects the machine",
    "grep tool_format": "reads the reader's own config files",
    'grep "tool_format"': "reads the reader's own config files",
    "cat > tools.json": "input for gemini-cli",
    "curl -v http://localhost:1121": "the llama-server's own health",
    "curl http://localhost:1121": "the llama-server itself, not louter",
    "[performance]": "TOML shown inside a shell block",
    "timeout_seconds": "TOML shown inside a shell block",
}


@dataclass
class Command:
    line: int  # in the seed
    text: str  # the shell command, with today's script names
    script: str | None  # the louter program it runs, if any


@dataclass
class SeedFile:
    line: int
    name: str
    text: str


@dataclass
class Seed:
    commands: list[Command] = field(default_factory=list)
    files: list[SeedFile] = field(default_factory=list)


def read_seed(text: str) -> Seed:
    """The seed's shell commands and named TOML files, in order."""
    seed = Seed()
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        fence = FENCE.match(lines[number])
        if not fence:
            number += 1
            continue
        start = number
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
        body = lines[start + 1 : end]
        if fence.group(1) == "toml":
            named = _name_before(lines, start)
            if named:
                seed.files.append(SeedFile(start + 1, named, "\n".join(body) + "\n"))
        elif fence.group(1) == "bash":
            seed.commands += _commands(body, start + 2)
        number = end + 1
    return seed


def _name_before(lines: list[str], fence: int) -> str | None:
    for line in reversed(lines[:fence]):
        if line.strip():
            found = TOML_NAME.search(line)
            return found.group(1) if found else None
    return None


def _commands(body: list[str], first: int) -> list[Command]:
    """Logical lines (continuations joined), comments dropped, heredocs kept whole."""
    commands: list[Command] = []
    current, start, heredoc = "", first, None
    for offset, raw in enumerate(body):
        if heredoc is not None:
            current += "\n" + raw
            if raw.strip() == heredoc:
                commands.append(_command(start, current))
                current, heredoc = "", None
            continue
        if current.endswith("\n"):  # inside a quoted string spanning lines: verbatim
            current += raw
        else:
            line = re.sub(r"\s+#[^'\"]*$", "", raw).rstrip()
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if not current:
                start = first + offset
            if line.endswith("\\"):
                current += line[:-1].rstrip() + " "
                continue
            current += line.strip()
        if _open_quote(current):
            current += "\n"
            continue
        marker = re.search(r"<<\s*(\w+)\s*$", current)
        if marker:
            heredoc = marker.group(1)
            continue
        commands.append(_command(start, current))
        current = ""
    return commands


def _open_quote(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:  # "No closing quotation"
        return True
    return False


def _command(line: int, text: str) -> Command:
    found = CARGO.search(text)
    if found is None:
        return Command(line, text, None)
    script = SCRIPTS[found.group(1)]
    return Command(line, CARGO.sub(lambda m: SCRIPTS[m.group(1)], text), script)


# --------------------------------------------------------------------------- running


def adjust(command: Command, port: int, stand_in: str) -> str:
    """The command with the changes of ADJUSTMENTS."""
    text = command.text
    for url in LLAMA_URLS:
        text = text.replace(url, stand_in)
    if command.script == "test-runner":
        text = text.replace(CLOUD_URL, stand_in)
    if command.script == "louter":
        text = re.sub(r"--port \d+", f"--port {port}", text)
        if "--port" not in text:
            text = text.replace("louter ", f"louter --port {port} ", 1)
    if command.script == "diagnostic":
        text = re.sub(r"--port \d+", "--port 0", text)
        if "--port" not in text:
            text = text.replace("diagnostic ", "diagnostic --port 0 ", 1)
        if "--config" not in text:
            text = text.replace("diagnostic ", "diagnostic --config llama-cpp-config.toml ", 1)
    for seed_port in SEED_PORTS:
        text = text.replace(f"localhost:{seed_port}", f"127.0.0.1:{port}")
    return text


def to_stand_in(config: str, port: int) -> str:
    """A seed config with its llama-server and cloud URLs pointed at the stand-in."""
    for url in (*LLAMA_URLS, *CLOUD_URLS):
        config = config.replace(f'"{url}"', f'"http://127.0.0.1:{port}"')
    return config


def runs(command: Command) -> bool:
    """Whether the test runs `command` (else NOT_RUN must give the reason)."""
    if command.script is not None:
        return True
    return command.text.startswith("curl ") and any(
        f"localhost:{port}/" in command.text for port in SEED_PORTS
    )


def not_run_reason(command: Command) -> str | None:
    text = command.text.lstrip()
    return next((why for start, why in NOT_RUN.items() if text.startswith(start)), None)


TRAFFIC = [
    ("mock:generateContent", "Hello"),
    ("mock:streamGenerateContent?alt=sse", "Count to 5"),
    ("mock:generateContent", "Get the weather for New York"),  # with tools
    ("gemini:generateContent", "a problematic query"),  # the cloud preset: fails
]
WEATHER_TOOL = [
    {
        "functionDeclarations": [
            {
                "name": "getWeather",
                "description": "Get weather for a location",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            }
        ]
    }
]


def send_traffic(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        for target, text in TRAFFIC:
            body: dict = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
            if "weather" in text:
                body["tools"] = WEATHER_TOOL
            reply = http.post(f"/v1beta/models/{target}", json=body)
            # `gemini` is the cloud preset (502: the proxy to the network is closed) unless
            # the seed's config names it (then the stand-in answers)
            expected = (200, 502) if target.startswith("gemini:") else (200,)
            assert reply.status_code in expected, (target, reply.text)


@dataclass
class Scratch:
    path: Path
    env: dict[str, str]
    stand_in_port: int
    port: int = 0
    louter: subprocess.Popen[bytes] | None = None
    stand_in: subprocess.Popen[bytes] | None = None
    outputs: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # every command runs, then the verdict

    def stop_louter(self) -> None:
        process, self.louter = self.louter, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            assert process.wait(timeout=10) == 0

    def close(self) -> None:
        for process in (self.louter, self.stand_in):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_health(base: str, process: subprocess.Popen[bytes], stderr: Path) -> bool:
    """True once `base` answers /health; False when the process exited first."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"no /health within 20 s: {stderr.read_text()}")


def start_louter(scratch: Scratch, command: Command, text: str, port: int) -> None:
    """Start the command's louter on `port`; once it serves, it replaces the running one
    (a louter that fails to start leaves the reader's previous one running)."""
    stderr = scratch.path / f"louter-{command.line}.err"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            ["bash", "-c", text],
            cwd=scratch.path,
            env=scratch.env,
            stdout=err,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    expected = next((why for key, why in EXPECTED_FAILURES.items() if key in text), None)
    if not wait_health(base, process, stderr):
        output = stderr.read_text()
        assert expected is not None and expected in output, (command, output)
        return
    assert expected is None, f"{command}: expected to fail with {expected!r}"
    scratch.stop_louter()
    scratch.louter, scratch.port = process, port
    send_traffic(base)
    if "--verbose" in text:  # --verbose echoes each exchange on stderr
        time.sleep(0.2)
        assert "client_request" in stderr.read_text()


def run_command(scratch: Scratch, command: Command) -> None:
    stand_in = f"http://127.0.0.1:{scratch.stand_in_port}"
    if command.script == "louter":
        port = free_port()
        start_louter(scratch, command, adjust(command, port, stand_in), port)
        return
    text = adjust(command, scratch.port, stand_in)
    done = subprocess.run(
        ["bash", "-c", "set -o pipefail\n" + text],
        cwd=scratch.path,
        env=scratch.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    scratch.outputs.append(f"$ {text}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    mistake = next((o for piece, o in SEED_MISTAKES.items() if piece in text), None)
    problem = _problem(command, done) if mistake is None else _unlike(mistake, done, scratch)
    if problem is not None:
        scratch.failures.append(
            f"seed line {command.line}: `{text}` {problem}\n"
            f"stdout: {done.stdout[-1500:]}\nstderr: {done.stderr[-1500:]}"
        )


def _problem(command: Command, done: subprocess.CompletedProcess[str]) -> str | None:
    stages = re.findall(r"\|\s+([\w-]+)", command.text)  # the programs piped into
    allowed = (0, 1) if stages and stages[-1] == "grep" else (0,)  # grep: 1 = no match
    if done.returncode not in allowed:
        return f"exited {done.returncode}"
    answer = done.stdout.lstrip()
    if command.text.startswith("curl ") and answer.startswith("{") and '"error"' in answer:
        return "got an error answer"
    return None


def _unlike(
    expected: Outcome, done: subprocess.CompletedProcess[str], scratch: Scratch
) -> str | None:
    if done.returncode != expected.returncode:
        return f"exited {done.returncode}, not {expected.returncode} ({expected.reason})"
    if expected.output not in done.stdout + done.stderr:
        return f"did not show {expected.output!r} ({expected.reason})"
    if expected.file is not None:
        name, text = expected.file
        if text not in (scratch.path / name).read_text():
            return f"{name} does not hold {text!r}"
    return None


@pytest.fixture
def seed() -> Seed:
    assert SEED.is_file(), f"the seed tutorials are missing: {SEED} (set LOUTER_SHARED)"
    return read_seed(SEED.read_text(encoding="utf-8"))


def test_the_seed_parses_into_commands_and_configs(seed: Seed) -> None:
    scripts = [c.script for c in seed.commands if c.script]
    assert set(scripts) == set(SCRIPTS.values())
    assert len(scripts) == SEED.read_text().count("cargo run --bin")
    names = {f.name for f in seed.files}
    assert {"config.toml", "qwen-config.toml", "gpt-oss-config.toml"} <= names
    assert "multi-backend-config.toml" in names
    unexplained = [
        (c.line, c.text) for c in seed.commands if not runs(c) and not_run_reason(c) is None
    ]
    assert unexplained == []


def test_every_louter_command_of_the_seed_runs_as_written(seed: Seed, tmp_path: Path) -> None:
    env = clean_env(
        PYTHONPATH=str(REPO),
        OPENAI_API_KEY="your-openai-api-key",
        GEMINI_API_KEY="your-key-here",
        HTTPS_PROXY=f"http://127.0.0.1:{closed_port()}",  # no way out to the network
        HTTP_PROXY=f"http://127.0.0.1:{closed_port()}",
        NO_PROXY="127.0.0.1,localhost",
        COLUMNS="200",
    )
    for name in ("LOUTER_SHARED", "PROXY_BACKEND"):
        env.pop(name, None)
    stand_in_port = free_port()
    scratch = Scratch(tmp_path, env, stand_in_port)
    (tmp_path / "llama-cpp-config.toml").write_text(
        f'[backends.openai]\nurl = "http://127.0.0.1:{stand_in_port}"\n'
    )
    # The stand-in answers every name with the mock, the cloud presets' names included.
    stand_in_config = tmp_path / "stand-in" / "config.toml"
    stand_in_config.parent.mkdir()
    stand_in_config.write_text(
        "".join(f'[backends.{name}]\nprotocol = "mock"\n' for name in STAND_IN_NAMES)
    )
    try:
        with (tmp_path / "stand-in.err").open("wb") as err:
            scratch.stand_in = subprocess.Popen(
                ["louter", "--port", str(stand_in_port), "--config", str(stand_in_config)],
                cwd=tmp_path,
                env=env,
                stderr=err,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        assert wait_health(f"http://127.0.0.1:{stand_in_port}", scratch.stand_in, tmp_path)
        files = list(seed.files)
        ran = 0
        for command in seed.commands:
            while files and files[0].line < command.line:
                written = files.pop(0)
                (tmp_path / written.name).write_text(to_stand_in(written.text, stand_in_port))
            if runs(command):
                run_command(scratch, command)
                ran += 1
        scratch.stop_louter()
    finally:
        scratch.close()
    assert ran == sum(runs(c) for c in seed.commands)
    assert scratch.failures == [], "\n\n".join(scratch.failures)
