"""One exchange's usage record (the audit row), its cost, and the price lookup's shape.

Costs are integers in nano-dollars (1e-9 USD): a price of $0.15 per million tokens is
150 nano-dollars per thousand tokens, summed without float drift. A record whose model
has no known price has `cost_nano = None` (shown as `cost_usd: null`), never 0 — unless
it spent no tokens at all (a refused request costs nothing whatever the price)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from louter.catalog import Price
from louter.logs.usage import NANO, usd
from louter.proxy.journal import format_timestamp

Pricing = Callable[[str, str], "Price | None"]  # (client model, backend name): `Catalog.price`


def no_prices(model: str, backend: str) -> Price | None:
    """The pricing without a catalog: every price unknown."""
    return None


def cost_nano(tokens: tuple[int, int], price: Price | None) -> int | None:
    """The cost of `tokens` (input, output) at `price`, in nano-dollars."""
    if tokens == (0, 0):
        return 0
    if price is None:
        return None
    return round(tokens[0] * price.input_per_mtok * 1000 + tokens[1] * price.output_per_mtok * 1000)


def budget_nano(usd_amount: float) -> int:
    return round(usd_amount * NANO)


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """An exchange's metadata: never a body, never key material (the key's config name)."""

    ts: float  # wall-clock seconds when the request arrived
    request_id: str
    key: str | None
    session: str | None
    model: str
    backend: str | None
    dialect: str
    endpoint: str
    status: int
    latency_ms: float
    ttft_ms: float | None
    stream: bool
    input_tokens: int
    output_tokens: int
    estimated: bool  # the backend reported no usage: louter's estimate
    cost_nano: int | None

    @property
    def cost_usd(self) -> float | None:
        return None if self.cost_nano is None else usd(self.cost_nano)

    def view(self) -> dict[str, Any]:
        """The record as the API and the JSONL log show it."""
        return {
            "time": format_timestamp(self.ts),
            "request_id": self.request_id,
            "key": self.key,
            "session": self.session,
            "model": self.model,
            "backend": self.backend,
            "format": self.dialect,
            "endpoint": self.endpoint,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "stream": self.stream,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "estimated": self.estimated,
            "cost_usd": self.cost_usd,
        }

    def row(self) -> tuple[Any, ...]:
        return (
            self.ts,
            self.request_id,
            self.key,
            self.session,
            self.model,
            self.backend,
            self.dialect,
            self.endpoint,
            self.status,
            self.latency_ms,
            self.ttft_ms,
            int(self.stream),
            self.input_tokens,
            self.output_tokens,
            int(self.estimated),
            self.cost_nano,
        )

    @classmethod
    def of_row(cls, row: tuple[Any, ...]) -> UsageRecord:
        values = list(row)
        values[11] = bool(values[11])
        values[14] = bool(values[14])
        return cls(*values)
