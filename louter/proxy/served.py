"""Which models louter serves, from config and the backends' own lists: the listings
(`/v1/models`, `/v1beta/models`, `/api/models`), the model lookups, and
`[routing] unknown_models = "reject"`.

A name is served when config routes it (a `model_mapping` name or a backend's name), a
`[models."NAME"]` entry declares it, or a backend of the default pool (where unmapped
names go) lists it. A pool backend whose list was never read (discovery off, or its
list failed) leaves the answer open: `knows` says None. Lookups answer 404 only for a
name known not to be served; `reject` refuses every name not known to be served.
"""

from __future__ import annotations

from louter.catalog import Catalog, ModelInfo
from louter.config import Config
from louter.proxy.discovery import Discovery, Listing
from louter.proxy.routing import Router


class Served:
    def __init__(
        self, config: Config, router: Router, catalog: Catalog, discovery: Discovery | None
    ) -> None:
        self.config = config
        self.router = router
        self.catalog = catalog
        self.discovery = discovery

    def _listed_backends(self) -> list[str]:
        """The backends whose lists matter: the default pool, then the other configured
        (not implicit) ones (their lists describe what their mapped names are)."""
        pool = [b.name for b in self.router.passthrough()]
        rest = [b.name for b in self.config.backends if not b.implicit and b.name not in pool]
        return pool + rest

    async def _lists(self, names: list[str]) -> dict[str, Listing]:
        return {} if self.discovery is None else await self.discovery.lists(names)

    async def knows(self, model: str) -> bool | None:
        """True when `model` is served, False when known not to be, None when a pool
        backend's list is unknown."""
        if self.router.names(model) or model in self.config.models:
            return True
        pool = [b.name for b in self.router.passthrough()]
        lists = await self._lists(pool)
        verdicts = [lists[name].serves(model) if name in lists else None for name in pool]
        if True in verdicts:
            return True
        return None if None in verdicts else False

    async def client_models(self) -> list[tuple[str, str]]:
        """(model, backend) for the OpenAI/Gemini/Anthropic listings: mapped names, the
        names the pool backends list, then the backends' own names."""
        mapped = [(m, b) for m, b in self.router.client_models() if not self._is_backend(m)]
        seen = {m for m, _ in mapped}
        pool = [b.name for b in self.router.passthrough()]
        listed = []
        for name, listing in (await self._lists(pool)).items():
            for model in listing.models or ():
                if model.id not in seen:
                    seen.add(model.id)
                    listed.append((model.id, name))
        names = [(m, b) for m, b in self.router.client_models() if self._is_backend(m)]
        return mapped + listed + [(m, b) for m, b in names if m not in seen]

    def _is_backend(self, model: str) -> bool:
        return any(b.name == model for b in self.config.backends)

    async def catalog_models(self) -> list[ModelInfo]:
        """Every served model with what the catalog knows (`/api/models`): the mapped
        names (completed by what their backend's list says of the mapped model), the
        names the pool backends list, and the configured `[models]` entries."""
        names = self._listed_backends()
        lists = await self._lists(names)
        served = [self._mapped(m, b, lists) for m, b in self.router.client_models()
                  if not self._is_backend(m)]  # fmt: skip
        pool = {b.name for b in self.router.passthrough()}
        for name, listing in lists.items():
            if name in pool:
                served.extend(listing.models or ())
        return self.catalog.describe(served)

    def _mapped(self, model: str, backend: str, lists: dict[str, Listing]) -> ModelInfo:
        target = self.config.backend(backend).backend_model(model)
        listing = lists.get(backend)
        found = next((m for m in listing.models or () if m.id == target), None) if listing else None
        own = ModelInfo(id=model, backend=backend, source="config")
        if found is None:
            return own
        return ModelInfo(
            id=model,
            name=found.name,
            provider=found.provider,
            backend=backend,
            context_length=found.context_length,
            input_cost_per_mtok=found.input_cost_per_mtok,
            output_cost_per_mtok=found.output_cost_per_mtok,
            capabilities=found.capabilities,
            source="config",
        )
