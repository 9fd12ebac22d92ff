"""Routing: the ordered candidate backends for a client's model name (design §4).

1. The backends whose `model_mapping` has the name serve it, under their mapped name.
   They are grouped by `priority` (lower first). Within a group the first candidate is
   chosen by smooth weighted round-robin on `weight` (nginx's algorithm: deterministic,
   and any window of sum-of-weights picks holds each backend exactly its share); the
   others follow as fallbacks.
2. A backend's own name routes to that backend, the model name passed through.
3. `backend:model`, when `backend` names a configured backend (a built-in preset too),
   goes to that backend under its name for `model` (its mapping's, else as written).
   Model names may hold `:` (`qwen3:8b`): a prefix that names no backend is no address.
4. Otherwise the default pool serves it, the name passed through: the default backend
   (`--backend`) and, when the default has no `model_mapping` itself, every backend of
   the config file without one. The pool is grouped and shared like a mapped name (the
   default backend first in its group), so two unmapped backends fail over and spread
   by weight. A default with a mapping serves unmapped names alone.

Runtime routes (`!/route-append` ...: `sessions/routes.py`) come before all of this: a
model with one is served by its list alone, while it exists.

Backends whose breaker is open are ordered after the usable ones of their group and take
no part in the round-robin, so the healthy ones keep their relative shares. The attempt
loop (`attempts.py`) walks the list; the Router only orders it. All state (round-robin
counters per model group, breakers per backend) lives in the Router object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Protocol

from louter.config import Backend, Config
from louter.proxy.breaker import Breaker


@dataclass(frozen=True, slots=True)
class Route:
    backend: Backend
    model: str  # the name the backend knows the model by


class RouteTable(Protocol):
    """Routes set at run time: client model -> its routes, in failover order."""

    @property
    def table(self) -> Mapping[str, tuple[Route, ...]]: ...


class _Group:
    """The backends of one priority serving one model name."""

    __slots__ = ("routes", "weights", "current")

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes
        self.weights = [route.backend.weight for route in routes]
        self.current = [0.0] * len(routes)

    def order(self, breakers: Mapping[str, Breaker]) -> list[Route]:
        """This group's routes, the round-robin's pick first (one pick per call)."""
        routes = self.routes
        usable = [breakers[route.backend.name].usable() for route in routes]
        best = self._pick(usable)
        if best < 0:
            return list(routes)
        rest = [route for i, route in enumerate(routes) if i != best and usable[i]]
        rest.extend(route for i, route in enumerate(routes) if not usable[i])
        return [routes[best], *rest]

    def _pick(self, usable: list[bool]) -> int:
        """Smooth weighted round-robin over the usable members; -1 when none is."""
        current, weights = self.current, self.weights
        best, total = -1, 0.0
        for i, ok in enumerate(usable):
            if ok:
                current[i] += weights[i]
                total += weights[i]
                if best < 0 or current[i] > current[best]:
                    best = i
        if best >= 0:
            current[best] -= total
        return best


class Router:
    def __init__(
        self, config: Config, default: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.default = config.backend(default)
        self.clock = clock
        performance = config.performance
        self.breakers = {
            backend.name: Breaker(
                performance.failure_threshold, performance.cooldown_seconds, clock
            )
            for backend in config.backends
        }
        self._by_name = {backend.name: backend for backend in config.backends}
        self._groups = _groups(config.backends)
        self._single = {
            model: groups[0].routes
            for model, groups in self._groups.items()
            if len(groups) == 1 and len(groups[0].routes) == 1
        }
        pool = _pool(self.default, config.backends)
        self._pool = _by_priority(pool) if len(pool) > 1 else None
        self.runtime: RouteTable | None = None  # routes set at run time (sessions/routes.py)

    def candidates(self, model: str) -> Sequence[Route]:
        """The backends to try for `model`, in order."""
        if self.runtime is not None and self.runtime.table:
            found = self.runtime.table.get(model)
            if found is not None:
                return found
        single = self._single.get(model)
        if single is not None:
            return single
        groups = self._groups.get(model)
        if groups is not None:
            return [route for group in groups for route in group.order(self.breakers)]
        named = self._by_name.get(model)
        if named is None and ":" in model:
            addressed = self.address(model)
            if addressed is not None:
                return (addressed,)
        if named is not None or self._pool is None:
            return (Route(named or self.default, model),)
        breakers = self.breakers
        return [
            Route(route.backend, model) for group in self._pool for route in group.order(breakers)
        ]

    def address(self, model: str) -> Route | None:
        """`backend:model` as a Route when `backend` is a configured backend, else None."""
        name, _, rest = model.partition(":")
        backend = self._by_name.get(name)
        if backend is None or not rest:
            return None
        return Route(backend, backend.backend_model(rest))

    def backend_names(self) -> list[str]:
        return list(self._by_name)

    def has_backend(self, name: str) -> bool:
        """Whether `name` is a configured backend (a built-in preset too)."""
        return name in self._by_name

    def owner(self, model: str) -> Backend:
        """The preferred backend for `model` (first by priority, then config order),
        without advancing any round-robin: for model listings."""
        groups = self._groups.get(model)
        if groups is None:
            addressed = self.address(model) if model not in self._by_name else None
            return addressed.backend if addressed else self._by_name.get(model, self.default)
        return groups[0].routes[0].backend

    def client_models(self) -> list[tuple[str, str]]:
        """(client model name, backend name) for every mapped name, then backend names."""
        mapped = [
            (model, groups[0].routes[0].backend.name) for model, groups in self._groups.items()
        ]
        names = [(name, name) for name in self._by_name if name not in self._groups]
        return mapped + names

    def passthrough(self) -> list[Backend]:
        """The backends a name no mapping names goes to (the default pool), in order."""
        if self._pool is None:
            return [self.default]
        return [route.backend for group in self._pool for route in group.routes]

    def names(self, model: str) -> bool:
        """Whether `model` is a mapped name or a backend's own name (routed by config)."""
        return model in self._groups or model in self._by_name

    def routed(self) -> set[str]:
        """The backends some request can reach without naming them: the default pool and
        every backend with a model mapping."""
        names = {self.default.name}
        for group in self._pool or ():
            names.update(route.backend.name for route in group.routes)
        for groups in self._groups.values():
            names.update(route.backend.name for group in groups for route in group.routes)
        return names


def _groups(backends: Sequence[Backend]) -> dict[str, list[_Group]]:
    """Client model name -> its priority groups (each in config order), lowest first."""
    routes: dict[str, list[Route]] = {}
    for backend in backends:
        for client_model, backend_model in backend.model_mapping.items():
            routes.setdefault(client_model, []).append(Route(backend, backend_model))
    return {model: _by_priority(found) for model, found in routes.items()}


def _by_priority(routes: list[Route]) -> list[_Group]:
    """`routes` grouped by priority, lowest first, each group in the given order."""
    ordered = sorted(routes, key=_priority)
    return [_Group(tuple(group)) for _, group in groupby(ordered, key=_priority)]


def _priority(route: Route) -> int:
    return route.backend.priority


def _pool(default: Backend, backends: Sequence[Backend]) -> list[Route]:
    """The default pool's members (model names filled in per request), default first."""
    members = [default]
    if not default.model_mapping:
        members += [
            b for b in backends if b is not default and not b.model_mapping and not b.implicit
        ]
    return [Route(backend, "") for backend in members]
