"""Usage accounting end to end: every client dialect, whole and streamed, against a fake
OpenAI upstream that reports known usage; the stats equal what it reported, priced or
not; the usage file survives a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from louter.proxy.sessions.stage import SessionStage
from tests.fakes import FakeUpstream
from tests.sdk import Clients
from tests.usage.helpers import (
    ASK,
    COMPLETION,
    COST,
    PROMPT,
    answer,
    ask,
    get,
    start,
    usage_toml,
)


async def _fake(nursery: trio.Nursery) -> FakeUpstream:
    fake = FakeUpstream(answer)
    await nursery.start(fake.serve)
    return fake


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("door", list(ASK))
async def test_stats_equal_the_usage_the_upstream_reported(
    nursery: trio.Nursery, sdk: Clients, tmp_path: Path, door: str, stream: bool
) -> None:
    fake = await _fake(nursery)
    base, _, _ = await start(nursery, usage_toml(fake, str(tmp_path / "u.db")))
    await ask(sdk, door, base, "priced", stream)
    await ask(sdk, door, base, "priced", stream)
    if stream:  # the upstream was asked for its usage, whoever the client was
        assert all(r.json["stream_options"]["include_usage"] for r in fake.requests)
    stats = (await get(base, "/v2/usage/stats")).json()
    totals = stats["totals"]
    assert totals["requests"] == 2
    assert (totals["input_tokens"], totals["output_tokens"]) == (2 * PROMPT, 2 * COMPLETION)
    assert totals["cost_usd"] == pytest.approx(2 * COST)
    assert totals["unpriced_requests"] == 0
    assert [row["model"] for row in stats["by_model"]] == ["priced"]
    assert [row["backend"] for row in stats["by_backend"]] == ["up"]
    recent = (await get(base, "/v2/usage/recent?limit=5")).json()["data"]
    assert [r["format"] for r in recent] == [door, door]
    assert all(not r["estimated"] and r["stream"] is stream for r in recent)


async def test_cost_header_and_unpriced_usage(
    nursery: trio.Nursery, sdk: Clients, tmp_path: Path
) -> None:
    """A priced whole answer carries x-louter-cost-usd; a model without a price records
    cost_usd null and counts usage_unpriced_total — never $0."""
    fake = await _fake(nursery)
    base, _, _ = await start(nursery, usage_toml(fake, str(tmp_path / "u.db")))
    body = {"model": "priced", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient() as client:
        priced = await client.post(base + "/v1/chat/completions", json=body)
        free = await client.post(base + "/v1/chat/completions", json={**body, "model": "other"})
    assert float(priced.headers["x-louter-cost-usd"]) == pytest.approx(COST)
    assert "x-louter-cost-usd" not in free.headers
    stats = (await get(base, "/v2/usage/stats")).json()
    by_model = {row["model"]: row for row in stats["by_model"]}
    assert by_model["other"]["cost_usd"] is None
    assert by_model["other"]["unpriced_requests"] == 1
    assert by_model["priced"]["cost_usd"] == pytest.approx(COST)
    assert stats["totals"]["unpriced_requests"] == 1
    metrics = (await get(base, "/metrics")).text
    assert "usage_unpriced_total 1.0" in metrics
    recent = (await get(base, "/v2/usage/recent")).json()["data"]
    assert [r["cost_usd"] for r in recent] == [None, pytest.approx(COST)]


async def test_the_usage_file_survives_a_restart(
    nursery: trio.Nursery, sdk: Clients, tmp_path: Path
) -> None:
    fake = await _fake(nursery)
    toml = usage_toml(fake, str(tmp_path / "u.db"))
    base, _, scope = await start(nursery, toml)
    await ask(sdk, "openai", base, "priced", False)
    await ask(sdk, "anthropic", base, "priced", True)
    before = (await get(base, "/v2/usage/stats")).json()
    scope.cancel()  # louter stops: its writer thread writes what is queued
    await trio.sleep(0.05)
    base, _, _ = await start(nursery, toml)
    after = (await get(base, "/v2/usage/stats")).json()
    assert after == before
    assert after["totals"]["requests"] == 2
    assert len((await get(base, "/v2/audit/logs")).json()["data"]) == 2


async def test_without_usage_configured_the_endpoints_are_404(nursery: trio.Nursery) -> None:
    base, ctx, _ = await start(nursery, '[backends.up]\nprotocol = "mock"\n')
    others = [s for s in ctx.pipeline.stages if not isinstance(s, SessionStage)]  # on by default
    assert ctx.accounting is None and not others  # nothing of usage on the hot path
    found = await get(base, "/v2/usage/stats")
    assert found.status_code == 404
    assert "[usage]" in found.json()["error"]["message"]
