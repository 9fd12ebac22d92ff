"""Budgets (`budget_usd`, `budget_period` in `[keys.NAME]`): a key's spend in its
current period, checked before each request and charged after it.

The check is one atomic store call (`Store.spend`, a Lua script with Redis): refused
when the period's spend has reached the budget; otherwise the request's estimated cost
(its input estimate and `max_tokens` at the serving backend's price) is added at once,
so concurrent requests see each other's share before their answers are in. After the
exchange the hold is settled to the real cost (`Store.incr` of the difference). Spend on
a model without a known price cannot be counted (it shows as unpriced usage)."""

from __future__ import annotations

from typing import Any

from louter.access import ClientKey
from louter.logs.usage import usd
from louter.proxy.accounting.periods import period_id, period_reset
from louter.proxy.journal import format_timestamp
from louter.proxy.rate_limited import RateLimited

QUOTA = "insufficient_quota"


class BudgetExceeded(RateLimited):
    """429 in the client's envelope: OpenAI's `insufficient_quota` type and code (and the
    Responses and Completions doors'), Anthropic's rate-limit error, Gemini's
    RESOURCE_EXHAUSTED with the wait until the reset; `retry-after` when it resets."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message, retry_after if retry_after is not None else 0.0)
        if retry_after is None:  # a `total` budget: waiting does not help
            self.headers = ()
        self.code = QUOTA

    def envelope(self, dialect: str, body: dict[str, Any]) -> dict[str, Any]:
        error = body.get("error")
        if dialect in ("openai", "responses", "completions") and isinstance(error, dict):
            return {**body, "error": {**error, "type": QUOTA, "code": QUOTA}}
        return super().envelope(dialect, body) if self.headers else body


def refusal(key: ClientKey, spent_nano: int, now: float) -> BudgetExceeded:
    """The message names the key's budget, its period and when it resets."""
    assert key.budget_usd is not None
    period = key.budget_period
    reset = period_reset(period, now)
    when = (
        "never resets (budget_period = total)"
        if reset is None
        else (f"resets at {format_timestamp(reset)[:-5]}Z")
    )
    message = (
        f"budget exceeded for key {key.name!r}: ${_money(usd(spent_nano))} spent of its"
        f" ${_money(key.budget_usd)} {period} budget (budget_period = {period}); {when}"
    )
    return BudgetExceeded(message, None if reset is None else max(1.0, reset - now))


def _money(amount: float) -> str:
    return f"{amount:.9f}".rstrip("0").rstrip(".")


def current(key: ClientKey, now: float) -> tuple[str, float | None]:
    """The id of `key`'s current period and the seconds its counter must live."""
    period = key.budget_period
    reset = period_reset(period, now)
    return period_id(period, now), None if reset is None else reset - now + 86_400.0
