"""How each backend protocol lists its models: the path of a page and the page's
entries as `ModelInfo` (pure: decoded JSON in, models and the next page's cursor out).

- OpenAI-compatible (`GET /v1/models`): OpenAI, llama-server (`meta.n_ctx_train`),
  vLLM (`max_model_len`), Ollama, OpenRouter (`context_length`, `pricing` per token).
- Gemini (`GET /v1beta/models`, `nextPageToken`): `inputTokenLimit`,
  `supportedGenerationMethods`.
- Anthropic (`GET /v1/models`, `has_more` / `last_id`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from louter.catalog import PER_MILLION, ModelInfo

Page = tuple[list[ModelInfo], str | None]


@dataclass(frozen=True, slots=True)
class Lister:
    path: Callable[[str | None], str]  # cursor (None: the first page) -> request path
    parse: Callable[[Any, str], Page]  # (decoded page, backend name) -> models, cursor


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _per_mtok(value: Any) -> float | None:
    """OpenRouter's `pricing` values: USD per token as a string ("0.000002")."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number * PER_MILLION, 9) if number >= 0 else None


def _entries(page: Any, key: str) -> list[Mapping[str, Any]]:
    if not isinstance(page, dict) or not isinstance(page.get(key), list):
        raise ValueError(f"the model list has no {key!r} array")
    return [e for e in page[key] if isinstance(e, dict)]


def _openai_model(entry: Mapping[str, Any], backend: str) -> ModelInfo | None:
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        return None
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    pricing = entry.get("pricing") if isinstance(entry.get("pricing"), dict) else {}
    owner = entry.get("owned_by")
    name = entry.get("name")
    return ModelInfo(
        id=model_id,
        name=name if isinstance(name, str) else None,
        provider=owner if isinstance(owner, str) and owner else None,
        backend=backend,
        context_length=_int(entry.get("context_length"))
        or _int(entry.get("max_model_len"))
        or _int(meta.get("n_ctx_train")),
        input_cost_per_mtok=_per_mtok(pricing.get("prompt")) if pricing else None,
        output_cost_per_mtok=_per_mtok(pricing.get("completion")) if pricing else None,
        source="discovered",
    )


def parse_openai(page: Any, backend: str) -> Page:
    models = [_openai_model(entry, backend) for entry in _entries(page, "data")]
    return [m for m in models if m is not None], None


_GEMINI_CAPABILITIES = {
    "generateContent": "chat",
    "embedContent": "embeddings",
}


def _gemini_model(entry: Mapping[str, Any], backend: str) -> ModelInfo | None:
    name = entry.get("name")
    if not isinstance(name, str) or not name.removeprefix("models/"):
        return None
    methods = entry.get("supportedGenerationMethods")
    methods = methods if isinstance(methods, list) else []
    capabilities = tuple(dict.fromkeys(_GEMINI_CAPABILITIES[m] for m in methods
                                       if m in _GEMINI_CAPABILITIES))  # fmt: skip
    display = entry.get("displayName")
    return ModelInfo(
        id=name.removeprefix("models/"),
        name=display if isinstance(display, str) else None,
        provider="google",
        backend=backend,
        context_length=_int(entry.get("inputTokenLimit")),
        capabilities=capabilities,
        source="discovered",
    )


def parse_gemini(page: Any, backend: str) -> Page:
    models = [_gemini_model(entry, backend) for entry in _entries(page, "models")]
    token = page.get("nextPageToken")
    return [m for m in models if m is not None], token if isinstance(token, str) and token else None


def _anthropic_model(entry: Mapping[str, Any], backend: str) -> ModelInfo | None:
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        return None
    display = entry.get("display_name")
    return ModelInfo(
        id=model_id,
        name=display if isinstance(display, str) else None,
        provider="anthropic",
        backend=backend,
        source="discovered",
    )


def parse_anthropic(page: Any, backend: str) -> Page:
    models = [_anthropic_model(entry, backend) for entry in _entries(page, "data")]
    last = page.get("last_id")
    more = page.get("has_more") is True and isinstance(last, str) and last
    return [m for m in models if m is not None], last if more else None


def _page(base: str, key: str) -> Callable[[str | None], str]:
    return lambda cursor: base if cursor is None else f"{base}&{key}={quote(cursor, safe='')}"


_OPENAI = Lister(lambda cursor: "/v1/models", parse_openai)
LISTERS: Mapping[str, Lister] = {
    "openai": _OPENAI,
    "responses": _OPENAI,
    "completions": _OPENAI,
    "gemini": Lister(_page("/v1beta/models?pageSize=1000", "pageToken"), parse_gemini),
    "anthropic": Lister(_page("/v1/models?limit=1000", "after_id"), parse_anthropic),
}
