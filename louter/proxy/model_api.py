"""The catalog endpoints: `GET /api/models`, `/api/models/search`, `/api/models/{id}`.

Shapes as the "LLM Proxy API" users know them: `{"models": [...], "count"}` and
`{"model": {...}}`, each model `{"id", "name", "provider", "supports_chat",
"capabilities", "context_length", "input_cost", "output_cost"}` with costs in USD per
1K tokens, plus louter's `input_cost_per_mtok` / `output_cost_per_mtok` (per million),
`backend` and `source` (config, prices_file, discovered). An unknown price is `null`,
never 0. With client auth on, any valid key may read them, and sees the models its
`models` allow. Errors are in the OpenAI envelope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from louter.catalog import ModelInfo
from louter.errors import ConversionError, LouterError
from louter.http.message import HttpRequest, Responder
from louter.proxy.context import ProxyContext
from louter.proxy.exchange import Exchange

PREFIX = "/api/models/"
_TRUE = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _per_1k(per_mtok: float | None) -> float | None:
    return None if per_mtok is None else round(per_mtok / 1000, 12)


def model_json(model: ModelInfo) -> dict[str, Any]:
    """One model in the seed's shape, plus louter's fields."""
    return {
        "id": model.id,
        "name": model.name or model.id,
        "provider": model.provider,
        "supports_chat": model.supports_chat,
        "capabilities": list(model.capabilities),
        "context_length": model.context_length,
        "input_cost": _per_1k(model.input_cost_per_mtok),
        "output_cost": _per_1k(model.output_cost_per_mtok),
        "input_cost_per_mtok": model.input_cost_per_mtok,
        "output_cost_per_mtok": model.output_cost_per_mtok,
        "backend": model.backend,
        "source": model.source,
    }


async def _models(ctx: ProxyContext, exchange: Exchange) -> list[ModelInfo]:
    if ctx.served is None:
        raise LouterError("the model catalog is not available", status_hint=503)
    models = await ctx.served.catalog_models()
    key = exchange.key
    return models if key is None else [m for m in models if key.allows(m.id)]


async def list_catalog(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """`GET /api/models`."""
    models = [model_json(m) for m in await _models(ctx, exchange)]
    await responder.send_json(200, {"models": models, "count": len(models)})


def _flag(query: Mapping[str, str], name: str) -> bool | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in _TRUE:
        raise ConversionError(f"{name} must be true or false, got {raw[:40]!r}")
    return _TRUE[raw.lower()]


def _count(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise ConversionError(f"{name} must be a whole number of tokens, got {raw[:40]!r}")
    return int(raw)


def filters(query: Mapping[str, str]) -> list[Callable[[ModelInfo], bool]]:
    """The search's tests: `q` (in the id or name, any case), `provider` (exact, any
    case), `supports_chat`, `min_context` (a model of unknown context fails it) and
    `capability` (e.g. vision). Bad values raise a 400."""
    tests: list[Callable[[ModelInfo], bool]] = []
    text = query.get("q", "").strip().lower()
    if text:
        tests.append(lambda m: text in m.id.lower() or text in (m.name or "").lower())
    provider = query.get("provider", "").strip().lower()
    if provider:
        tests.append(lambda m: (m.provider or "").lower() == provider)
    chat = _flag(query, "supports_chat")
    if chat is not None:
        tests.append(lambda m: m.supports_chat is chat)
    least = _count(query, "min_context")
    if least is not None:
        tests.append(lambda m: m.context_length is not None and m.context_length >= least)
    capability = query.get("capability", "").strip().lower()
    if capability:
        tests.append(lambda m: capability in m.capabilities)
    return tests


async def search_catalog(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """`GET /api/models/search?q=&provider=&supports_chat=&min_context=&capability=`."""
    tests = filters(http.query)
    found = [m for m in await _models(ctx, exchange) if all(test(m) for test in tests)]
    models = [model_json(m) for m in found]
    await responder.send_json(200, {"models": models, "count": len(models)})


async def get_catalog_model(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """`GET /api/models/{id}` (the id may hold `/` and `:`): `{"model": {...}}`, with
    `backends` naming every backend that serves it; 404 when none does."""
    if http.method != "GET":
        raise LouterError(
            f"method {http.method} not allowed on {http.path}; use GET",
            status_hint=405,
            headers=((b"allow", b"GET"),),
        )
    model_id = http.path[len(PREFIX) :]
    found = [m for m in await _models(ctx, exchange) if m.id == model_id]
    if not found:
        message = f"model {model_id[:256]!r} is not in the catalog (see GET /api/models)"
        raise LouterError(message, status_hint=404, code="model_not_found")
    body = model_json(found[0])
    body["backends"] = [m.backend for m in found if m.backend is not None]
    await responder.send_json(200, {"model": body})
