"""The pipeline's stages as configured: `build_stages(config)` is called once by
`build_context`. Each configured feature adds its stage here, in the order of design §12
(auth, limits, sessions and commands, processors, cache); a feature that is not
configured adds nothing (no per-request cost)."""

from __future__ import annotations

from collections.abc import Sequence

from louter.config import Config
from louter.proxy.pipeline import Pipeline, Stage


def build_stages(config: Config) -> list[Stage]:
    """The stages `config` enables, in order (none yet: later features add theirs)."""
    return []


def build_pipeline(config: Config, extra: Sequence[Stage] = ()) -> Pipeline:
    """The configured stages, then `extra` (stages supplied by an embedding program or a
    test)."""
    return Pipeline((*build_stages(config), *extra))
