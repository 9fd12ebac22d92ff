"""The model catalog: what louter knows about each model (provider, context length,
prices, capabilities), merged from `[models."NAME"]` in the config and an optional prices
file in LiteLLM's `model_prices_and_context_window.json` field names.

Pure data: no files, clock or network. `louter.prices` reads the file; the proxy adds
the models each backend lists (discovery) at run time through `Catalog.with_served`.

Lookups: `Catalog.get(model)` (the merged entry, None when nothing is known) and
`Catalog.price(model, backend)` (USD per million tokens, None when no price is known:
an unknown price is never $0). A config entry wins over the prices file field by field:
a config entry giving only `context_length` still takes its prices from the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

PER_MILLION = 1_000_000
CAPABILITIES = (
    "chat",
    "completion",
    "embeddings",
    "vision",
    "tools",
    "reasoning",
    "audio",
    "pdf",
    "json_schema",
    "prompt_caching",
    "web_search",
)
# LiteLLM's boolean fields -> louter's capability names
_SUPPORTS = MappingProxyType(
    {
        "supports_vision": "vision",
        "supports_function_calling": "tools",
        "supports_reasoning": "reasoning",
        "supports_audio_input": "audio",
        "supports_pdf_input": "pdf",
        "supports_response_schema": "json_schema",
        "supports_prompt_caching": "prompt_caching",
        "supports_web_search": "web_search",
    }
)
# LiteLLM's `mode` -> capability
_MODES = MappingProxyType({"chat": "chat", "completion": "completion", "embedding": "embeddings"})
_SKIPPED = frozenset({"sample_spec"})  # the file's documentation entry


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. Cached-input prices are None when not known."""

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one exchange's tokens."""
        return (
            input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok
        ) / PER_MILLION


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model. Every field but `id` may be unknown (None / empty)."""

    id: str
    name: str | None = None
    provider: str | None = None
    backend: str | None = None  # the backend that serves it, when pinned or discovered
    context_length: int | None = None
    input_cost_per_mtok: float | None = None
    output_cost_per_mtok: float | None = None
    cache_read_cost_per_mtok: float | None = None
    cache_write_cost_per_mtok: float | None = None
    capabilities: tuple[str, ...] = ()
    source: str = "config"  # config | prices_file | discovered

    @property
    def price(self) -> Price | None:
        """Both input and output prices, or None (half a price is no price)."""
        if self.input_cost_per_mtok is None or self.output_cost_per_mtok is None:
            return None
        return Price(
            self.input_cost_per_mtok,
            self.output_cost_per_mtok,
            self.cache_read_cost_per_mtok,
            self.cache_write_cost_per_mtok,
        )

    @property
    def supports_chat(self) -> bool:
        """Chat unless the entry says otherwise: a model with no capabilities listed is
        assumed to chat (what a proxy for chat APIs serves)."""
        return not self.capabilities or "chat" in self.capabilities


_MERGED = (
    "name",
    "provider",
    "backend",
    "context_length",
    "input_cost_per_mtok",
    "output_cost_per_mtok",
    "cache_read_cost_per_mtok",
    "cache_write_cost_per_mtok",
)


def merge(primary: ModelInfo, fallback: ModelInfo) -> ModelInfo:
    """`primary` with its unknown fields taken from `fallback` (same id kept)."""
    filled = {
        name: getattr(fallback, name)
        for name in _MERGED
        if getattr(primary, name) is None and getattr(fallback, name) is not None
    }
    if not primary.capabilities and fallback.capabilities:
        filled["capabilities"] = fallback.capabilities
    return replace(primary, **filled) if filled else primary


# --------------------------------------------------------------------------- prices file


def _per_mtok(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return round(float(value) * PER_MILLION, 9)  # 2e-07 -> 0.2, not 0.19999999999999998
    return None


def _context(entry: Mapping[str, Any]) -> int | None:
    for key in ("max_input_tokens", "max_tokens"):
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _capabilities(entry: Mapping[str, Any]) -> tuple[str, ...]:
    found = [_MODES[entry["mode"]]] if entry.get("mode") in _MODES else []
    found += [name for key, name in _SUPPORTS.items() if entry.get(key) is True]
    return tuple(found)


def price_entry(model: str, entry: Mapping[str, Any]) -> ModelInfo:
    """One entry of a LiteLLM-style prices file as a `ModelInfo`."""
    provider = entry.get("litellm_provider")
    return ModelInfo(
        id=model,
        provider=provider if isinstance(provider, str) else None,
        context_length=_context(entry),
        input_cost_per_mtok=_per_mtok(entry.get("input_cost_per_token")),
        output_cost_per_mtok=_per_mtok(entry.get("output_cost_per_token")),
        cache_read_cost_per_mtok=_per_mtok(entry.get("cache_read_input_token_cost")),
        cache_write_cost_per_mtok=_per_mtok(entry.get("cache_creation_input_token_cost")),
        capabilities=_capabilities(entry),
        source="prices_file",
    )


def parse_prices(data: Any) -> dict[str, ModelInfo]:
    """A prices file's decoded JSON -> entries by model name. Entries that are not
    objects (and the `sample_spec` documentation entry) are skipped; a top level that
    is not an object raises ValueError."""
    if not isinstance(data, dict):
        raise ValueError("a prices file must be a JSON object of model name -> fields")
    return {
        name: price_entry(name, entry)
        for name, entry in data.items()
        if isinstance(entry, dict) and name not in _SKIPPED
    }


# --------------------------------------------------------------------------- the catalog


class Catalog:
    """Config entries, prices-file entries, and the models the backends serve.

    `prefixes` maps a backend name to the provider prefixes its models carry in the
    prices file (LiteLLM writes `openrouter/openai/gpt-4o`, `gemini/gemini-2.0-flash`):
    `price("gpt-4o", "openrouter")` tries `gpt-4o`, then `openrouter/gpt-4o`."""

    def __init__(
        self,
        configured: Mapping[str, ModelInfo] | None = None,
        prices: Mapping[str, ModelInfo] | None = None,
        prefixes: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.configured: Mapping[str, ModelInfo] = MappingProxyType(dict(configured or {}))
        self.prices: Mapping[str, ModelInfo] = MappingProxyType(dict(prices or {}))
        self.prefixes: Mapping[str, tuple[str, ...]] = MappingProxyType(dict(prefixes or {}))
        self._lower = {name.lower(): info for name, info in self.prices.items()}

    def _from_file(self, model: str, backend: str | None) -> ModelInfo | None:
        names = [model, model.removeprefix("models/")]  # Gemini lists `models/NAME`
        for prefix in self.prefixes.get(backend or "", ()):
            names.append(f"{prefix}/{names[1]}")
        for name in names:
            found = self.prices.get(name) or self._lower.get(name.lower())
            if found is not None:
                return found
        return None

    def _configured(self, model: str, backend: str | None) -> ModelInfo | None:
        entry = self.configured.get(model)
        if entry is not None and backend is not None and entry.backend not in (None, backend):
            return None  # pinned to another backend
        return entry

    def get(self, model: str, backend: str | None = None) -> ModelInfo | None:
        """What is known of `model` (on `backend`, when given): the config entry filled
        in from the prices file; None when neither knows it."""
        entry = self._configured(model, backend)
        found = self._from_file(model, backend or (entry.backend if entry else None))
        if entry is None:
            return None if found is None else replace(found, id=model, backend=backend)
        return entry if found is None else merge(entry, found)

    def price(self, model: str, backend: str | None = None) -> Price | None:
        """USD per million tokens for `model` served by `backend`; None when unknown."""
        info = self.get(model, backend)
        return None if info is None else info.price

    def enrich(self, served: ModelInfo) -> ModelInfo:
        """A model a backend serves (listed by it or mapped in config), completed by
        the config entry first, then the prices file (config > backend's list > file)."""
        entry = self._configured(served.id, served.backend)
        base = served if entry is None else replace(merge(entry, served), source=served.source)
        found = self._from_file(served.id, served.backend)
        return base if found is None else merge(base, found)

    def describe(self, served: Iterable[ModelInfo]) -> list[ModelInfo]:
        """Every model served (one entry per id and backend), enriched, then the
        configured models no backend listed; ordered by id then backend."""
        out = {(m.id, m.backend): self.enrich(m) for m in served}
        listed = {model_id for model_id, _ in out}
        for name in self.configured:
            info = self.get(name)
            if name not in listed and info is not None:
                out[(name, info.backend)] = info
        return sorted(out.values(), key=lambda m: (m.id, m.backend or ""))
