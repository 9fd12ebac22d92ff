"""`log-parser usage` over louter's JSONL log equals `/v2/usage/stats` for the same
traffic (whole and streamed answers, several dialects, priced and unpriced models, a
refusal); the reducer's own edge cases."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
import trio
from typer.testing import CliRunner

from louter.cli.log_parser import app
from louter.logs.usage import UsageTotals, entry_group
from tests.fakes import FakeUpstream
from tests.sdk import Clients
from tests.usage.helpers import answer, ask, get, start, usage_toml

KEY = "lk-log-parser-0003"


async def test_log_parser_usage_equals_the_stats_endpoint(
    nursery: trio.Nursery, sdk: Clients, tmp_path: Path
) -> None:
    fake = FakeUpstream(answer)
    await nursery.start(fake.serve)
    log = tmp_path / "louter.jsonl"
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    keys = f'[keys.ops]\nkey_sha256 = "{digest}"\nadmin = true\nbudget_usd = 0.00005\n'
    toml = usage_toml(fake, str(tmp_path / "u.db")) + keys
    base, _, scope = await start(nursery, toml, log_file=log)
    for door, model, stream in (
        ("openai", "priced", False),
        ("openai", "other", True),
        ("gemini", "other", False),
        ("anthropic", "priced", True),
        ("completions", "priced", True),  # over budget by now: refused, counted as an error
    ):
        try:
            await ask(sdk, door, base, model, stream, key=KEY)
        except Exception:  # noqa: BLE001 - the refusal is part of the traffic
            assert door == "completions"
    stats = (await get(base, "/v2/usage/stats", KEY)).json()
    scope.cancel()
    await trio.sleep(0.05)
    result = CliRunner().invoke(app, ["-f", str(log), "--json", "usage"])
    assert result.exit_code == 0, result.output
    offline = orjson.loads(result.stdout)
    del stats["since"], stats["until"]
    assert offline == stats
    assert stats["totals"]["requests"] == 5 and stats["totals"]["errors"] == 1
    by = CliRunner().invoke(app, ["-f", str(log), "--json", "usage", "--by", "model"])
    assert set(orjson.loads(by.stdout)) == {"totals", "by_model"}
    table = CliRunner().invoke(app, ["-f", str(log), "--pretty", "usage", "--by", "key"])
    assert "ops" in table.stdout and "unknown" not in table.stdout.split("by key")[0]
    bad = CliRunner().invoke(app, ["-f", str(log), "usage", "--by", "colour"])
    assert bad.exit_code == 2


def test_an_unpriced_group_shows_a_null_cost_never_zero() -> None:
    totals = UsageTotals(("model",))
    entry = {"direction": "usage", "time": "2026-01-02T03:04:05.000Z", "model": "m",
             "status": 200, "input_tokens": 5, "output_tokens": 1, "cost_usd": None}  # fmt: skip
    found = entry_group(entry)
    assert found is not None
    totals.add(*found)
    result = totals.result()
    assert result["totals"]["cost_usd"] is None
    assert result["by_model"] == [
        {
            "model": "m",
            "requests": 1,
            "errors": 0,
            "input_tokens": 5,
            "output_tokens": 1,
            "total_tokens": 6,
            "cost_usd": None,
            "unpriced_requests": 1,
        }  # fmt: skip
    ]
    assert entry_group({**entry, "direction": "client_response"}) is None
    with pytest.raises(ValueError, match="unknown dimension"):
        UsageTotals(("colour",))
