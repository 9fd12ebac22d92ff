"""Builds the `Catalog` from the config at start-up: reads the prices file named by
`[catalog] prices_file` (the only file this needs) and joins it to `[models."NAME"]`.

A missing or malformed prices file is a `ConfigError` naming the file: prices a user
asked for and did not get would otherwise record every cost as unknown without a word.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import orjson

from louter.catalog import Catalog, ModelInfo, parse_prices
from louter.config import Backend, Config
from louter.errors import ConfigError

MAX_PRICES_BYTES = 64 * 1024 * 1024  # LiteLLM's file is ~1.5 MB

# The provider prefixes a backend's models carry in LiteLLM's file, by protocol.
_PROTOCOL_PREFIXES: Mapping[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "gemini": ("gemini",),
    "anthropic": ("anthropic",),
    "responses": ("openai",),
    "completions": ("text-completion-openai",),
}


def read_prices(path: Path) -> dict[str, ModelInfo]:
    """The entries of a LiteLLM-style prices file."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_PRICES_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the prices file: {exc.strerror}") from exc
    if len(raw) > MAX_PRICES_BYTES:
        raise ConfigError(f"{path}: the prices file is larger than {MAX_PRICES_BYTES} bytes")
    try:
        return parse_prices(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a prices file: {exc}") from exc


def prefixes(backend: Backend) -> tuple[str, ...]:
    """`backend`'s name first (`openrouter/...`, `groq/...`), then its protocol's."""
    return (backend.name, *_PROTOCOL_PREFIXES.get(backend.protocol, ()))


def build_catalog(config: Config) -> Catalog:
    """The catalog `config` describes (the prices file read once, here)."""
    file = config.catalog.prices_file
    prices = read_prices(Path(file)) if file else {}
    return Catalog(
        config.models,
        prices,
        {backend.name: prefixes(backend) for backend in config.backends},
    )
