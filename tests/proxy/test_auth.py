"""Client keys (issue 18, deliverable 1): `[auth]` and `[keys.NAME]` through every front
door with its official SDK — no key, wrong key, expired key, disallowed model (the
dialect's own status and envelope), a valid key whole and streamed; the key never reaches
the upstream; repeated failures are throttled (429 + Retry-After); model lists need a
key, /health and /metrics do not; no key material in the log, /metrics, stderr or error
bodies; `--disable-auth` and its loud warning; `louter keys new` round-trips."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import google.genai.errors
import httpx
import openai
import orjson
import pytest
import trio
from google import genai
from google.genai import types

from louter.access import digest
from louter.config import parse_config
from louter.errors import ConfigError
from louter.proxy.app import build_context, serve
from louter.proxy.sessions.stage import SessionStage
from tests.fakes import FakeUpstream, JSONReply, chat_completion
from tests.sdk import in_thread

GOOD = "lk-good-key-0123456789abcdef"
OLD = "lk-expired-key-0123456789abcd"
NARROW = "lk-narrow-key-0123456789abcd"
WRONG = "lk-wrong-key-0123456789abcde"
SECRETS = (GOOD, OLD, NARROW, WRONG)
FULL = 'Mock answer to: "hi" (images: 0)'


def keys_toml(extra: str = "") -> str:
    return f"""
[backends.mock]
protocol = "mock"

[auth]
max_failures = 1000
{extra}

[keys.team]
key_sha256 = "{digest(GOOD).hex()}"

[keys.old]
key_sha256 = "{digest(OLD).hex()}"
expires = 2020-01-01

[keys.narrow]
key_sha256 = "{digest(NARROW).hex()}"
models = ["gpt-*"]
"""


async def start(
    nursery: trio.Nursery, toml: str, log: Path | None = None, env: dict[str, str] | None = None
) -> str:
    config = parse_config(toml, path="test.toml", env=env or {})
    ctx = build_context(config, default_backend=config.backends[0].name, log_file=log)
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- the doors


def _openai(base: str, key: str, model: str, stream: bool) -> str:
    with openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as client:
        messages: Any = [{"role": "user", "content": "hi"}]
        if not stream:
            reply = client.chat.completions.create(model=model, messages=messages)
            return reply.choices[0].message.content or ""
        with client.chat.completions.stream(model=model, messages=messages) as events:
            return events.get_final_completion().choices[0].message.content or ""


def _responses(base: str, key: str, model: str, stream: bool) -> str:
    with openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as client:
        if not stream:
            return client.responses.create(model=model, input="hi").output_text
        with client.responses.stream(model=model, input="hi") as events:
            return events.get_final_response().output_text


def _anthropic(base: str, key: str, model: str, stream: bool) -> str:
    with anthropic.Anthropic(base_url=base, api_key=key, max_retries=0) as client:
        messages: Any = [{"role": "user", "content": "hi"}]
        if not stream:
            reply = client.messages.create(model=model, max_tokens=64, messages=messages)
        else:
            with client.messages.stream(model=model, max_tokens=64, messages=messages) as s:
                reply = s.get_final_message()
        return "".join(block.text for block in reply.content if block.type == "text")


def _gemini(base: str, key: str, model: str, stream: bool) -> str:
    options = types.HttpOptions(base_url=base, api_version="v1beta")
    with genai.Client(api_key=key, http_options=options) as client:
        if not stream:
            return client.models.generate_content(model=model, contents="hi").text or ""
        chunks = client.models.generate_content_stream(model=model, contents="hi")
        return "".join(chunk.text or "" for chunk in chunks)


DOORS: dict[str, Callable[[str, str, str, bool], str]] = {
    "openai": _openai,
    "responses": _responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
}
ERRORS: dict[str, dict[int, type[Exception]]] = {
    "openai": {401: openai.AuthenticationError, 403: openai.PermissionDeniedError},
    "responses": {401: openai.AuthenticationError, 403: openai.PermissionDeniedError},
    "anthropic": {401: anthropic.AuthenticationError, 403: anthropic.PermissionDeniedError},
    "gemini": {401: google.genai.errors.ClientError, 403: google.genai.errors.ClientError},
}


def _status(error: Any, door: str) -> int:
    return int(error.code if door == "gemini" else error.status_code)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("door", list(DOORS))
async def test_a_valid_key_works(nursery: trio.Nursery, door: str, stream: bool) -> None:
    base = await start(nursery, keys_toml())
    assert await in_thread(lambda: DOORS[door](base, GOOD, "m", stream)) == FULL
    # a key with an allow-list: an allowed model
    assert await in_thread(lambda: DOORS[door](base, NARROW, "gpt-4o", stream)) == FULL


@pytest.mark.parametrize(
    ("key", "model", "status", "words"),
    [
        (WRONG, "m", 401, "incorrect API key"),
        (OLD, "m", 401, "expired"),
        (NARROW, "claude-3", 403, "may not use model"),
    ],
)
@pytest.mark.parametrize("door", list(DOORS))
async def test_refusals_in_the_sdks(
    nursery: trio.Nursery, door: str, key: str, model: str, status: int, words: str
) -> None:
    base = await start(nursery, keys_toml())
    with pytest.raises(ERRORS[door][status]) as caught:
        await in_thread(lambda: DOORS[door](base, key, model, False))
    assert _status(caught.value, door) == status
    assert words in str(caught.value)
    assert not any(secret in str(caught.value) for secret in SECRETS)


# (path, body, the key's header) per door; the envelope's type field and value
RAW: dict[str, tuple[str, dict[str, Any], str]] = {
    "openai": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, "a"),
    "responses": ("/v1/responses", {"input": "hi"}, "authorization"),
    "anthropic": (
        "/v1/messages",
        {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        "x-api-key",
    ),
    "gemini": (
        "/v1beta/models/{model}:generateContent",
        {"contents": [{"parts": [{"text": "hi"}]}]},
        "x-goog-api-key",
    ),
}
KINDS = {
    ("openai", 401): ("code", "invalid_api_key"),
    ("responses", 401): ("code", "invalid_api_key"),
    ("anthropic", 401): ("type", "authentication_error"),
    ("gemini", 401): ("status", "UNAUTHENTICATED"),
    ("openai", 403): ("type", "permission_error"),
    ("responses", 403): ("type", "permission_error"),
    ("anthropic", 403): ("type", "permission_error"),
    ("gemini", 403): ("status", "PERMISSION_DENIED"),
}


async def _raw(client: httpx.AsyncClient, door: str, key: str | None, model: str) -> Any:
    path, body, header = RAW[door]
    headers = {"anthropic-version": "2023-06-01"}
    if key is not None:
        headers.update(
            {"authorization": f"Bearer {key}"}
            if header in ("a", "authorization")
            else {header: key}
        )
    if door == "gemini":
        return await client.post(path.format(model=model), json=body, headers=headers)
    return await client.post(path, json={**body, "model": model}, headers=headers)


@pytest.mark.parametrize("door", list(DOORS))
async def test_envelopes_missing_key_and_model(nursery: trio.Nursery, door: str) -> None:
    """No key at all (the SDKs insist on one): 401; and the exact envelope fields."""
    base = await start(nursery, keys_toml())
    async with httpx.AsyncClient(base_url=base) as client:
        missing = await _raw(client, door, None, "m")
        wrong = await _raw(client, door, WRONG, "m")
        narrow = await _raw(client, door, NARROW, "claude-3")
        fine = await _raw(client, door, GOOD, "m")
    for reply, status in ((missing, 401), (wrong, 401), (narrow, 403)):
        assert reply.status_code == status, reply.text
        field, value = KINDS[(door, status)]
        assert reply.json()["error"][field] == value
    assert "missing API key" in missing.text
    assert fine.status_code == 200, fine.text


async def test_token_counting_needs_a_key_and_an_allowed_model(nursery: trio.Nursery) -> None:
    base = await start(nursery, keys_toml())
    body = {"model": "claude-3", "messages": [{"role": "user", "content": "hi"}]}
    version = {"anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=base) as client:
        path = "/v1/messages/count_tokens"
        missing = await client.post(path, json=body, headers=version)
        narrow = await client.post(path, json=body, headers={**version, "x-api-key": NARROW})
        fine = await client.post(path, json=body, headers={**version, "x-api-key": GOOD})
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert narrow.status_code == 403
    assert narrow.json()["error"]["type"] == "permission_error"
    assert fine.status_code == 200 and fine.json()["input_tokens"] > 0


async def test_the_key_of_another_dialects_place_is_not_read(nursery: trio.Nursery) -> None:
    """Each door reads its own dialect's place: x-api-key means nothing to OpenAI's."""
    base = await start(nursery, keys_toml())
    async with httpx.AsyncClient(base_url=base) as client:
        reply = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-api-key": GOOD},
        )
        query = await client.post(
            f"/v1beta/models/m:generateContent?key={GOOD}",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
        )
    assert reply.status_code == 401
    assert query.status_code == 200, query.text  # Gemini's `?key=`


# --------------------------------------------------------------------------- the upstream


@pytest.mark.parametrize("door", list(DOORS))
async def test_the_key_never_reaches_the_upstream(nursery: trio.Nursery, door: str) -> None:
    """A backend without its own key used to get the client's: never a louter key."""
    fake = FakeUpstream(JSONReply(chat_completion("upstream says hi")))
    await nursery.start(fake.serve)
    toml = keys_toml().replace(
        '[backends.mock]\nprotocol = "mock"',
        f'[backends.up]\nprotocol = "openai"\nurl = "{fake.url}"',
    )
    base = await start(nursery, toml)
    assert await in_thread(lambda: DOORS[door](base, GOOD, "m", False)) == "upstream says hi"
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            base + f"/v1beta/models/m:generateContent?key={GOOD}",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
        )
    assert reply.status_code == 200
    assert len(fake.requests) == 2
    for request in fake.requests:
        seen = orjson.dumps([request.path, dict(request.headers)]).decode()
        assert GOOD not in seen and "authorization" not in dict(request.headers)


def _two_upstreams(a: FakeUpstream, b: FakeUpstream, auth: str, forward_a: str) -> str:
    return f"""
[backends.a]
protocol = "openai"
url = "{a.url}"
{forward_a}
[backends.a.model_mapping]
ma = "ma"

[backends.b]
protocol = "openai"
url = "{b.url}"
[backends.b.model_mapping]
mb = "mb"
{auth}
"""


def _bearer(fake: FakeUpstream) -> list[str | None]:
    return [r.headers.get("authorization") for r in fake.requests]


async def test_forward_client_key_with_auth_on(nursery: trio.Nursery) -> None:
    """The louter key in `x-louter-key`, the client's own key where its SDK puts it: only
    a backend with `forward_client_key = true` gets the client's own key."""
    a, b = (FakeUpstream(JSONReply(chat_completion("ok"))) for _ in range(2))
    for fake in (a, b):
        await nursery.start(fake.serve)
    keys = f'[keys.team]\nkey_sha256 = "{digest(GOOD).hex()}"\n'
    base = await start(nursery, _two_upstreams(a, b, keys, "forward_client_key = true"))

    def ask(model: str, door: str) -> str:
        if door == "openai":
            with openai.OpenAI(
                base_url=base + "/v1",
                api_key="sk-own",
                max_retries=0,
                default_headers={"x-louter-key": GOOD},
            ) as client:
                messages: Any = [{"role": "user", "content": "hi"}]
                reply = client.chat.completions.create(model=model, messages=messages)
                return reply.choices[0].message.content or ""
        with anthropic.Anthropic(
            base_url=base, api_key="sk-own", max_retries=0, default_headers={"x-louter-key": GOOD}
        ) as client:
            messages = [{"role": "user", "content": "hi"}]
            answer = client.messages.create(model=model, max_tokens=8, messages=messages)
            return "".join(block.text for block in answer.content if block.type == "text")

    for door in ("openai", "anthropic"):  # passthrough, and converted
        assert await in_thread(lambda d=door: ask("ma", d)) == "ok"
        assert await in_thread(lambda d=door: ask("mb", d)) == "ok"
    assert _bearer(a) == ["Bearer sk-own", "Bearer sk-own"]
    assert _bearer(b) == [None, None]
    # without x-louter-key the key in the SDK's place is the louter key: never forwarded
    assert await in_thread(lambda: _openai(base, GOOD, "ma", False)) == "ok"
    assert _bearer(a)[-1] is None
    for fake in (a, b):
        assert all(GOOD not in orjson.dumps(dict(r.headers)).decode() for r in fake.requests)


async def test_forward_client_key_with_auth_off(nursery: trio.Nursery) -> None:
    """Auth off: a keyless backend gets the client's key (as before) unless
    `forward_client_key = false`."""
    a, b = (FakeUpstream(JSONReply(chat_completion("ok"))) for _ in range(2))
    for fake in (a, b):
        await nursery.start(fake.serve)
    base = await start(nursery, _two_upstreams(a, b, "", "forward_client_key = false"))
    for model in ("ma", "mb"):
        assert await in_thread(lambda m=model: _openai(base, "sk-own", m, False)) == "ok"
    assert _bearer(a) == [None]
    assert _bearer(b) == ["Bearer sk-own"]


async def test_forward_client_key_false_holds_at_the_completions_door(
    nursery: trio.Nursery,
) -> None:
    """The legacy Completions door forwards the client's key by the same rule as the
    others: a `completions` backend with `forward_client_key = false` never gets it."""
    a, b = (
        FakeUpstream(JSONReply({"id": "c", "object": "text_completion", "choices": [
            {"text": "ok", "index": 0, "logprobs": None, "finish_reason": "stop"}]}))
        for _ in range(2)
    )  # fmt: skip
    for fake in (a, b):
        await nursery.start(fake.serve)
    toml = _two_upstreams(a, b, "", "forward_client_key = false").replace(
        'protocol = "openai"', 'protocol = "completions"'
    )
    base = await start(nursery, toml)
    async with httpx.AsyncClient(base_url=base) as client:
        for model in ("ma", "mb"):
            body = {"model": model, "prompt": "hi"}
            headers = {"authorization": "Bearer sk-own"}
            answer = await client.post("/v1/completions", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["text"] == "ok"
    assert _bearer(a) == [None]
    assert _bearer(b) == ["Bearer sk-own"]


# --------------------------------------------------------------------------- throttling


async def test_repeated_failures_are_throttled(nursery: trio.Nursery) -> None:
    toml = keys_toml().replace("max_failures = 1000", "max_failures = 3\nblock_seconds = 30")
    base = await start(nursery, toml)
    async with httpx.AsyncClient(base_url=base) as client:
        first = [await _raw(client, "openai", WRONG, "m") for _ in range(3)]
        blocked = await _raw(client, "openai", GOOD, "m")  # even a good key, for a while
        anthropic_blocked = await _raw(client, "anthropic", GOOD, "m")
    assert [r.status_code for r in first] == [401, 401, 401]
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 30
    assert blocked.json()["error"]["type"] == "rate_limit_error"
    assert anthropic_blocked.status_code == 429
    assert anthropic_blocked.json()["error"]["type"] == "rate_limit_error"


def test_the_failure_table_is_bounded() -> None:
    from louter.access import Auth
    from louter.proxy.auth import Throttle

    now = [0.0]
    throttle = Throttle(Auth(max_failures=2, max_tracked_addresses=100), lambda: now[0])
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) == 100
    throttle.failed("10.0.3.231")  # the newest: its second failure blocks it
    assert throttle.blocked("10.0.3.231") == 60.0
    assert throttle.blocked("10.0.0.0") == 0.0  # dropped long ago
    now[0] = 61.0
    assert throttle.blocked("10.0.3.231") == 0.0


# --------------------------------------------------------------------------- lists, open paths


async def test_model_lists_need_a_key_health_and_metrics_do_not(nursery: trio.Nursery) -> None:
    base = await start(nursery, keys_toml())
    async with httpx.AsyncClient(base_url=base) as client:
        lists = [
            await client.get("/v1/models"),
            await client.get("/v1beta/models"),
            await client.get("/v1beta/models/m"),
        ]
        keyed = [
            await client.get("/v1/models", headers={"authorization": f"Bearer {GOOD}"}),
            await client.get("/v1/models", headers={"x-api-key": GOOD}),  # Anthropic's SDK
            await client.get("/v1beta/models", headers={"x-goog-api-key": GOOD}),
            await client.get(f"/v1beta/models/m?key={GOOD}"),
        ]
        health = await client.get("/health")
        metrics = await client.get("/metrics")
    assert [r.status_code for r in lists] == [401, 401, 401]
    assert [r.status_code for r in keyed] == [200, 200, 200, 200]
    assert health.status_code == 200 and metrics.status_code == 200
    assert 'auth_failures_total{reason="missing"} 3.0' in metrics.text


async def test_model_lists_show_what_the_key_allows(nursery: trio.Nursery) -> None:
    toml = keys_toml().replace(
        '[backends.mock]\nprotocol = "mock"',
        '[backends.mock]\nprotocol = "mock"\n[backends.mock.model_mapping]\n'
        '"gpt-4o" = "gpt-4o"\n"claude-3" = "claude-3"',
    )
    base = await start(nursery, toml)
    async with httpx.AsyncClient(base_url=base) as client:
        every = await client.get("/v1/models", headers={"authorization": f"Bearer {GOOD}"})
        narrow = await client.get("/v1/models", headers={"authorization": f"Bearer {NARROW}"})
        gemini = await client.get("/v1beta/models", headers={"x-goog-api-key": NARROW})
    names = {m["id"] for m in every.json()["data"]}
    assert {"gpt-4o", "claude-3"} <= names
    assert {m["id"] for m in narrow.json()["data"]} == {"gpt-4o"}
    assert [m["name"] for m in gemini.json()["models"]] == ["models/gpt-4o"]


async def test_sdk_model_lists(nursery: trio.Nursery) -> None:
    base = await start(nursery, keys_toml())

    def lists(key: str) -> int:
        with openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as client:
            return len(client.models.list().data)

    assert await in_thread(lambda: lists(GOOD)) >= 1
    with pytest.raises(openai.AuthenticationError):
        await in_thread(lambda: lists(WRONG))


# --------------------------------------------------------------------------- no key material


async def test_no_key_material_in_log_metrics_or_errors(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    base = await start(nursery, keys_toml(), log=log)
    bodies = []
    async with httpx.AsyncClient(base_url=base) as client:
        for door in DOORS:
            for key, model in ((GOOD, "m"), (WRONG, "m"), (OLD, "m"), (NARROW, "x")):
                bodies.append((await _raw(client, door, key, model)).text)
        metrics = (await client.get("/metrics")).text
    raw = log.read_text()
    for secret in SECRETS:
        assert secret not in raw and secret not in metrics
        assert not any(secret in body for body in bodies)
        assert digest(secret).hex() not in raw + metrics
    entries = [orjson.loads(line) for line in raw.splitlines()]
    requests = [e for e in entries if e["direction"] == "client_request"]
    assert {e.get("key") for e in requests} == {"team", "narrow"}
    for reason, count in (("unknown", 4), ("expired", 4), ("model", 4)):
        assert f'auth_failures_total{{reason="{reason}"}} {count}.0' in metrics


# --------------------------------------------------------------------------- config


def _config(toml: str, env: dict[str, str] | None = None) -> Any:
    return parse_config(toml, path="t.toml", env=env or {})


def test_config_refuses_plain_keys_and_bad_entries() -> None:
    with pytest.raises(ConfigError, match="plain keys are not accepted"):
        _config('[keys.a]\nkey = "lk-secret"\n')
    with pytest.raises(ConfigError, match="64 hexadecimal digits"):
        _config('[keys.a]\nkey_sha256 = "abc"\n')
    with pytest.raises(ConfigError, match="exactly one of key_sha256 or key_env"):
        _config("[keys.a]\nmodels = []\n")
    with pytest.raises(ConfigError, match="LOUTER_KEY_A is not set"):
        _config('[keys.a]\nkey_env = "LOUTER_KEY_A"\n')
    with pytest.raises(ConfigError, match="the same key as"):
        _config(
            f'[keys.a]\nkey_env = "K"\n[keys.b]\nkey_sha256 = "{digest("x").hex()}"\n', {"K": "x"}
        )
    with pytest.raises(ConfigError, match="unknown key"):
        _config("[auth]\nwhatever = 1\n")


def test_config_keeps_every_field() -> None:
    config = _config(
        f"""
[auth]
max_failures = 5
[keys.a]
key_env = "KEY_A"
models = ["gpt-*", "claude-3-*"]
rpm = 60
tpm = 100000
max_concurrent = 4
expires = 2030-06-01T12:00:00Z
admin = true
[keys.b]
key_sha256 = "{digest("b").hex().upper()}"
models = []
""",
        {"KEY_A": "secret-a"},
    )
    a, b = config.auth.keys
    assert config.auth.on and config.auth.max_failures == 5
    assert (a.name, a.digest, a.rpm, a.tpm, a.max_concurrent, a.admin) == (
        "a", digest("secret-a"), 60, 100000, 4, True,
    )  # fmt: skip
    assert a.allows("gpt-4o") and a.allows("claude-3-haiku") and not a.allows("gemini")
    assert not a.expired(lambda: a.expires.timestamp() - 1)
    assert a.expired(lambda: a.expires.timestamp())
    assert b.digest == digest("b") and b.models == () and not b.allows("anything")
    assert not _config('[backends.mock]\nprotocol = "mock"\n').auth.on


async def test_auth_off_adds_nothing(nursery: trio.Nursery) -> None:
    """No key configured: no gate, no stage of its own (sessions are on by default)."""
    config = _config('[backends.mock]\nprotocol = "mock"\n')
    ctx = build_context(config, default_backend="mock")
    assert ctx.gate is None and _own_stages(ctx) == []
    keyed = _config(keys_toml())
    assert build_context(keyed, default_backend="mock").pipeline.stages != ()
    every = _config(keys_toml().split("[keys.narrow]")[0])  # no key with an allow-list
    ctx = build_context(every, default_backend="mock")
    assert ctx.gate is not None and _own_stages(ctx) == []


def _own_stages(ctx: Any) -> list[Any]:
    return [s for s in ctx.pipeline.stages if not isinstance(s, SessionStage)]


# --------------------------------------------------------------------------- the CLI

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("PROXY_BACKEND", None)
    return {**env, "PYTHONPATH": str(REPO)}


def _louter(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "bin" / "louter"), *args]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve_cli(
    tmp_path: Path, config: Path, *args: str, host: str = "127.0.0.1"
) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    stderr = tmp_path / "stderr.txt"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            _louter("--config", str(config), "--host", host, "--port", str(port), *args),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=_env(),
        )
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        with trio.fail_after(15):
            while True:
                assert proc.poll() is None, stderr.read_text()
                try:
                    await client.get(base + "/health")
                    break
                except httpx.TransportError:
                    await trio.sleep(0.05)
    return proc, base, stderr


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def test_keys_new_round_trips(tmp_path: Path) -> None:
    made = subprocess.run(
        _louter("keys", "new", "alice"), capture_output=True, text=True, env=_env(), timeout=30
    )
    assert made.returncode == 0, made.stderr
    first, _, lines = made.stdout.partition("\n")
    key = first.removeprefix("key: ")
    assert key.startswith("lk-") and len(key) > 40
    assert "[keys.alice]" in lines and key not in lines
    config = tmp_path / "config.toml"
    config.write_text('[backends.mock]\nprotocol = "mock"\n' + lines)
    proc, base, stderr = await _serve_cli(tmp_path, config)
    try:
        text = await in_thread(lambda: _openai(base, key, "m", False))
        with pytest.raises(openai.AuthenticationError):
            await in_thread(lambda: _openai(base, key + "x", "m", False))
        metrics = httpx.get(base + "/metrics").text
    finally:
        _stop(proc)
    assert text == FULL
    assert key not in stderr.read_text() and key not in metrics
    assert "WARNING" not in stderr.read_text()


async def test_disable_auth_and_the_warning(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(keys_toml())
    proc, base, stderr = await _serve_cli(tmp_path, config, "--disable-auth", host="0.0.0.0")
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            reply = await _raw(client, "openai", None, "m")
    finally:
        _stop(proc)
    assert reply.status_code == 200, reply.text
    said = stderr.read_text()
    assert "WARNING: client auth is OFF (disabled)" in said
    # auth on, or loopback: no warning
    proc, base, stderr = await _serve_cli(tmp_path, config, host="0.0.0.0")
    _stop(proc)
    assert "WARNING" not in stderr.read_text()
    proc, base, stderr = await _serve_cli(tmp_path, config, "--disable-auth")
    _stop(proc)
    assert "WARNING" not in stderr.read_text()


async def test_a_keys_own_rpm_is_enforced_for_that_key_only(nursery: trio.Nursery) -> None:
    """`rpm` on `[keys.NAME]` reaches the rate-limit stage: the key's third request in the
    minute gets a 429 in the client's envelope; another key is not held back by it."""
    toml = keys_toml().replace(
        f'key_sha256 = "{digest(GOOD).hex()}"', f'key_sha256 = "{digest(GOOD).hex()}"\nrpm = 2'
    )
    base = await start(nursery, toml)
    async with httpx.AsyncClient(base_url=base) as client:

        async def ask(key: str, model: str = "gpt-x") -> httpx.Response:
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            headers = {"authorization": f"Bearer {key}"}
            return await client.post("/v1/chat/completions", json=body, headers=headers)

        statuses = [(await ask(GOOD)).status_code for _ in range(3)]
        others = [(await ask(NARROW)).status_code for _ in range(3)]
        refused = await ask(GOOD)
    assert statuses == [200, 200, 429]
    assert others == [200, 200, 200]
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


# --------------------------------------------------------------------------- model lookups


def _lookups_toml() -> str:
    return keys_toml().replace(
        '[backends.mock]\nprotocol = "mock"',
        '[backends.mock]\nprotocol = "mock"\n[backends.mock.model_mapping]\n'
        '"gpt-4o" = "gpt-4o"\n"claude-3" = "claude-3"',
    )


async def test_model_lookups_follow_the_allow_list_in_each_sdk(nursery: trio.Nursery) -> None:
    """`GET /v1/models/{id}` (OpenAI, Anthropic) and `GET /v1beta/models/{m}` (Gemini): an
    allowed model answers in the client's shape, another is 403 in the client's envelope."""
    base = await start(nursery, _lookups_toml())

    def openai_get(model: str) -> str:
        with openai.OpenAI(base_url=base + "/v1", api_key=NARROW, max_retries=0) as client:
            return client.models.retrieve(model).id

    def anthropic_get(model: str) -> str:
        with anthropic.Anthropic(base_url=base, api_key=NARROW, max_retries=0) as client:
            return client.models.retrieve(model).id

    def gemini_get(model: str) -> str:
        options = types.HttpOptions(base_url=base, api_version="v1beta")
        with genai.Client(api_key=NARROW, http_options=options) as client:
            return client.models.get(model=model).name or ""

    assert await in_thread(lambda: openai_get("gpt-4o")) == "gpt-4o"
    assert await in_thread(lambda: anthropic_get("gpt-4o")) == "gpt-4o"
    assert await in_thread(lambda: gemini_get("gpt-4o")) == "models/gpt-4o"
    with pytest.raises(openai.PermissionDeniedError):
        await in_thread(lambda: openai_get("claude-3"))
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        await in_thread(lambda: anthropic_get("claude-3"))
    assert refused.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    with pytest.raises(google.genai.errors.ClientError) as caught:
        await in_thread(lambda: gemini_get("claude-3"))
    assert (caught.value.code, caught.value.status) == (403, "PERMISSION_DENIED")


async def test_model_list_refusals_use_the_asking_clients_envelope(nursery: trio.Nursery) -> None:
    """`GET /v1/models` serves every SDK: a refusal (401 wrong key, 429 throttled) comes in
    the envelope of the dialect the client's headers show."""
    base = await start(nursery, _lookups_toml().replace("max_failures = 1000", "max_failures = 4"))

    def anthropic_list() -> None:
        with anthropic.Anthropic(base_url=base, api_key=WRONG, max_retries=0) as client:
            client.models.list()

    def gemini_list() -> None:
        options = types.HttpOptions(base_url=base, api_version="v1")
        with genai.Client(api_key=WRONG, http_options=options) as client:
            list(client.models.list())

    with pytest.raises(anthropic.AuthenticationError) as claude:
        await in_thread(anthropic_list)
    assert claude.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(google.genai.errors.ClientError) as gemini:
        await in_thread(gemini_list)
    assert (gemini.value.code, gemini.value.status) == (401, "UNAUTHENTICATED")
    async with httpx.AsyncClient(base_url=base) as client:
        plain = await client.get("/v1/models", headers={"authorization": f"Bearer {WRONG}"})
        assert plain.json()["error"]["code"] == "invalid_api_key"
        headers = {"x-api-key": WRONG, "anthropic-version": "2023-06-01"}
        assert (await client.get("/v1/models", headers=headers)).status_code == 401  # the 4th
        throttled = await client.get("/v1/models", headers=headers)
    assert throttled.status_code == 429 and "retry-after" in throttled.headers
    assert throttled.json()["error"]["type"] == "rate_limit_error"  # Anthropic's envelope
    assert throttled.json()["type"] == "error"
