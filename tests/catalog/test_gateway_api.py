"""The catalog over real HTTP: `/api/models` (+ search, `/{id}`) fed by config, a prices
file and a fake backend's own list (discovery with its TTL, background refresh and
failures), the model lookups' 404s, `unknown_models = "reject"` at every door, the
`/v2` aliases, `/health/providers`, `/health/cache` and `/api/condense`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from louter.config import parse_config
from louter.proxy.app import build_context, serve
from tests.fakes import FakeUpstream, JSONReply, Recorded, chat_completion

LISTED = [
    {
        "id": "qwen3-coder",
        "object": "model",
        "owned_by": "llamacpp",
        "meta": {"n_ctx_train": 32768},
    },
    {"id": "gpt-4o", "object": "model", "owned_by": "openai"},
]
PRICES = {
    "gpt-4o": {
        "max_input_tokens": 128000,
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "litellm_provider": "openai",
        "mode": "chat",
        "supports_vision": True,
        "supports_function_calling": True,
    },
    "text-embedding-3-small": {
        "max_input_tokens": 8191,
        "input_cost_per_token": 2e-08,
        "output_cost_per_token": 0.0,
        "litellm_provider": "openai",
        "mode": "embedding",
    },
}


class Backend:
    """A fake OpenAI-compatible backend whose model list can change or fail."""

    def __init__(self) -> None:
        self.listed: list[dict[str, Any]] = list(LISTED)
        self.list_status = 200
        self.upstream = FakeUpstream(self.reply)

    def reply(self, request: Recorded) -> JSONReply:
        if request.method == "GET" and request.path == "/v1/models":
            if self.list_status != 200:
                return JSONReply({"error": {"message": "down"}}, status=self.list_status)
            return JSONReply({"object": "list", "data": self.listed})
        return JSONReply(chat_completion("A short summary.", model="real"))

    def list_reads(self) -> int:
        return sum(1 for r in self.upstream.requests if r.method == "GET")


def config(port: int, extra: str = "", prices: Path | None = None) -> str:
    catalog = f'[catalog]\nprices_file = "{prices}"\n' if prices else ""
    return f"""
[backends.local]
url = "http://127.0.0.1:{port}"
api_key = "backend-secret"

[backends.local.model_mapping]
"coder" = "qwen3-coder"

[backends.mock]
protocol = "mock"

[models."gpt-4o"]
name = "GPT-4o via local"
[models."text-embedding-3-small"]
backend = "local"
{catalog}{extra}
"""


async def start(nursery: trio.Nursery, toml: str, warnings: list[str] | None = None) -> str:
    parsed = parse_config(toml, path="/tmp/test.toml", env={})
    warn = warnings.append if warnings is not None else None
    clock = trio.current_time  # the TTL follows trio's clock (autojump in a test)
    ctx = build_context(parsed, default_backend="local", warn=warn, monotonic=clock)
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    return f"http://127.0.0.1:{port}"


async def backend(nursery: trio.Nursery) -> Backend:
    fake = Backend()
    await nursery.start(fake.upstream.serve)
    return fake


def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    path.write_bytes(orjson.dumps(PRICES))
    return path


# --------------------------------------------------------------------------- /api/models


async def test_api_models_shape(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake = await backend(nursery)
    base = await start(nursery, config(fake.upstream.port, prices=prices_file(tmp_path)))
    async with httpx.AsyncClient(base_url=base) as client:
        listed = (await client.get("/api/models")).json()
    models = {(m["id"], m["backend"]): m for m in listed["models"]}
    assert listed["count"] == len(listed["models"]) == 4
    assert set(models) == {
        ("coder", "local"),  # mapped, completed from the backend's list of qwen3-coder
        ("gpt-4o", "local"),  # listed by the default backend
        ("qwen3-coder", "local"),
        ("text-embedding-3-small", "local"),  # configured only
    }
    gpt = models[("gpt-4o", "local")]
    assert gpt == {
        "id": "gpt-4o",
        "name": "GPT-4o via local",
        "provider": "openai",
        "supports_chat": True,
        "capabilities": ["chat", "vision", "tools"],
        "context_length": 128000,
        "input_cost": 0.0025,  # per 1K tokens, as the seed shows
        "output_cost": 0.01,
        "input_cost_per_mtok": 2.5,
        "output_cost_per_mtok": 10.0,
        "backend": "local",
        "source": "discovered",
    }
    coder = models[("coder", "local")]
    assert coder["context_length"] == 32768 and coder["provider"] == "llamacpp"
    assert coder["input_cost"] is None and coder["output_cost_per_mtok"] is None  # never $0
    embedding = models[("text-embedding-3-small", "local")]
    assert embedding["supports_chat"] is False and embedding["capabilities"] == ["embeddings"]
    assert embedding["output_cost"] == 0.0  # a real 0 from the prices file


async def test_search_filters(nursery: trio.Nursery, tmp_path: Path) -> None:
    fake = await backend(nursery)
    base = await start(nursery, config(fake.upstream.port, prices=prices_file(tmp_path)))

    async def ids(**params: str) -> list[str]:
        async with httpx.AsyncClient(base_url=base) as client:
            found = (await client.get("/api/models/search", params=params)).json()
        assert found["count"] == len(found["models"])
        return sorted(m["id"] for m in found["models"])

    assert await ids(q="GPT") == ["gpt-4o"]  # any case, id or name
    assert await ids(q="via local") == ["gpt-4o"]
    assert await ids(provider="OpenAI") == ["gpt-4o", "text-embedding-3-small"]
    assert await ids(supports_chat="false") == ["text-embedding-3-small"]
    assert await ids(supports_chat="true") == ["coder", "gpt-4o", "qwen3-coder"]
    assert await ids(min_context="100000") == ["gpt-4o"]
    assert await ids(min_context="10000") == ["coder", "gpt-4o", "qwen3-coder"]
    assert await ids(capability="vision") == ["gpt-4o"]
    assert await ids(q="gpt", provider="openai", supports_chat="1", min_context="1") == ["gpt-4o"]
    assert await ids(q="nothing-like-it") == []
    async with httpx.AsyncClient(base_url=base) as client:
        bad = await client.get("/api/models/search", params={"min_context": "lots"})
        flag = await client.get("/api/models/search", params={"supports_chat": "maybe"})
    assert bad.status_code == 400 and "min_context" in bad.json()["error"]["message"]
    assert flag.status_code == 400 and "supports_chat" in flag.json()["error"]["message"]


async def test_model_details_and_404(nursery: trio.Nursery) -> None:
    fake = await backend(nursery)
    fake.listed.append({"id": "Qwen/Qwen3-Coder:30b", "object": "model"})
    base = await start(nursery, config(fake.upstream.port))
    async with httpx.AsyncClient(base_url=base) as client:
        one = await client.get("/api/models/Qwen/Qwen3-Coder:30b")
        missing = await client.get("/api/models/no-such-model")
        posted = await client.post("/api/models/gpt-4o")
    assert one.status_code == 200
    assert one.json()["model"]["id"] == "Qwen/Qwen3-Coder:30b"
    assert one.json()["model"]["backends"] == ["local"]
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"
    assert posted.status_code == 405


# --------------------------------------------------------------------------- discovery


async def test_discovery_is_lazy_cached_and_refreshed(
    nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    fake = await backend(nursery)
    base = await start(nursery, config(fake.upstream.port, "[catalog]\ndiscovery_ttl_seconds = 60"))
    async with httpx.AsyncClient(base_url=base) as client:
        await client.post(
            "/v1/chat/completions",
            json={"model": "coder", "messages": [{"role": "user", "content": "x"}]},
        )
        assert fake.list_reads() == 0  # requests never read a list (unknown_models = default)
        first = await client.get("/v1/models")
        assert fake.list_reads() == 1
        await client.get("/api/models")
        await client.get("/v1/models/gpt-4o")
        assert fake.list_reads() == 1  # fresh: no second read
        fake.listed.append({"id": "brand-new", "object": "model"})
        await trio.sleep(61)
        stale = await client.get("/v1/models")  # the old list answers, a refresh starts
        await fake.upstream.wait_requests(len(fake.upstream.requests))
        await trio.sleep(1)
        fresh = await client.get("/v1/models")
    ids = lambda r: [m["id"] for m in r.json()["data"]]  # noqa: E731
    # mapped names, the default backend's list, then backend names (presets included)
    assert ids(first)[:5] == ["coder", "qwen3-coder", "gpt-4o", "local", "mock"]
    assert "brand-new" not in ids(stale)
    assert "brand-new" in ids(fresh)
    assert fake.list_reads() == 2
    assert fake.upstream.requests[1].headers["authorization"] == "Bearer backend-secret"


async def test_discovery_failure_is_warned_counted_and_not_fatal(nursery: trio.Nursery) -> None:
    fake = await backend(nursery)
    fake.list_status = 503
    warnings: list[str] = []
    base = await start(nursery, config(fake.upstream.port), warnings)
    async with httpx.AsyncClient(base_url=base) as client:
        listed = await client.get("/api/models")
        lookup = await client.get("/v1/models/anything")  # the list is unknown: not a 404
        providers = (await client.get("/health/providers")).json()
        metrics = (await client.get("/metrics")).text
    assert listed.status_code == 200
    assert {m["id"] for m in listed.json()["models"]} == {
        "coder",
        "gpt-4o",
        "text-embedding-3-small",
    }
    assert lookup.status_code == 200
    assert warnings == ["model discovery: local: GET /v1/models answered 503"]
    assert 'discovery_failures_total{backend="local"} 1.0' in metrics
    state = providers["local"]["model_list"]
    assert state["count"] is None and state["error"] == "GET /v1/models answered 503"
    assert "backend-secret" not in metrics + orjson.dumps(providers).decode()


async def test_gemini_and_anthropic_lists_paginate(nursery: trio.Nursery) -> None:
    pages = {
        "/v1beta/models?pageSize=1000": {
            "models": [
                {
                    "name": "models/gemini-2.5-flash",
                    "inputTokenLimit": 1048576,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                }
            ],
            "nextPageToken": "p/2",
        },  # fmt: skip
        "/v1beta/models?pageSize=1000&pageToken=p%2F2": {
            "models": [
                {
                    "name": "models/text-embedding-004",
                    "supportedGenerationMethods": ["embedContent"],
                }
            ],
        },  # fmt: skip
        "/v1/models?limit=1000": {
            "data": [{"type": "model", "id": "claude-a", "display_name": "Claude A"}],
            "has_more": True,
            "last_id": "claude-a",
        },
        "/v1/models?limit=1000&after_id=claude-a": {
            "data": [{"type": "model", "id": "claude-b", "display_name": "Claude B"}],
            "has_more": False,
            "last_id": "claude-b",
        },
    }
    fake = FakeUpstream(lambda r: JSONReply(pages.get(r.path, {"error": "no page"})))
    await nursery.start(fake.serve)
    toml = f"""
[backends.gem]
url = "http://127.0.0.1:{fake.port}"
protocol = "gemini"
api_key = "g"
[backends.claude]
url = "http://127.0.0.1:{fake.port}"
protocol = "anthropic"
api_key = "a"
"""
    parsed = parse_config(toml, path="t.toml", env={})
    ctx = build_context(parsed, default_backend="gem")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        models = (await client.get("/api/models")).json()["models"]
    found = {(m["id"], m["backend"]): m for m in models}
    assert set(found) == {  # both share the default pool: neither has a model_mapping
        ("gemini-2.5-flash", "gem"),
        ("text-embedding-004", "gem"),
        ("claude-a", "claude"),
        ("claude-b", "claude"),
    }
    assert found[("gemini-2.5-flash", "gem")]["context_length"] == 1048576
    assert found[("text-embedding-004", "gem")]["supports_chat"] is False
    assert ctx.served is not None and ctx.served.discovery is not None
    claude = ctx.served.discovery.known("claude")
    assert claude is not None and claude.models is not None
    assert [m.name for m in claude.models] == ["Claude A", "Claude B"]
    assert {r.headers.get("x-goog-api-key") for r in fake.requests if "pageSize" in r.path} == {"g"}


# --------------------------------------------------------------------------- 404s, reject


def _chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


DOOR_REQUESTS = {
    "openai": ("/v1/chat/completions", _chat, lambda b: b["error"]["code"] == "model_not_found"),
    "anthropic": (
        "/v1/messages",
        lambda m: {**_chat(m), "max_tokens": 5},
        lambda b: b["type"] == "error" and b["error"]["type"] == "not_found_error",
    ),
    "responses": ("/v1/responses", lambda m: {"model": m, "input": "hi"}, lambda b: "error" in b),
    "completions": (
        "/v1/completions",
        lambda m: {"model": m, "prompt": "hi"},
        lambda b: "error" in b,
    ),
}


async def test_reject_unknown_models_at_every_door(nursery: trio.Nursery) -> None:
    fake = await backend(nursery)
    base = await start(nursery, config(fake.upstream.port, '[routing]\nunknown_models = "reject"'))
    gemini_body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with httpx.AsyncClient(base_url=base) as client:
        for dialect, (path, body, check) in DOOR_REQUESTS.items():
            refused = await client.post(path, json=body("nope-model"))
            assert refused.status_code == 404, (dialect, refused.text)
            assert check(refused.json()), (dialect, refused.json())
            assert "nope-model" in refused.text
        gemini = await client.post("/v1beta/models/nope-model:generateContent", json=gemini_body)
        counted = await client.post("/v1beta/models/nope-model:countTokens", json=gemini_body)
        accepted = [
            await client.post("/v1/chat/completions", json=_chat(model))
            for model in (
                "coder",
                "qwen3-coder",
                "gpt-4o",
                "mock",
            )  # mapped, listed, configured, backend
        ]
    assert gemini.status_code == 404 and gemini.json()["error"]["status"] == "NOT_FOUND"
    assert counted.status_code == 404
    assert [r.status_code for r in accepted] == [200, 200, 200, 200]
    chats = [r for r in fake.upstream.requests if r.method == "POST"]
    assert [r.json["model"] for r in chats] == ["qwen3-coder", "qwen3-coder", "gpt-4o"]


async def test_lookups_404_in_each_envelope(nursery: trio.Nursery) -> None:
    fake = await backend(nursery)
    base = await start(nursery, config(fake.upstream.port))  # default: lookups still 404
    async with httpx.AsyncClient(base_url=base) as client:
        openai_missing = await client.get("/v1/models/nope")
        anthropic_missing = await client.get(
            "/v1/models/nope", headers={"anthropic-version": "2023-06-01"}
        )
        gemini_missing = await client.get("/v1beta/models/nope")
        gemini_v1 = await client.get("/v1/models/nope", headers={"x-goog-api-key": "k"})
        found = await client.get("/v1/models/qwen3-coder")
        anthropic_found = await client.get(
            "/v1/models/coder", headers={"anthropic-version": "2023-06-01"}
        )
        gemini_found = await client.get("/v1beta/models/gpt-4o")
    assert openai_missing.status_code == 404
    assert openai_missing.json()["error"]["code"] == "model_not_found"
    assert anthropic_missing.status_code == 404
    assert anthropic_missing.json()["error"]["type"] == "not_found_error"
    assert gemini_missing.status_code == gemini_v1.status_code == 404
    assert gemini_missing.json()["error"]["status"] == "NOT_FOUND"
    assert found.json() == {
        "id": "qwen3-coder",
        "object": "model",
        "created": 0,
        "owned_by": "local",
    }
    assert anthropic_found.json()["type"] == "model" and anthropic_found.json()["id"] == "coder"
    assert gemini_found.json()["name"] == "models/gpt-4o"


# --------------------------------------------------------------------------- /v2, health


async def test_v2_aliases(nursery: trio.Nursery) -> None:
    parsed = parse_config('[backends.mock]\nprotocol = "mock"\n', path="t.toml", env={})
    ctx = build_context(parsed, default_backend="mock")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    gemini_body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        chat = await client.post("/v2/chat/completions", json=_chat("m"))
        messages = await client.post("/v2/messages", json={**_chat("m"), "max_tokens": 9})
        models = await client.get("/v2/models")
        gemini_list = await client.get("/v2/models/list")
        generated = await client.post("/v2/models/gpt-oss:20b:generateContent", json=gemini_body)
        one = await client.get("/v2/models/m")
        metrics = (await client.get("/metrics")).text
    assert chat.json()["choices"][0]["message"]["content"] == 'Mock answer to: "hi" (images: 0)'
    assert messages.json()["type"] == "message"
    assert models.json()["object"] == "list"
    assert "models" in gemini_list.json()
    assert generated.status_code == 200 and "candidates" in generated.json()
    assert one.json()["id"] == "m"
    assert 'endpoint="/v2/models/{model}:generateContent"' in metrics


async def test_health_providers_and_cache(nursery: trio.Nursery) -> None:
    fake = await backend(nursery)
    base = await start(nursery, config(fake.upstream.port))
    async with httpx.AsyncClient(base_url=base) as client:
        await client.post("/v1/chat/completions", json=_chat("coder"))
        await client.get("/v1/models")
        providers = (await client.get("/health/providers")).json()
        cache = (await client.get("/health/cache")).json()
    local = providers["local"]
    assert local["state"] == "healthy" and local["consecutive_failures"] == 0
    assert local["requests_ok"] == 1 and local["latency_ms"] > 0
    assert local["model_list"]["count"] == 2 and local["model_list"]["error"] is None
    assert providers["mock"]["model_list"] is None  # the mock serves any name: no list
    assert set(providers) >= {"local", "mock", "openai", "gemini", "anthropic"}
    assert "127.0.0.1" not in orjson.dumps(providers).decode()
    assert cache == {"enabled": False}


# --------------------------------------------------------------------------- /api/condense


async def test_condense(nursery: trio.Nursery) -> None:
    fake = await backend(nursery)
    extra = '[condense]\nmodel = "local:qwen3-coder"\nmax_tokens = 100\n'
    base = await start(nursery, config(fake.upstream.port, extra))
    messages = [
        {"role": "user", "content": "Tell me about Python"},
        {"role": "assistant", "content": [{"type": "text", "text": "Python is a language."}]},
    ]
    async with httpx.AsyncClient(base_url=base) as client:
        answer = await client.post("/api/condense", json={"messages": messages, "max_tokens": 50})
        budget = await client.post("/api/condense", json={"messages": messages})
        bad = await client.post("/api/condense", json={"messages": "not a list"})
        fake.upstream.script(JSONReply({"error": {"message": "overloaded"}}, status=429))
        failed = await client.post("/api/condense", json={"messages": messages})
    assert answer.status_code == 200
    assert answer.json() == {
        "summary": "A short summary.",
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        "model": "local:qwen3-coder",
    }
    sent = [r.json for r in fake.upstream.requests if r.method == "POST"]
    assert sent[0]["model"] == "qwen3-coder" and sent[0]["max_tokens"] == 50
    assert sent[0]["messages"][0]["role"] == "system"
    assert sent[0]["messages"][1]["content"] == (
        "user: Tell me about Python\n\nassistant: Python is a language."
    )
    assert budget.status_code == 200 and sent[1]["max_tokens"] == 100
    assert bad.status_code == 400 and "messages" in bad.json()["error"]["message"]
    assert failed.status_code == 429 and "error" in failed.json()


async def test_condense_not_configured_and_catalog_needs_a_key(nursery: trio.Nursery) -> None:
    from louter.access import digest

    good = "lk-catalog-key-0123456789abcdef"
    toml = f"""
[backends.mock]
protocol = "mock"
[auth]
[keys.team]
key_sha256 = "{digest(good).hex()}"
"""
    parsed = parse_config(toml, path="t.toml", env={})
    ctx = build_context(parsed, default_backend="mock")
    port = await nursery.start(serve, ctx, "127.0.0.1", 0)
    auth = {"authorization": f"Bearer {good}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        anonymous = [
            await client.get(p) for p in ("/api/models", "/api/models/search", "/api/models/m")
        ]
        keyed = await client.get("/api/models", headers=auth)
        condense = await client.post("/api/condense", json={"messages": []}, headers=auth)
        health = await client.get("/health/providers")
    assert [r.status_code for r in anonymous] == [401, 401, 401]
    assert keyed.status_code == 200
    assert condense.status_code == 404 and "[condense]" in condense.json()["error"]["message"]
    assert health.status_code == 200
