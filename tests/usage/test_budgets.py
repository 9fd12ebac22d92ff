"""Budgets per key (`budget_usd`, `budget_period`), admin-only usage endpoints, the audit
log's privacy, and usage shared through Redis by two louters."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import anthropic
import google.genai.errors
import openai
import pytest
import trio

from tests.fakes import FakeUpstream
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - a fixture
from tests.sdk import Clients
from tests.usage.helpers import COST, answer, ask, get, start, usage_toml

ADMIN, USER = "lk-admin-secret-0001", "lk-user-secret-0002"


def _keys(budget: float, period: str = "day") -> str:
    def sha(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    return (
        f'[keys.boss]\nkey_sha256 = "{sha(ADMIN)}"\nadmin = true\n'
        f'[keys.team]\nkey_sha256 = "{sha(USER)}"\n'
        f'budget_usd = {budget}\nbudget_period = "{period}"\n'
    )


async def _fake(nursery: trio.Nursery) -> FakeUpstream:
    fake = FakeUpstream(answer)
    await nursery.start(fake.serve)
    return fake


REFUSED = {
    "openai": openai.RateLimitError,
    "anthropic": anthropic.RateLimitError,
    "gemini": google.genai.errors.ClientError,
    "responses": openai.RateLimitError,
}


@pytest.mark.parametrize("door", list(REFUSED))
async def test_a_key_is_refused_at_the_request_after_its_budget_is_spent(
    nursery: trio.Nursery, sdk: Clients, tmp_path: Path, door: str
) -> None:
    fake = await _fake(nursery)
    budget = 2.5 * COST  # three requests reach it: the fourth is refused
    toml = usage_toml(fake, str(tmp_path / "u.db")) + _keys(budget)
    base, _, _ = await start(nursery, toml)
    for _ in range(3):
        await ask(sdk, door, base, "priced", False, key=USER)
    with pytest.raises(REFUSED[door]) as refused:
        await ask(sdk, door, base, "priced", False, key=USER)
    text = str(refused.value)
    assert "budget exceeded for key 'team'" in text
    assert "day budget (budget_period = day)" in text
    assert re.search(r"resets at \d{4}-\d\d-\d\dT00:00:00Z", text)
    assert len(fake.requests) == 3  # the refused request never reached the upstream
    me = (await get(base, "/v2/usage/me", USER)).json()
    assert me["key"] == "team"
    assert me["totals"]["requests"] == 4 and me["totals"]["errors"] == 1
    assert me["budget"]["spent_usd"] == pytest.approx(3 * COST)
    assert me["budget"]["period"] == "day"
    await ask(sdk, door, base, "priced", False, key=ADMIN)  # another key: not affected


async def test_openai_over_budget_is_insufficient_quota(
    nursery: trio.Nursery, sdk: Clients, tmp_path: Path
) -> None:
    fake = await _fake(nursery)
    toml = usage_toml(fake, str(tmp_path / "u.db")) + _keys(0, "total")
    base, _, _ = await start(nursery, toml)
    with pytest.raises(openai.RateLimitError) as refused:
        await ask(sdk, "openai", base, "priced", False, key=USER)
    body = refused.value.body
    assert isinstance(body, dict)
    assert body["code"] == "insufficient_quota" and body["type"] == "insufficient_quota"
    assert "never resets (budget_period = total)" in body["message"]
    assert "retry-after" not in refused.value.response.headers  # waiting will not help
    assert 'budget_refused_total{key="team"} 1.0' in (await get(base, "/metrics")).text


async def test_admin_endpoints_need_an_admin_key_and_audit_holds_no_secrets(
    nursery: trio.Nursery, sdk: Clients, tmp_path: Path
) -> None:
    fake = await _fake(nursery)
    toml = usage_toml(fake, str(tmp_path / "u.db")) + _keys(100.0)
    base, _, _ = await start(nursery, toml)
    client = sdk.openai(base).with_options(api_key=USER)
    secret = "the-password-is-swordfish"

    def chat() -> None:
        client.chat.completions.create(
            model="priced",
            messages=[{"role": "user", "content": secret}],
            extra_headers={"x-session-id": "s-42"},
        )

    await trio.to_thread.run_sync(chat)
    for path in ("/v2/usage/stats", "/v2/usage/recent", "/v2/audit/logs"):
        assert (await get(base, path, USER)).status_code == 403
        assert (await get(base, path)).status_code == 401
    audit = await get(base, "/v2/audit/logs?key=team&status=200&limit=10", ADMIN)
    assert audit.status_code == 200
    (entry,) = audit.json()["data"]
    assert entry["key"] == "team" and entry["session"] == "s-42" and entry["status"] == 200
    assert entry["input_tokens"] == 11 and entry["cost_usd"] == pytest.approx(COST)
    text = audit.text
    for forbidden in (secret, USER, ADMIN, hashlib.sha256(USER.encode()).hexdigest()):
        assert forbidden not in text
    assert (await get(base, "/v2/audit/logs?status=500", ADMIN)).json()["data"] == []
    assert (await get(base, "/v2/audit/logs?limit=0", ADMIN)).status_code == 400
    raw = Path(tmp_path / "u.db").read_bytes()
    assert secret.encode() not in raw and USER.encode() not in raw


async def test_two_louters_sharing_redis_report_identical_totals(
    nursery: trio.Nursery,
    sdk: Clients,
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811 - the fixture
) -> None:
    fake = await _fake(nursery)
    store = f'[store]\nurl = "{redis_server.url}"\nop_timeout_ms = 1000\n'
    first, _, _ = await start(nursery, usage_toml(fake, str(tmp_path / "a.db")) + store)
    second, _, _ = await start(nursery, usage_toml(fake, str(tmp_path / "b.db")) + store)
    await ask(sdk, "openai", first, "priced", False)
    await ask(sdk, "openai", second, "priced", True)
    await ask(sdk, "gemini", second, "other", False)
    one = (await get(first, "/v2/usage/stats")).json()
    two = (await get(second, "/v2/usage/stats")).json()
    assert one == two
    assert one["totals"]["requests"] == 3
    assert one["totals"]["input_tokens"] == 33
    assert one["totals"]["unpriced_requests"] == 1
    assert {r["model"]: r["requests"] for r in one["by_model"]} == {"priced": 2, "other": 1}


async def test_a_budget_is_shared_by_two_louters_through_redis(
    nursery: trio.Nursery,
    sdk: Clients,
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811 - the fixture
) -> None:
    fake = await _fake(nursery)
    store = f'[store]\nurl = "{redis_server.url}"\nop_timeout_ms = 1000\n'
    keys = _keys(1.5 * COST)
    first, _, _ = await start(nursery, usage_toml(fake, str(tmp_path / "a.db")) + store + keys)
    second, _, _ = await start(nursery, usage_toml(fake, str(tmp_path / "b.db")) + store + keys)
    await ask(sdk, "openai", first, "priced", False, key=USER)
    await ask(sdk, "openai", second, "priced", False, key=USER)
    with pytest.raises(openai.RateLimitError):
        await ask(sdk, "openai", first, "priced", False, key=USER)
    with pytest.raises(openai.RateLimitError):
        await ask(sdk, "openai", second, "priced", False, key=USER)
