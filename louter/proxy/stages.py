"""The pipeline's stages as configured: `build_stages(config)` is called once by
`build_context`. Each configured feature adds its stage here, in the order of design §12
(auth, limits, sessions and commands, processors, cache); a feature that is not
configured adds nothing (no per-request cost)."""

from __future__ import annotations

from collections.abc import Sequence

from louter.config import Config
from louter.proxy.auth import ModelAllowList, needs_allow_list
from louter.proxy.metrics import Metrics
from louter.proxy.pipeline import Pipeline, Stage


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
