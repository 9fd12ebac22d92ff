"""What `diagnostic` probes: every front door × every backend/model louter serves.

Which backends: the default backend and every backend with a `model_mapping` (the
built-in presets a config leaves alone are not probed: they have no mapping and are not
the default); `only` narrows that to one backend. Which models: a backend's client
model names (the keys of its mapping), or its own name when it has none (a model named
like a backend is routed to it). The same rule reads a `Config` (louter started here) or
the `/health` answer of a louter already running.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from louter.config import Config
from louter.convert.dialect import DIALECTS
from louter.errors import ConfigError
from louter.probes.run import Target

# every front door louter has, by dialect, with its title in reports
DOORS: Mapping[str, str] = {name: d.title for name, d in DIALECTS.items()}


@dataclass(frozen=True, slots=True)
class Served:
    """One backend louter serves, with the client model names that reach it."""

    backend: str
    protocol: str
    models: tuple[str, ...]


def _select(served: list[Served], only: str) -> list[Served]:
    chosen = [s for s in served if s.backend == only]
    if not chosen:
        raise ConfigError(
            f"unknown backend {only!r}; known backends: {', '.join(s.backend for s in served)}"
        )
    return chosen


def served_by_config(config: Config, default: str, only: str | None = None) -> list[Served]:
    """The backends of `config` to probe (see the module docstring).

    Raises:
        ConfigError: `only` names no backend.
    """
    every = [
        Served(b.name, b.protocol, tuple(b.model_mapping) or (b.name,)) for b in config.backends
    ]
    if only is not None:
        return _select(every, only)
    mapped = {b.name for b in config.backends if b.model_mapping}
    return [s for s in every if s.backend == default or s.backend in mapped]


def served_by_health(health: Mapping[str, Any], only: str | None = None) -> list[Served]:
    """The same from a running louter's `GET /health` answer.

    Raises:
        ConfigError: the answer is not louter's, or `only` names no backend.
    """
    backends = health.get("backends")
    default = health.get("default")
    if not isinstance(backends, dict) or not isinstance(default, str):
        raise ConfigError("the /health answer lists no backends: is this louter?")
    every = [
        Served(name, str(info.get("protocol")), tuple(info.get("models") or ()) or (name,))
        for name, info in backends.items()
        if isinstance(info, dict)
    ]
    if only is not None:
        return _select(every, only)
    return [s for s in every if s.backend == default or backends[s.backend].get("models")]


def plan(url: str, doors: Iterable[str], served: Sequence[Served]) -> list[Target]:
    """One target per front door, backend and model, in that order."""
    return [
        Target(door, url, model, mock=True if s.protocol == "mock" else None, backend=s.backend)
        for door in doors
        for s in served
        for model in s.models
    ]
