"""Sessions beyond the chat (raw HTTP on loopback, fake OpenAI upstreams): `x-session-id`
on every answer and the headers that name a session, `backend:model` in every door,
runtime routes (`!/route-*`, precedence, `/health`), client keys (scoped sessions, admin
route edits), the JSONL log and `log-parser filter --session`, `commands_total`,
the session file across restarts, idle expiry and `max_sessions`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trio
from typer.testing import CliRunner

from louter.access import digest
from louter.cli.log_parser import app as log_parser
from louter.config import SessionConfig, parse_config
from louter.proxy.app import build_context, serve
from louter.proxy.sessions.book import SessionBook
from louter.proxy.sessions.state import Session
from louter.proxy.store import MemoryStore
from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply
from tests.proxy.test_sessions import answering, config_for
from tests.sdk import Clients, in_thread

ADMIN, USER = "lk-admin-0123456789abcdef", "lk-user-0123456789abcdefg"


def chat(text: str, model: str = "gpt-test", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def upstreams(nursery: trio.Nursery) -> tuple[FakeUpstream, FakeUpstream]:
    first, second = FakeUpstream(answering("first")), FakeUpstream(answering("second"))
    await nursery.start(first.serve)
    await nursery.start(second.serve)
    return first, second


def answer_text(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


# --------------------------------------------------------------------------- x-session-id


async def test_every_answer_carries_x_session_id(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    first, second = await upstreams(nursery)
    base = await start_louter(config_for(first, second))
    sid = {"x-session-id": "abc-1"}
    async with httpx.AsyncClient(base_url=base) as http:
        answers = [
            await http.post("/v1/chat/completions", json=chat("hi"), headers=sid),
            await http.post("/v1/chat/completions", json=chat("!/hello"), headers=sid),
            await http.post("/v1/chat/completions", json=chat("hi", stream=True), headers=sid),
            await http.post("/v1/messages", json={**chat("!/pwd"), "max_tokens": 9}, headers=sid),
            await http.post("/v1/chat/completions", content=b"{not json", headers=sid),
            await http.post("/v1/chat/completions", json={"messages": []}, headers=sid),
            await http.get("/no/such/path", headers=sid),
            await http.get("/health", headers=sid),
        ]
        assert [r.headers.get("x-session-id") for r in answers] == ["abc-1"] * len(answers)
        assert [r.status_code for r in answers[-4:]] == [400, 400, 404, 200]
        named = {
            "x-claude-code-session-id": "0b4c6d1e-claude",
            "session-id": "codex-thread-7",
            "x-gemini-api-privileged-user-id": "b5e4f594-d7f2",
        }
        for header, value in named.items():
            found = await http.post(
                "/v1/chat/completions", json=chat("hi"), headers={header: value}
            )
            assert found.headers["x-session-id"] == value
        plain = await http.post("/v1/chat/completions", json=chat("hi"))
        assert plain.headers["x-session-id"] == "default"
        bad = await http.post(
            "/v1/chat/completions", json=chat("hi"), headers={"x-session-id": "a b"}
        )
        assert bad.status_code == 400 and "x-session-id" not in bad.headers
        assert "x-session-id must be 1-128" in bad.json()["error"]["message"]


async def test_disabled_commands_still_name_the_session(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    first, second = await upstreams(nursery)
    extra = "[session]\ndisable_interactive_commands = true\n"
    base = await start_louter(config_for(first, second, extra))
    async with httpx.AsyncClient(base_url=base) as http:
        reply = await http.post(
            "/v1/chat/completions", json=chat("!/backend(second)"), headers={"x-session-id": "q"}
        )
        assert reply.headers["x-session-id"] == "q"
        assert answer_text(reply) == "from first ok"  # the command reached the model as text
        assert "routes" in (await http.get("/health")).json()


async def test_the_responses_door_and_token_counting(
    nursery: trio.Nursery, start_louter: StartLouter, sdk: Clients
) -> None:
    first, second = await upstreams(nursery)
    base = await start_louter(config_for(first, second))
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk", max_retries=0,
                           default_headers={"x-session-id": "resp-1"})  # fmt: skip
    sdk._keep(client)
    whole = await in_thread(lambda: client.responses.create(model="m", input="!/backend(second)"))
    assert whole.output_text == "backend set to second"
    assert whole.usage is not None and whole.usage.total_tokens == 0

    def streamed() -> str:
        events = client.responses.create(model="m", input="!/hello", stream=True)
        return "".join(e.delta for e in events if e.type == "response.output_text.delta")

    assert (await in_thread(streamed)).startswith("Welcome to louter. Session: resp-1")
    answer = await in_thread(lambda: client.responses.create(model="m", input="hi"))
    assert answer.output_text == "from second ok"
    async with httpx.AsyncClient(base_url=base) as http:
        counted = await http.post(
            "/v1/messages/count_tokens",
            json={"model": "m", "messages": [{"role": "user", "content": "!/backend(first)"}]},
            headers={"x-session-id": "resp-1"},
        )
        assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
        reply = await http.post("/v1/chat/completions", json=chat("!/hello"),
                                headers={"x-session-id": "resp-1"})  # fmt: skip
    assert "backend=second" in answer_text(reply)  # counting ran no command
    many = " ".join(["!/pwd"] * 40)
    async with httpx.AsyncClient(base_url=base) as http:
        reply = await http.post("/v1/chat/completions", json=chat(many))
    assert answer_text(reply) == "at most 32 commands in one message; nothing was done"


# --------------------------------------------------------------------------- backend:model


async def test_backend_model_addressing_in_every_door(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    first, second = await upstreams(nursery)
    base = await start_louter(config_for(first, second))
    async with httpx.AsyncClient(base_url=base) as http:
        bodies = {
            "/v1/chat/completions": chat("hi", "second:plain-name"),
            "/v1/messages": {**chat("hi", "second:second-only"), "max_tokens": 10},
            "/v1/responses": {"model": "second:plain-name", "input": "hi"},
            "/v1/completions": {"model": "second:plain-name", "prompt": "hi"},
        }
        for path, body in bodies.items():
            assert (await http.post(path, json=body)).status_code == 200, path
        gemini = "/v1beta/models/second:plain-name:generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        assert (await http.post(gemini, json=body)).status_code == 200
    models = [r.json["model"] for r in second.requests]
    # the backend's mapping applies to a name it maps, else the name goes as written
    assert models == ["plain-name", "second-real", "plain-name", "plain-name", "plain-name"]
    assert first.requests == []


async def test_a_colon_that_names_no_backend_is_part_of_the_model(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    first, second = await upstreams(nursery)
    base = await start_louter(config_for(first, second))
    async with httpx.AsyncClient(base_url=base) as http:
        await http.post("/v1/chat/completions", json=chat("hi", "qwen3:8b"))
        path = "/v1beta/models/gpt-oss:20b:streamGenerateContent?alt=sse"
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        assert (await http.post(path, json=body)).status_code == 200
    # first's model list cannot be read (a 404): the names are passed on as written
    sent = [r.json["model"] for r in first.requests if r.method == "POST"]
    assert sent == ["qwen3:8b", "gpt-oss:20b"]


async def test_a_session_backend_that_is_gone_is_a_400_listing_backends(
    nursery: trio.Nursery, start_louter: StartLouter, tmp_path: Path
) -> None:
    first, second = await upstreams(nursery)
    path = tmp_path / "sessions.json"
    saved = {"id": "s", "settings": {"backend": "retired"}, "oneoff": None, "touched": 4e9}
    path.write_text(json.dumps({"version": 1, "sessions": {"session::s": saved}, "routes": {}}))
    extra = f'[session]\nfile_path = "{path}"\n'
    base = await start_louter(config_for(first, second, extra))
    async with httpx.AsyncClient(base_url=base) as http:
        reply = await http.post("/v1/messages", json={**chat("hi"), "max_tokens": 5},
                                headers={"x-session-id": "s"})  # fmt: skip
    assert reply.status_code == 400
    assert reply.json()["type"] == "error"  # Anthropic's envelope
    message = reply.json()["error"]["message"]
    assert "backend 'retired' is not configured (backends: first, second, mock" in message


# --------------------------------------------------------------------------- runtime routes


async def test_runtime_routes(nursery: trio.Nursery, start_louter: StartLouter) -> None:
    first, second = await upstreams(nursery)
    base = await start_louter(config_for(first, second))
    async with httpx.AsyncClient(base_url=base) as http:

        async def say(text: str, model: str = "gpt-test") -> str:
            return answer_text(await http.post("/v1/chat/completions", json=chat(text, model)))

        assert (
            await say("!/route-list") == "No runtime routes (the config's model_mapping applies)."
        )
        assert await say("!/route-append(second-only, first:alpha)") == (
            "route for second-only: first:alpha"
        )
        assert await say("!/route-prepend(second-only, second:beta, second:gamma)") == (
            "route for second-only: second:beta, second:gamma, first:alpha"
        )
        assert (await say("!/route-append(second-only, nowhere:x)")).endswith(
            "unknown backend 'nowhere'; backends: first, second, mock, openai, gemini,"
            " anthropic, openrouter"
        )
        assert await say("!/route-list") == (
            "Runtime routes (tried in order, before the config's mapping):\n"
            "  second-only -> second:beta, second:gamma, first:alpha"
        )
        health = (await http.get("/health")).json()
        assert health["routes"] == {"second-only": ["second:beta", "second:gamma", "first:alpha"]}
        # the runtime route wins over second's own mapping of "second-only"
        assert await say("hi", "second-only") == "from second ok"
        assert second.requests[-1].json["model"] == "beta"
        assert await say("!/route-clear(second-only)") == "route for second-only cleared"
        assert await say("hi", "second-only") == "from second ok"
        assert second.requests[-1].json["model"] == "second-real"  # the config again
        assert (await say("!/route-clear(second-only)")).endswith(
            "no runtime route for 'second-only'"
        )
        assert (await http.get("/health")).json()["routes"] == {}


async def test_a_runtime_route_fails_over_in_order(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    first, second = await upstreams(nursery)
    second.default = JSONReply({"error": {"message": "down"}}, status=500)
    base = await start_louter(config_for(first, second))
    async with httpx.AsyncClient(base_url=base) as http:
        await http.post(
            "/v1/chat/completions", json=chat("!/route-append(gpt-4, second:two, first:one)")
        )
        reply = await http.post("/v1/chat/completions", json=chat("hi", "gpt-4"))
    assert reply.status_code == 200 and answer_text(reply) == "from first ok"
    assert [r.json["model"] for r in second.requests] == ["two"]  # tried first, failed
    assert [r.json["model"] for r in first.requests] == ["one"]


# --------------------------------------------------------------------------- client keys


def keyed(first: FakeUpstream, second: FakeUpstream) -> str:
    return config_for(first, second) + (
        f'[keys.boss]\nkey_sha256 = "{digest(ADMIN).hex()}"\nadmin = true\n'
        f'[keys.user]\nkey_sha256 = "{digest(USER).hex()}"\nmodels = ["gpt-*"]\n'
    )


async def test_keys_scope_sessions_and_only_admins_edit_routes(
    nursery: trio.Nursery, start_louter: StartLouter
) -> None:
    first, second = await upstreams(nursery)
    base = await start_louter(keyed(first, second))
    boss, user = ({"authorization": f"Bearer {key}"} for key in (ADMIN, USER))
    async with httpx.AsyncClient(base_url=base) as http:

        async def post(body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
            return await http.post("/v1/chat/completions", json=body, headers=headers)

        reply = await post(chat("!/hello"), user)
        assert reply.headers["x-session-id"] == "key:user"
        assert answer_text(reply).startswith("Welcome to louter. Session: key:user")
        shared = {"x-session-id": "same-name"}
        await post(chat("!/set(project=boss-project)"), {**boss, **shared})
        assert "Settings: none" in answer_text(await post(chat("!/hello"), {**user, **shared}))
        refused = answer_text(await post(chat("!/route-append(gpt-4, first:x)"), user))
        assert refused.endswith("editing routes needs an admin key (admin = true in [keys.NAME])")
        assert answer_text(await post(chat("!/route-append(gpt-4, first:x)"), boss)) == (
            "route for gpt-4: first:x"
        )
        assert "gpt-4 -> first:x" in answer_text(await post(chat("!/route-list"), user))
        # the key's allow-list judges the model the session chose
        await post(chat("!/backend(second)"), user)
        denied = await post(chat("hi"), user)
        assert denied.status_code == 403 and "second:gpt-test" in denied.text
        unauthorized = await post(chat("!/hello"), {**shared})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["x-session-id"] == "same-name"


# --------------------------------------------------------------------------- observability


async def test_log_metrics_and_log_parser_filter(
    nursery: trio.Nursery, start_louter: StartLouter, tmp_path: Path
) -> None:
    first, second = await upstreams(nursery)
    log = tmp_path / "louter.jsonl"
    base = await start_louter(config_for(first, second), log_file=log)
    async with httpx.AsyncClient(base_url=base) as http:
        for sid, text in (("s-a", "!/backend(second) hello"), ("s-b", "!/set (x=1)"),
                          ("s-a", "!/oops"), ("s-a", "!/hello")):  # fmt: skip
            await http.post("/v1/chat/completions", json=chat(text), headers={"x-session-id": sid})
        metrics = (await http.get("/metrics")).text
    for line in (
        'commands_total{command="backend",outcome="ok"} 1.0',
        'commands_total{command="set",outcome="malformed"} 1.0',
        'commands_total{command="unknown",outcome="unknown"} 1.0',
        'commands_total{command="hello",outcome="ok"} 1.0',
    ):
        assert line in metrics
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    first_exchange = [e for e in entries if e["request_id"] == entries[0]["request_id"]]
    assert {e["direction"] for e in first_exchange} >= {"client_request", "backend_request"}
    assert all(e["session"] == "s-a" for e in first_exchange)
    applied = [e["commands"] for e in first_exchange if "commands" in e]
    assert applied and applied[-1] == [{"command": "!/backend(second)", "outcome": "ok"}]
    found = CliRunner().invoke(log_parser, ["--file", str(log), "--json", "filter",
                                            "--session", "s-b"])  # fmt: skip
    assert found.exit_code == 0, found.output
    selected = [json.loads(line) for line in found.stdout.splitlines()]
    assert selected and {e["session"] for e in selected} == {"s-b"}
    assert any(e.get("local") for e in selected)


# --------------------------------------------------------------------------- the session file


async def test_the_session_file_keeps_sessions_and_routes_across_restarts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "sessions.json"
    path.parent.mkdir()
    text = f'[backends.mock]\nprotocol = "mock"\n[session]\nfile_path = "{path}"\n'
    config = parse_config(text, path="t.toml", env={})
    sid = {"x-session-id": "keep-me"}

    async def run(*steps: str) -> list[str]:
        answers = []
        async with trio.open_nursery() as nursery:
            ctx = build_context(config, default_backend="mock")
            port = await nursery.start(serve, ctx, "127.0.0.1", 0)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for step in steps:
                    reply = await http.post("/v1/chat/completions", json=chat(step), headers=sid)
                    answers.append(answer_text(reply))
            nursery.cancel_scope.cancel()
        return answers

    await run('!/set(project="kept", temperature=0.5)', "!/route-append(gpt-4, mock:m)")
    saved = json.loads(path.read_text())
    assert saved["sessions"]["session::keep-me"]["settings"] == {
        "project": "kept",
        "temperature": 0.5,
    }
    assert saved["routes"] == {"gpt-4": ["mock:m"]}
    assert not list(path.parent.glob(".*tmp"))  # no temporary file left behind
    hello, routes = await run("!/hello", "!/route-list")
    assert "project=kept, temperature=0.5" in hello
    assert "gpt-4 -> mock:m" in routes
    path.write_text("{broken")
    (hello,) = await run("!/hello")
    assert "Settings: none" in hello
    assert (path.parent / "sessions.json.bad").read_text() == "{broken"


def test_file_path_is_for_in_process_sessions_only() -> None:
    text = '[store]\nurl = "redis://127.0.0.1:1/0"\n[session]\nfile_path = "/tmp/x.json"\n'
    with pytest.raises(Exception, match=r"\[session\] key 'file_path': keeps in-process"):
        parse_config(text, path="t.toml", env={})


# --------------------------------------------------------------------------- the book


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_sessions_expire_when_idle_and_are_bounded() -> None:
    wall, mono = Clock(), Clock()
    store = MemoryStore(clock=mono)
    book = SessionBook(store, SessionConfig(expiry_seconds=100, max_sessions=2), clock=wall)

    async def keep(name: str) -> None:
        session = Session(name, "k:" + name)
        session.set("project", name)
        await book.save(session)

    for name in ("a", "b"):
        await keep(name)
    assert (await book.load("a", "k:a")).get("project") == "a"  # a is now the most recent
    await keep("c")  # over max_sessions: b, the least recently used, goes
    assert book.count() == 2 and book.evicted == 1
    assert (await book.load("b", "k:b")).empty
    assert (await book.load("c", "k:c")).get("project") == "c"
    mono.now += 60
    wall.now += 60
    used = await book.load("a", "k:a")  # used after a while: written again, expiry renewed
    assert used.changed
    await book.save(used)
    mono.now += 60
    wall.now += 60
    assert not (await book.load("a", "k:a")).empty  # 120 s after its first save
    assert (await book.load("c", "k:c")).empty  # idle for 120 s: gone
