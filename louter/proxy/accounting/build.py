"""Assembling usage accounting from the config (`build_context` calls it once); its
modules are imported only when `[usage]` is configured."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from louter.config import Config
    from louter.proxy.accounting.record import Pricing
    from louter.proxy.accounting.stage import Accounting
    from louter.proxy.metrics import Metrics
    from louter.proxy.pipeline import Stage
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
    from louter.proxy.accounting.record import no_prices  # noqa: PLC0415 - only when configured
    from louter.proxy.accounting.stage import Accounting  # noqa: PLC0415

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
