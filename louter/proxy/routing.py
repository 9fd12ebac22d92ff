"""Routing v1: which backend serves a client's model name (design §4).

1. A backend whose `model_mapping` has the name (config order) serves it, under the
   mapped name.
2. A backend's own name routes to that backend, the model name passed through.
3. Otherwise the default backend (`--backend`) serves it, the name passed through.
"""

from __future__ import annotations

from dataclasses import dataclass

from louter.config import Backend, Config


@dataclass(frozen=True, slots=True)
class Route:
    backend: Backend
    model: str  # the name the backend knows the model by


class Router:
    def __init__(self, config: Config, default: str) -> None:
        self.default = config.backend(default)
        self._by_model: dict[str, Backend] = {}
        for backend in sorted(config.backends, key=lambda b: b.priority):
            for client_model in backend.model_mapping:
                self._by_model.setdefault(client_model, backend)
        self._by_name = {backend.name: backend for backend in config.backends}

    def route(self, model: str) -> Route:
        backend = self._by_model.get(model)
        if backend is not None:
            return Route(backend, backend.model_mapping[model])
        return Route(self._by_name.get(model, self.default), model)

    def client_models(self) -> list[tuple[str, str]]:
        """(client model name, backend name) for every mapped name, then backend names."""
        mapped = [(model, backend.name) for model, backend in self._by_model.items()]
        names = [(name, name) for name in self._by_name if name not in self._by_model]
        return mapped + names
