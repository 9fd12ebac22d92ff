"""Usage accounting end to end: every client dialect, whole and streamed, against a fake
OpenAI upstream that reports known usage; the stats equal what it reported, priced or
not; the usage file survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.fakes import FakeUpstream
from tests.sdk import Clients
from tests.usage.helpers import ASK, COMPLETION, COST, PROMPT, answer, ask, get, start, usage_toml


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
