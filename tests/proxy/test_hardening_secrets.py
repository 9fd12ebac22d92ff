"""No secret or internal address leaks (issue 16, part 6).

Keys belong in `api_key`/`api_key_env`, never in a backend URL; a failing backend is named
by its config name, never its address, in what clients, `/health`, `/metrics`, the JSONL
log and `--verbose` stderr see; client keys in headers and (percent-encoded) query
parameters are redacted in the log.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from louter.cli.test_runner import UsageError, make_plan
from louter.config import Backend, load_config, parse_config, url_problem
from louter.errors import ConfigError
from louter.proxy.journal import REDACTED, redact_headers, redact_target
from louter.proxy.scrub import Scrubber
from tests.conftest import StartLouter
from tests.fakes import (
    Close,
    FakeUpstream,
    Hang,
    JSONReply,
    Recorded,
    Reply,
    SSEReply,
    chat_chunk,
    sse_events,
)
from tests.hardening import wait_health_async

BIN = Path(__file__).resolve().parents[2] / "bin"

# --------------------------------------------------------------------------- config


def toml_string(text: str) -> str:
    """`text` as a TOML basic string, every unusual character escaped."""
    escaped = (c if " " <= c < "\x7f" and c not in '"\\' else f"\\u{ord(c):04x}" for c in text)
    return '"' + "".join(escaped) + '"'


def config_error(url: str) -> str:
    text = f'[backends.inner]\nprotocol = "openai"\nurl = {toml_string(url)}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path="cfg.toml", env={})
    return caught.value.message


def test_credentials_in_a_url_are_refused_without_echoing_them() -> None:
    message = config_error("http://user:hunter2pw@inner.example:8000/v1")
    assert message.startswith("cfg.toml: [backends.inner] key 'url': ")
    assert message.endswith("(line 3)")
    assert "api_key" in message and "api_key_env" in message
    assert "hunter2pw" not in message and "user" not in message.replace("user:password", "")


def test_a_user_alone_in_a_url_is_refused() -> None:
    message = config_error("https://token-abc@inner.example")
    assert "credentials" in message and "token-abc" not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://inner.example\r\nX-Evil: 1", "carriage return (CR)"),
        ("http://inner.example/v1\n", "line feed (LF)"),
        ("http://inner example", "a space"),
        ("http://inner.example/\x00", "control character"),
        ("http://inner.example/\x7f", "control character"),
        ("http://inner\x1b.example", "control character"),
        ("http://bücher.example", "non-ASCII"),
        ("http://inner.example/v1?key=abc", "query or fragment"),
        ("http://inner.example/v1?", "query or fragment"),
        ("http://inner.example/#top", "query or fragment"),
        ("http://inner.example:80x", "invalid port"),
        ("http://inner.example:0", "invalid port"),
        ("http://inner.example:", "invalid port"),
        ("http://inner_ex%41mple", "invalid host"),
    ],
)
def test_bad_characters_and_parts_are_refused(url: str, problem: str) -> None:
    message = config_error(url)
    assert message.startswith("cfg.toml: [backends.inner] key 'url': ")
    assert problem in message
    assert "\r" not in message and "\n" not in message


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/v1", "https://api.openai.com", "http://[::1]:9/x", "http://gpu_1:80"],
)
def test_ordinary_urls_pass(url: str) -> None:
    assert url_problem(url) is None


def test_a_config_file_goes_through_the_same_check(tmp_path: Path) -> None:
    path = tmp_path / "louter.toml"
    path.write_text('[backends.openai]\nurl = "https://sk:topsecret@api.openai.com"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert f"{path}: [backends.openai] key 'url'" in caught.value.message
    assert "topsecret" not in caught.value.message


def test_the_cli_refuses_and_does_not_print_the_password(tmp_path: Path) -> None:
    path = tmp_path / "louter.toml"
    path.write_text('[backends.inner]\nurl = "http://me:pw-SECRET-77@10.1.2.3:9000"\n')
    done = subprocess.run(
        [sys.executable, str(BIN / "louter"), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 2
    assert "[backends.inner] key 'url'" in done.stderr and "api_key" in done.stderr
    assert "pw-SECRET-77" not in done.stderr + done.stdout


# --------------------------------------------------------------------------- redaction units


@pytest.mark.parametrize(
    "query",
    ["key=S3CR3T", "KEY=S3CR3T", "%6Bey=S3CR3T", "%6B%65%79=S3CR3T", "api%5Fkey=S3CR3T",
     "Api_Key=S3CR3T", "apikey=S3CR3T", "%ff%fe=S3CR3T"],
)  # fmt: skip
def test_query_secrets_are_redacted_by_their_decoded_name(query: str) -> None:
    redacted = redact_target(f"/v1beta/models/m:generateContent?alt=sse&{query}&x=1")
    assert "S3CR3T" not in redacted
    assert redacted.startswith("/v1beta/models/m:generateContent?alt=sse&")
    assert redacted.endswith(f"={REDACTED}&x=1")


def test_other_query_parameters_are_kept() -> None:
    target = "/v1beta/models/m:generateContent?alt=sse&monkey=1&keys=2"
    assert redact_target(target) == target


def test_secret_headers_are_redacted() -> None:
    names = ["authorization", "x-api-key", "x-goog-api-key", "proxy-authorization", "cookie",
             "set-cookie", "api-key"]  # fmt: skip
    redacted = redact_headers({**{n: "S3CR3T" for n in names}, "user-agent": "sdk"})
    assert redacted == {**{n: REDACTED for n in names}, "user-agent": "sdk"}


def test_scrubber_names_backends_and_hides_keys() -> None:
    scrub = Scrubber(
        [
            Backend("gpu", "openai", url="http://10.9.8.7:8000", api_key="sk-gpu-key"),
            Backend("v6", "openai", url="http://[fd00::5]:81"),
            Backend("api", "openai", url="http://api"),
        ]
    )
    assert scrub("http://10.9.8.7:8000: cannot connect: to 10.9.8.7:8000 failed") == (
        "gpu: cannot connect: to gpu failed"
    )
    assert scrub("[fd00::5]:81: no response within 1s") == "v6: no response within 1s"
    assert scrub("bad key sk-gpu-key") == f"bad key {REDACTED}"
    assert scrub("rapid api.example.com apikey") == "rapid api.example.com apikey"
    assert scrub("http://api: connect timed out") == "api: connect timed out"


def test_backends_sharing_an_address_are_named_by_the_one_that_failed() -> None:
    url = "http://10.9.8.7:8000"
    scrub = Scrubber([Backend("first", "openai", url=url), Backend("second", "openai", url=url)])
    assert scrub(f"{url}: upstream closed mid-response", "second") == (
        "second: upstream closed mid-response"
    )
    assert scrub(f"{url}: upstream closed mid-response") == "first: upstream closed mid-response"


# --------------------------------------------------------------------------- /health


async def test_health_shows_no_urls(start_louter: StartLouter) -> None:
    toml = '[backends.inner]\nurl = "http://10.200.30.40:8123/v1"\napi_key = "sk-HEALTH-9"\n'
    base = await start_louter(toml)
    async with httpx.AsyncClient() as client:
        health = (await client.get(base + "/health")).json()
    assert set(health["backends"]["inner"]) >= {"protocol", "models", "state", "last_error"}
    assert "url" not in health["backends"]["inner"]
    text = orjson.dumps(health).decode()
    assert "10.200.30.40" not in text and "8123" not in text and "sk-HEALTH-9" not in text


# --------------------------------------------------------------------------- echoed keys

ECHOED = "sk-ECHOED-backend-key-8"


@pytest.mark.parametrize("status", [401, 500])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user",
                                                                      "content": "x"}]}),
    ],
    ids=["passthrough", "translated"],
)  # fmt: skip
async def test_a_key_the_upstream_echoes_is_not_relayed(
    status: int, path: str, body: dict[str, Any], start_louter: StartLouter,
    nursery: trio.Nursery, tmp_path: Path,
) -> None:  # fmt: skip
    echo = {"error": {"message": f"Incorrect API key provided: {ECHOED}", "type": "auth"}}
    fake = FakeUpstream(JSONReply(echo, status=status))
    await nursery.start(fake.serve)
    log_file = tmp_path / "log.jsonl"
    toml = f'[backends.inner]\nurl = "{fake.url}"\napi_key = "{ECHOED}"\n'
    base = await start_louter(toml, log_file=log_file)
    async with httpx.AsyncClient() as client:
        headers = {"anthropic-version": "2023-06-01"}
        response = await client.post(base + path, json=body, headers=headers)
        health = (await client.get(base + "/health")).text
    assert response.status_code == status
    assert "Incorrect API key provided" in response.text and REDACTED in response.text
    assert fake.requests[0].headers["authorization"] == f"Bearer {ECHOED}"  # it was sent
    for where, text in (("answer", response.text), ("log", log_file.read_text()),
                        ("/health", health)):  # fmt: skip
        assert ECHOED not in text, where
        assert fake.url not in text and f":{fake.port}" not in text, where


# --------------------------------------------------------------------------- end to end

BACKEND_KEYS = {"down": "sk-DOWN-backend-key-1", "hang": "sk-HANG-backend-key-2",
                "cut": "sk-CUT-backend-key-3"}  # fmt: skip
CLIENT_KEY = "client-KEY-secret-4"
QUERY_KEYS = ("query-KEY-secret-5", "query-KEY-secret-6")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def leaky_config(down: int, fake: int) -> str:
    ports = {"down": down, "hang": fake, "cut": fake}
    tables = [
        f'[backends.{name}]\nurl = "http://127.0.0.1:{port}/v1"\napi_key = "{BACKEND_KEYS[name]}"\n'
        f'[backends.{name}.model_mapping]\n"m-{name}" = "real-{name}"\n'
        for name, port in ports.items()
    ]
    performance = "[performance]\ntimeout_seconds = 0.5\nfailure_threshold = 0\n"
    return performance + "".join(tables)


def by_model(request: Recorded) -> Reply:
    model = request.json["model"]
    if model == "real-cut":
        return SSEReply([sse_events(chat_chunk("partial"), done=False)], end="close")
    return Hang() if model == "real-hang" else Close()


def client_requests(model: str) -> list[tuple[str, dict[str, Any]]]:
    chat = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return [
        ("/v1/chat/completions", chat),
        ("/v1/chat/completions", {**chat, "stream": True}),
        (f"/v1beta/models/{model}:generateContent?%6Bey={QUERY_KEYS[0]}",
         {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        (f"/v1beta/models/{model}:streamGenerateContent?alt=sse&KEY={QUERY_KEYS[1]}",
         {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        ("/v1/messages", {**chat, "max_tokens": 20}),
        ("/v1/messages", {**chat, "max_tokens": 20, "stream": True}),
        ("/v1/responses", {"model": model, "input": "hi"}),
        ("/v1/responses", {"model": model, "input": "hi", "stream": True}),
    ]  # fmt: skip


CLIENT_HEADERS = {
    "authorization": f"Bearer {CLIENT_KEY}",
    "x-api-key": CLIENT_KEY,
    "x-goog-api-key": CLIENT_KEY,
    "cookie": f"session={CLIENT_KEY}",
    "anthropic-version": "2023-06-01",
}


def assert_clean(where: str, text: str, addresses: list[str]) -> None:
    for secret in (*BACKEND_KEYS.values(), CLIENT_KEY, *QUERY_KEYS):
        assert secret not in text, f"{where} shows the key {secret!r}"
    for address in addresses:  # a port is matched as a whole number
        found = re.search(re.escape(address) + r"(?!\d)", text)
        assert found is None, f"{where} shows the address {address!r}"


async def ask_everything(client: httpx.AsyncClient, base: str) -> list[tuple[int, str]]:
    answers = []
    for name in ("down", "hang", "cut"):
        for path, body in client_requests(f"m-{name}"):
            response = await client.post(base + path, json=body, headers=CLIENT_HEADERS)
            answers.append((response.status_code, response.text))
    return answers


async def test_nothing_secret_reaches_clients_health_metrics_log_or_stderr(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    fake = FakeUpstream(by_model)
    await nursery.start(fake.serve)
    down, port = closed_port(), free_port()
    config, log_file, stderr_file = (tmp_path / n for n in ("c.toml", "l.jsonl", "err.txt"))
    config.write_text(leaky_config(down, fake.port))
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, str(BIN / "louter"), "--config", str(config), "--port", str(port),
            "--log-file", str(log_file), "--verbose"]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(BIN.parent)}
    with stderr_file.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(args, stdout=subprocess.DEVNULL, stderr=stderr,
                                                env=env)  # fmt: skip
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await wait_health_async(client, proc, base=base)
            answers = await ask_everything(client, base)
            health = (await client.get(base + "/health")).text
            metrics = (await client.get(base + "/metrics")).text
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await proc.wait()
    addresses = [f"127.0.0.1:{down}", f"127.0.0.1:{fake.port}", f":{down}", f":{fake.port}"]
    statuses = [status for status, _ in answers]
    assert statuses[:8] == [502] * 8, answers[:8]  # connection refused, every door
    assert statuses[8:16] == [504] * 8, answers[8:16]  # no answer within 0.5 s
    assert all(s in (200, 502) for s in statuses[16:]), answers[16:]  # cut mid-stream
    assert all("down" in text for _, text in answers[:8])  # named by its config name
    for status, text in answers:
        assert_clean(f"a {status} answer", text, addresses)
    assert "down" in health and "hang" in health
    assert_clean("/health", health, addresses)
    assert_clean("/metrics", metrics, addresses)
    log = log_file.read_text()
    assert log.count('"direction":"client_request"') == len(answers)
    assert f"%6Bey={REDACTED}" in log and f"KEY={REDACTED}" in log
    assert_clean("the log", log, addresses)
    cut_errors = [e["error"] for e in map(orjson.loads, log.splitlines())
                  if e["backend"] == "cut" and e["direction"] == "error"]  # fmt: skip
    assert cut_errors and all(e.startswith("cut: ") for e in cut_errors), cut_errors
    assert_upstream_got_no_client_key(fake)
    err = stderr_file.read_text()
    assert "SIGTERM, stopping" in err and "down" in strip_summary(err)
    assert_clean("stderr", strip_summary(err), addresses)
    for secret in (*BACKEND_KEYS.values(), CLIENT_KEY, *QUERY_KEYS):
        assert secret not in err


def strip_summary(err: str) -> str:
    """stderr without the start-up summary's rows (the operator's own URLs may stay)."""
    return "\n".join(line for line in err.splitlines() if not line.startswith("backend "))


def assert_upstream_got_no_client_key(fake: FakeUpstream) -> None:
    assert fake.requests
    for request in fake.requests:
        shown = orjson.dumps(request.headers).decode() + request.path
        assert CLIENT_KEY not in shown and "secret" not in shown.lower()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_test_runner_refuses_credentials_in_its_url() -> None:
    with pytest.raises(UsageError) as caught:
        make_plan(
            "openai", ["http://me:pw-RUNNER-1@10.1.2.3:9000"], url=None, key=None, model=None,
            probes=[], expect="auto", env={},
        )  # fmt: skip
    assert "credentials" in str(caught.value) and "pw-RUNNER-1" not in str(caught.value)
