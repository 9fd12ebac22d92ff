"""The usage and audit endpoints (answered in OpenAI's envelope on errors):

    GET /v2/usage/stats?key=&model=&backend=&since=&until=&by=   totals and breakdowns
    GET /v2/usage/recent?limit=                                  newest usage records
    GET /v2/usage/me?since=&until=                               the calling key's own
    GET /v2/audit/logs?since=&key=&status=&limit=                exchange metadata

Stats come from the day counters (the store: shared with Redis), so `since`/`until`
select whole UTC days (`YYYY-MM-DD`, or a date-time whose day is taken); records come
from the usage file. With client auth on, all but `/v2/usage/me` need an `admin` key
(403 otherwise); `/v2/usage/me` needs any key. Without accounting configured: 404.
Nothing here holds a body or key material: records name a key by its config name.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import TYPE_CHECKING, Any

from louter.errors import LouterError
from louter.logs.usage import DIMENSIONS, NONE, UsageTotals, usd
from louter.proxy.accounting import queries
from louter.proxy.accounting.budget import current
from louter.proxy.accounting.counters import days_between, spend_key
from louter.proxy.accounting.periods import DAY, day_of, period_reset
from louter.proxy.accounting.stage import Accounting
from louter.proxy.journal import format_timestamp

if TYPE_CHECKING:
    from louter.http.message import HttpRequest, Responder
    from louter.proxy.context import ProxyContext
    from louter.proxy.exchange import Exchange

MAX_LIMIT = 1000
DEFAULT_LIMIT = 50
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?Z?")


def _bad(message: str) -> LouterError:
    return LouterError(message, status_hint=400, code="invalid_request")


def _accounting(ctx: ProxyContext) -> Accounting:
    found = ctx.accounting
    if found is None:
        raise LouterError(
            "usage accounting is not configured (add a [usage] table)", status_hint=404
        )
    return found


def _admin(ctx: ProxyContext, exchange: Exchange) -> None:
    if ctx.gate is not None and (exchange.key is None or not exchange.key.admin):
        raise LouterError(
            "this endpoint needs an admin key ([keys.NAME] admin = true)",
            status_hint=403,
            code="admin_required",
        )


def parse_time(value: str, name: str) -> float:
    """Epoch seconds of `YYYY-MM-DD[THH:MM[:SS]][Z]` (UTC) or of a number of seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    match = _STAMP.fullmatch(value)
    if match is None:
        raise _bad(f"{name} must be YYYY-MM-DD, an ISO date-time (UTC) or epoch seconds")
    day, hour, minute, second = match.groups()
    try:
        parsed = time.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise _bad(f"{name}: {day} is not a date") from None
    extra = int(hour or 0) * 3600 + int(minute or 0) * 60 + int(second or 0)
    return calendar.timegm(parsed) + float(extra)


def _limit(query: dict[str, str]) -> int:
    raw = query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _bad(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _by(query: dict[str, str]) -> tuple[str, ...]:
    raw = query.get("by")
    if not raw:
        return DIMENSIONS
    chosen = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [d for d in chosen if d not in DIMENSIONS]
    if unknown:
        raise _bad(f"by: unknown dimension {unknown[0]!r} (known: {', '.join(DIMENSIONS)})")
    return chosen


async def stats_of(
    accounting: Accounting, query: dict[str, str], key: str | None = None
) -> dict[str, Any]:
    """Totals and breakdowns of the day counters between `since` and `until`, filtered."""
    await accounting.ready()
    now = accounting.clock()
    keep = accounting.config.retention_days or 366
    since = (
        day_of(parse_time(query["since"], "since"))
        if query.get("since")
        else day_of(now - keep * DAY)
    )
    until = day_of(parse_time(query["until"], "until")) if query.get("until") else day_of(now)
    days = days_between(since, until, keep + 1)
    wanted = {"key": key if key is not None else query.get("key"),
              "model": query.get("model"), "backend": query.get("backend")}  # fmt: skip
    totals = UsageTotals(_by(query))
    for group, counts in await accounting.counters.read(days):
        _, k, model, backend = group
        found = {"key": k, "model": model, "backend": backend}
        if all(v is None or found[name] == v for name, v in wanted.items()):
            totals.add(group, counts)
    return {"since": since, "until": until, **totals.result()}


async def usage_stats(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    accounting = _accounting(ctx)
    _admin(ctx, exchange)
    await responder.send_json(200, await stats_of(accounting, http.query))


async def usage_me(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """The calling key's own usage (auth off: the traffic without a key), and its budget."""
    accounting = _accounting(ctx)
    key = exchange.key
    name = NONE if key is None else key.name
    answer: dict[str, Any] = {"key": None if key is None else key.name}
    answer.update(await stats_of(accounting, http.query, name))
    if key is not None and key.budget_usd is not None:
        now = accounting.clock()
        period_id, ttl = current(key, now)
        counter = spend_key(key.name, key.budget_period, period_id)
        spent = await accounting.store.incr(counter, 0, ttl)
        reset = period_reset(key.budget_period, now)
        answer["budget"] = {
            "budget_usd": key.budget_usd,
            "period": key.budget_period,
            "spent_usd": usd(spent),
            "resets_at": None if reset is None else format_timestamp(reset),
        }
    await responder.send_json(200, answer)


async def usage_recent(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    accounting = _accounting(ctx)
    _admin(ctx, exchange)
    records = await accounting.ledger.query(queries.audit, _limit(http.query))
    data = [record.view() for record in records]
    await responder.send_json(200, {"data": data, "count": len(data)})


async def audit_logs(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    accounting = _accounting(ctx)
    _admin(ctx, exchange)
    query = http.query
    since = parse_time(query["since"], "since") if query.get("since") else None
    status = query.get("status")
    if status is not None and not (status.isdigit() and 100 <= int(status) <= 599):
        raise _bad("status must be an HTTP status (100-599)")
    key = query.get("key")
    records = await accounting.ledger.query(
        queries.audit,
        _limit(query),
        since,
        "" if key == NONE else key,
        None if status is None else int(status),
    )
    data = [record.view() for record in records]
    await responder.send_json(200, {"data": data, "count": len(data)})
