"""Assembling usage accounting from the config (`build_context` calls it once)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from louter.proxy.accounting.record import Pricing, no_prices
from louter.proxy.accounting.stage import Accounting
from louter.proxy.pipeline import Stage

if TYPE_CHECKING:
    from louter.config import Config
    from louter.proxy.metrics import Metrics
    from louter.proxy.routing import Router
    from louter.proxy.store import Store


def build_accounting(
    config: Config,
    store: Store,
    router: Router,
    metrics: Metrics | None,
    clock: Callable[[], float],
    pricing: Pricing | None = None,
) -> Accounting | None:
    """The accounting stage when `[usage]` is configured or a key has a budget, else
    None (no stage, no cost). Budgets count only with client auth on (a key to charge)."""
    if config.usage is None:
        return None
    keys = {key.name: key for key in config.auth.keys} if config.auth.on else {}
    accounting = Accounting(
        config.usage,
        keys,
        store,
        pricing or no_prices,
        lambda model: router.owner(model).name,
        clock=clock,
    )
    if metrics is not None:
        metrics.usage = accounting.metrics
    return accounting


def accounting_stages(accounting: Accounting | None) -> Sequence[Stage]:
    return () if accounting is None else (accounting,)
