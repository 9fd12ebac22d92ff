"""Issue 18, deliverable 3: upstream key pools (`api_keys` / `api_keys_env`) and the
upstream's rate-limit headers on converted answers.

A pool backend is an OpenAI-protocol fake on 127.0.0.1 (`tests/fakes.py`) that records
which key each request carried and answers 429/401 per request. Requests rotate over the
keys round-robin; a key the upstream refuses hands over to the next key on the same
backend before the next candidate; no key shows anywhere a client or operator looks.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
import trio

from louter.cli.louter import summary
from louter.cli.screen import plain_summary
from louter.config import parse_config
from louter.errors import ConfigError
from louter.proxy.app import build_context
from tests.cli.test_cli import REPO, clean_env, free_port
from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, Recorded, SSEReply, chat_completion, chat_stream
from tests.proxy.test_faults import backend_toml, log_entries, read_log
from tests.proxy.test_metrics import parse, value
from tests.sdk import Clients, in_thread

KEYS = ("sk-pool-first-0a1b2c3d4e", "sk-pool-second-5f6a7b8c9d", "sk-pool-third-0e1f2a3b4c")
CHAT = "/v1/chat/completions"
ASK = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
LIMITS = (
    ("x-ratelimit-limit-requests", "60"),
    ("x-ratelimit-remaining-requests", "59"),
    ("x-ratelimit-remaining-tokens", "149984"),
    ("x-ratelimit-reset-tokens", "6m0s"),
)


def pool_toml(name: str, port: int, extra: str = "", keys: tuple[str, ...] = KEYS) -> str:
    listed = ", ".join(f'"{key}"' for key in keys)
    return (
        f'[backends.{name}]\nurl = "http://127.0.0.1:{port}/v1"\napi_keys = [{listed}]\n{extra}\n'
        f'[backends.{name}.model_mapping]\n"m" = "real-{name}"\n'
    )


def key_of(request: Recorded) -> str:
    return request.headers["authorization"].removeprefix("Bearer ")


def refusing(status: int) -> Any:
    """A reply that refuses the key it got, echoing it (as some servers do)."""

    def reply(request: Recorded) -> JSONReply:
        message = f"Incorrect API key provided: {key_of(request)}"
        return JSONReply({"error": {"message": message, "type": "invalid_request_error"}}, status)

    return reply


@pytest.fixture
async def fakes(nursery: trio.Nursery) -> list[FakeUpstream]:
    made = [FakeUpstream(JSONReply(chat_completion("ok"))) for _ in range(2)]
    for fake in made:
        await nursery.start(fake.serve)
    return made


async def test_requests_rotate_round_robin_over_three_keys(
    start_louter: StartLouter, fakes: list[FakeUpstream], tmp_path: Path
) -> None:
    log = tmp_path / "louter.jsonl"
    base = await start_louter(pool_toml("pool", fakes[0].port), log_file=log)
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(4):  # the OpenAI door: forwarded as it came
            assert (await http.post(CHAT, json=ASK)).status_code == 200
        anthropic_ask = {**ASK, "max_tokens": 9}
        for _ in range(2):  # the Anthropic door: converted
            assert (await http.post("/v1/messages", json=anthropic_ask)).status_code == 200
    used = [key_of(request) for request in fakes[0].requests]
    assert used == [*KEYS, *KEYS]
    for request in fakes[0].requests:  # one key per request, the header not doubled
        assert "," not in request.headers["authorization"]
    sent = await log_entries(log, "backend_request", 6)
    assert [entry["key_index"] for entry in sent] == [0, 1, 2, 0, 1, 2]


async def test_a_429_tries_the_next_key_on_the_same_backend_before_the_next_candidate(
    start_louter: StartLouter, fakes: list[FakeUpstream], tmp_path: Path
) -> None:
    pool, second = fakes
    limited = {"error": {"message": "Rate limit reached", "type": "requests"}}
    pool.script(JSONReply(limited, 429, headers=(("retry-after", "20"),)))
    log = tmp_path / "louter.jsonl"
    config = (
        "[performance]\nfailure_threshold = 1\n"
        + pool_toml("pool", pool.port, "priority = 1\n")
        + backend_toml("second", second.port, "priority = 2\n")
    )
    base = await start_louter(config, log_file=log)
    async with httpx.AsyncClient(base_url=base) as http:
        answer = await http.post(CHAT, json=ASK)
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"] == "ok"
        # no wait for the refused key's Retry-After (20 s), and the breaker stayed shut
        # (threshold 1): the next request goes to the pool again, on its next key
        assert (await http.post(CHAT, json=ASK)).status_code == 200
        metrics = parse((await http.get("/metrics")).text)
    assert [key_of(r) for r in pool.requests] == [KEYS[0], KEYS[1], KEYS[1]]
    assert second.requests == []
    sent = await log_entries(log, "backend_request", 3)
    assert [(e["attempt"], e["key_index"]) for e in sent] == [(1, 0), (2, 1), (1, 1)]
    errors = [e for e in read_log(log) if e["direction"] == "error"]
    assert [(e["status"], e["key_index"]) for e in errors] == [(429, 0)]
    decisions = "routing_decisions_total"
    assert value(metrics, decisions, backend="pool", outcome="failed") == 1
    assert value(metrics, decisions, backend="pool", outcome="served") == 2
    assert value(metrics, decisions, backend="second") == 0


async def test_every_key_refused_fails_over_to_the_next_backend(
    start_louter: StartLouter, fakes: list[FakeUpstream]
) -> None:
    pool, second = fakes
    pool.default = refusing(401)
    second.default = JSONReply(chat_completion("from second"))
    config = (
        "[performance]\nfailure_threshold = 2\n"
        + pool_toml("pool", pool.port, "priority = 1\n")
        + backend_toml("second", second.port, "priority = 2\n")
    )
    base = await start_louter(config)
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(2):
            answer = await http.post(CHAT, json=ASK)
            assert answer.status_code == 200
            assert answer.json()["choices"][0]["message"]["content"] == "from second"
    # each key once per request; the pool's turn counts one breaker failure, not three
    # (threshold 2: the second request still tried it, starting at the next key)
    assert [key_of(r) for r in pool.requests] == [*KEYS, *KEYS[1:], KEYS[0]]
    assert len(second.requests) == 2


async def test_every_key_refused_and_no_other_backend_relays_the_last_refusal_clean(
    start_louter: StartLouter, fakes: list[FakeUpstream], sdk: Clients
) -> None:
    fakes[0].default = refusing(401)
    base = await start_louter(pool_toml("pool", fakes[0].port))
    client = sdk.anthropic(base)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await in_thread(
            lambda: client.messages.create(
                model="m", max_tokens=9, messages=[{"role": "user", "content": "hi"}]
            )
        )
    assert [key_of(r) for r in fakes[0].requests] == list(KEYS)
    text = caught.value.response.text
    assert "Incorrect API key provided" in text
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert not any(key in text for key in KEYS)
    async with httpx.AsyncClient(base_url=base) as http:  # forwarded as it came
        answer = await http.post(CHAT, json=ASK)
    assert answer.status_code == 401
    assert "Incorrect API key provided" in answer.text
    assert not any(key in answer.text for key in KEYS)
    assert len(fakes[0].requests) == 6


async def test_no_key_material_in_stderr_the_log_metrics_or_error_bodies(
    fakes: list[FakeUpstream], tmp_path: Path
) -> None:
    pool = fakes[0]
    refuse, serve = refusing(403), JSONReply(chat_completion("ok"))
    pool.default = lambda request: serve if key_of(request) == KEYS[2] else refuse(request)
    config = tmp_path / "louter.toml"
    config.write_text(pool_toml("pool", pool.port))
    log, port = tmp_path / "louter.jsonl", free_port()
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as err:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "louter", "--config", str(config), "--port", str(port)]
            + ["--log-file", str(log), "-vv"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=clean_env(PYTHONPATH=str(REPO), COLUMNS="200"),
        )
    bodies = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            with trio.fail_after(15):
                while True:
                    try:
                        await http.get("/health")
                        break
                    except httpx.TransportError:
                        await trio.sleep(0.05)
            for _ in range(3):  # keys 1, 2 refused then 3 serves; 2 refused, 3; 3
                answer = await http.post(CHAT, json=ASK)
                bodies.append(answer.text)
            bodies.append((await http.get("/metrics")).text)
            bodies.append((await http.get("/health")).text)
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await process.wait()
    printed = stderr.read_text()
    assert "3 keys" in printed  # the start-up table counts them
    assert len(pool.requests) == 6
    for text in (printed, log.read_text(), *bodies):
        assert not any(key in text for key in KEYS)
    assert "Incorrect API key provided" in log.read_text()  # the refusals were logged


async def test_upstream_rate_limit_headers_reach_an_anthropic_client_renamed(
    start_louter: StartLouter, fakes: list[FakeUpstream], sdk: Clients
) -> None:
    fake = fakes[0]
    fake.script(
        JSONReply(chat_completion("whole"), headers=LIMITS),
        SSEReply([chat_stream(["stre", "amed"])], headers=LIMITS),
    )
    base = await start_louter(backend_toml("up", fake.port))
    client = sdk.anthropic(base)
    ask: dict[str, Any] = {
        "model": "m",
        "max_tokens": 9,
        "messages": [{"role": "user", "content": "hi"}],
    }

    def whole() -> httpx.Headers:
        raw = client.messages.with_raw_response.create(**ask)
        assert raw.parse().content[0].text == "whole"  # type: ignore[union-attr]
        return raw.headers

    def streamed() -> httpx.Headers:
        with client.messages.with_streaming_response.create(**ask, stream=True) as response:
            assert "amed" in response.text()
            return response.headers

    for headers in (await in_thread(whole), await in_thread(streamed)):
        assert headers["anthropic-ratelimit-requests-limit"] == "60"
        assert headers["anthropic-ratelimit-requests-remaining"] == "59"
        assert headers["anthropic-ratelimit-tokens-remaining"] == "149984"
        assert headers["anthropic-ratelimit-tokens-reset"].endswith("Z")  # an RFC 3339 time
        assert not any(name.startswith("x-ratelimit") for name in headers)


async def test_upstream_rate_limit_headers_reach_an_openai_client_as_they_are(
    start_louter: StartLouter, fakes: list[FakeUpstream], sdk: Clients
) -> None:
    fake = fakes[0]
    fake.script(
        JSONReply(chat_completion("whole"), headers=LIMITS),
        SSEReply([chat_stream(["stre", "amed"])], headers=LIMITS),
    )
    base = await start_louter(backend_toml("up", fake.port))
    client = sdk.openai(base)
    messages = [{"role": "user", "content": "hi"}]

    def whole() -> httpx.Headers:
        raw = client.chat.completions.with_raw_response.create(model="m", messages=messages)
        assert raw.parse().choices[0].message.content == "whole"
        return raw.headers

    def streamed() -> httpx.Headers:
        with client.chat.completions.with_streaming_response.create(
            model="m", messages=messages, stream=True
        ) as response:
            assert "amed" in response.text()
            return response.headers

    for headers in (await in_thread(whole), await in_thread(streamed)):
        for name, expected in LIMITS:
            assert headers[name] == expected


async def test_a_converted_429_carries_retry_after_and_the_renamed_limits(
    start_louter: StartLouter, fakes: list[FakeUpstream]
) -> None:
    limited = {"error": {"message": "Rate limit reached", "type": "requests"}}
    fakes[0].default = JSONReply(limited, 429, headers=(("retry-after", "20"), *LIMITS))
    base = await start_louter(backend_toml("up", fakes[0].port))
    async with httpx.AsyncClient(base_url=base) as http:
        answer = await http.post("/v1/messages", json={**ASK, "max_tokens": 9})
    assert answer.status_code == 429
    assert answer.json()["error"]["type"] == "rate_limit_error"
    assert answer.headers["retry-after"] == "20"
    assert answer.headers["anthropic-ratelimit-requests-remaining"] == "59"


def test_a_pool_is_read_from_keys_then_variables_in_order() -> None:
    toml = '[backends.p]\nurl = "http://h"\napi_keys = ["key-a1"]\napi_keys_env = ["K2", "K3"]\n'
    backend = parse_config(toml, path="t.toml", env={"K2": "key-b2", "K3": "key-c3"}).backends[0]
    assert backend.api_keys == ("key-a1", "key-b2", "key-c3")
    assert backend.api_key == "key-a1"  # what "has a key of its own" tests read


def test_unset_pool_variables_are_left_out_and_named_in_the_start_up_table() -> None:
    toml = '[backends.p]\nurl = "http://h"\napi_keys_env = ["K1", "K2", "K3"]\n'
    config = parse_config(toml, path="t.toml", env={"K1": "key-one", "K3": "key-three"})
    backend = config.backends[0]
    assert backend.api_keys == ("key-one", "key-three")
    ctx = build_context(config, default_backend="p")
    shown = plain_summary(summary(ctx, "127.0.0.1", 8080, None))
    assert "2 keys, missing (K2)" in shown and "key-one" not in shown
    none_set = parse_config(toml, path="t.toml", env={}).backends[0]
    assert none_set.api_key is None and none_set.key_env == "K1, K2, K3"


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ('api_key = "key-one"\napi_keys = ["key-two"]', "key 'api_key': cannot be combined"),
        ('api_key_env = "K"\napi_keys_env = ["K"]', "key 'api_key_env': cannot be combined"),
        ("api_keys = []", "key 'api_keys': must list at least one key"),
        ('api_keys = ["key-same", "key-same"]', "must list each key once"),
        ('api_keys = ["key-same"]\napi_keys_env = ["K"]', "must list each key once"),
        ('api_keys = ["key-secret", 3]', "must be a list of strings, got (not shown)"),
    ],
)
def test_ambiguous_or_broken_pools_are_refused_without_showing_keys(
    keys: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            f'[backends.p]\nurl = "http://h"\n{keys}\n', path="t.toml", env={"K": "key-same"}
        )
    assert problem in str(caught.value)
    assert "key-secret" not in str(caught.value) and "key-same" not in str(caught.value)
