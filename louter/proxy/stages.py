"""The pipeline's stages as configured, assembled once by `build_context`. Each configured
feature adds its stage here, in the order of design §12 (auth, limits, sessions and
commands, processors, cache); a feature that is not configured adds nothing: no
per-request cost, and its code is not even imported (each builder imports its feature's
module only when the config asks for it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from louter.config import Config, LimitsConfig, Rate
from louter.proxy.auth import ModelAllowList, needs_allow_list
from louter.proxy.metrics import Metrics
from louter.proxy.pipeline import Pipeline, Stage

if TYPE_CHECKING:
    from louter.processor_config import Processor
    from louter.proxy.limits import BackendLimits
    from louter.proxy.routing import Router
    from louter.proxy.store import Store


def build_stages(
    config: Config, metrics: Metrics | None = None, first: Sequence[Stage] = ()
) -> list[Stage]:
    """The stages `config` enables, in order. Auth's key check itself runs before the
    handler (`ProxyContext.gate`); its model allow-list is a stage, present only when a
    key restricts its models. `first` (the session stage) decides the model the
    allow-list then checks."""
    stages: list[Stage] = list(first)
    if config.auth.on and needs_allow_list(config.auth):
        stages.append(ModelAllowList(metrics))
    return stages


def build_pipeline(
    config: Config,
    extra: Sequence[Stage] = (),
    metrics: Metrics | None = None,
    first: Sequence[Stage] = (),
) -> Pipeline:
    """`first`, the configured stages, then `extra` (stages supplied by an embedding
    program or a test)."""
    return Pipeline((*build_stages(config, metrics, first), *extra))


def limit_stages(
    config: LimitsConfig | None,
    store: Store,
    metrics: Metrics | None,
    keys: Mapping[str, Rate] | None = None,
) -> tuple[Sequence[Stage], BackendLimits | None]:
    """The rate limits' stage and backend limiter (`proxy/limits.py`), when `[limits]` or
    a client key's own limits ask for them."""
    if config is None and not keys:
        return (), None
    from louter.proxy.limits import build_limits  # noqa: PLC0415 - only when configured

    return build_limits(config, store, metrics, keys)


def processor_stages(processors: Sequence[Processor], router: Router) -> list[Stage]:
    """The request processors' stage (`proxy/processors.py`), when `[[processors]]` lists any."""
    if not processors:
        return []
    from louter.proxy.processors import build_processors  # noqa: PLC0415 - only when configured

    return build_processors(processors, router)


def loop_guards(
    config: Config, metrics: Metrics | None, route: Callable[[str], str]
) -> list[Stage]:
    """The loop guards (`proxy/loop_guard.py`), when `[loop_detection]` or
    `[tool_call_loop]` is configured."""
    if config.loop_detection is None and config.tool_call_loop is None:
        return []
    from louter.proxy.loop_guard import build_loop_guards  # noqa: PLC0415 - only when configured

    return build_loop_guards(config, metrics, route)
