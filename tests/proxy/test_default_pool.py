"""The default pool (issue 25): names no model_mapping claims go to the default backend and
the config's other backends without a mapping, by priority and weight, with failover.

The seed's own failover example (`[backends.primary] weight = 2.0`, `[backends.fallback]
weight = 1.0`, no mapping) is the config under test, with its URLs pointed at fakes.
"""

from __future__ import annotations

from collections import Counter

import httpx
import trio

from louter.config import parse_config
from louter.proxy.routing import Router
from tests.conftest import StartLouter
from tests.fakes import FakeUpstream, JSONReply, chat_completion
from tests.proxy.test_faults import closed_port

SEED_FAILOVER = """
# Primary backend
[backends.primary]
url = "http://localhost:{primary}"
weight = 2.0

# Fallback backend
[backends.fallback]
url = "http://localhost:{fallback}"
weight = 1.0
"""


def router(toml: str, default: str) -> Router:
    return Router(parse_config(toml, path="t.toml", env={}), default)


def firsts(r: Router, model: str, count: int) -> list[str]:
    return [r.candidates(model)[0].backend.name for _ in range(count)]


def test_unmapped_backends_share_unmapped_names_by_weight() -> None:
    r = router(SEED_FAILOVER.format(primary=1, fallback=2), "primary")
    assert Counter(firsts(r, "any-model", 300)) == {"primary": 200, "fallback": 100}
    routes = r.candidates("any-model")
    assert {route.backend.name for route in routes} == {"primary", "fallback"}
    assert all(route.model == "any-model" for route in routes)  # names pass through
    assert "fallback" in r.routed()


def test_the_default_goes_first_among_equals_and_priority_orders_the_pool() -> None:
    toml = (
        '[backends.a]\nprotocol = "mock"\n[backends.b]\nprotocol = "mock"\n'
        '[backends.c]\nprotocol = "mock"\npriority = 200\n'
    )
    r = router(toml, "b")
    assert [route.backend.name for route in r.candidates("x")] == ["b", "a", "c"]
    assert r.owner("x").name == "b"


def test_mapped_backends_presets_and_a_mapped_default_stay_out_of_the_pool() -> None:
    toml = (
        '[backends.local]\nprotocol = "mock"\n'
        '[backends.cloud]\nprotocol = "mock"\n[backends.cloud.model_mapping]\n"gpt-4o" = "g"\n'
    )
    # the built-in presets (mock, openai, ...) are not in the file: never pooled
    assert [route.backend.name for route in router(toml, "local").candidates("x")] == ["local"]
    # a default with a mapping of its own serves unmapped names alone (cost control)
    assert [route.backend.name for route in router(toml, "cloud").candidates("x")] == ["cloud"]
    # a backend's own name still routes to it alone
    assert [route.backend.name for route in router(toml, "local").candidates("cloud")] == ["cloud"]


async def test_the_seeds_failover_config_fails_over_and_spreads_2_to_1(
    start_louter: StartLouter, nursery: trio.Nursery
) -> None:
    primary = FakeUpstream(JSONReply(chat_completion("from primary")))
    fallback = FakeUpstream(JSONReply(chat_completion("from fallback")))
    for fake in (primary, fallback):
        await nursery.start(fake.serve)
    body = {"model": "whatever-model", "messages": [{"role": "user", "content": "x"}]}

    both_up = await start_louter(SEED_FAILOVER.format(primary=primary.port, fallback=fallback.port))
    answers: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=both_up, timeout=10) as http:
        for _ in range(30):
            reply = await http.post("/v1/chat/completions", json=body)
            assert reply.status_code == 200, reply.text
            answers[reply.json()["choices"][0]["message"]["content"]] += 1
    assert answers == {"from primary": 20, "from fallback": 10}
    assert all(r.json["model"] == "whatever-model" for r in primary.requests)

    primary_down = await start_louter(
        SEED_FAILOVER.format(primary=closed_port(), fallback=fallback.port)
    )
    async with httpx.AsyncClient(base_url=primary_down, timeout=10) as http:
        for _ in range(6):
            reply = await http.post("/v1/chat/completions", json=body)
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"][0]["message"]["content"] == "from fallback"
