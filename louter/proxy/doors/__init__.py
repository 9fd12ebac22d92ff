"""The front doors: each dialect's `DoorSpec` (`DOORS`), the endpoint handlers the app's
routes call (all made from the generic `door.generate` / `door.count`), and the model
listings, answered in the asking client's own shape."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping

from louter.errors import LouterError
from louter.http.message import HttpRequest, Responder
from louter.proxy import door
from louter.proxy.context import ProxyContext
from louter.proxy.door import DoorSpec, parse_body
from louter.proxy.doors import anthropic, completions, gemini, openai, responses
from louter.proxy.exchange import Exchange
from louter.proxy.known import not_served

HandlerFn = Callable[[ProxyContext, Exchange, HttpRequest, Responder], Awaitable[None]]

DOORS: Mapping[str, DoorSpec] = {
    spec.dialect: spec
    for spec in (openai.SPEC, gemini.SPEC, anthropic.SPEC, responses.SPEC, completions.SPEC)
}


def generate(spec: DoorSpec) -> HandlerFn:
    """The handler of `spec`'s generate (and stream) endpoint."""
    return functools.partial(door.generate, spec)


def count(spec: DoorSpec) -> HandlerFn:
    """The handler of `spec`'s token-counting endpoint."""
    return functools.partial(door.count, spec)


async def gemini_model_action(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """Every Gemini `models/...` path: the model and action are in the path."""
    model, action = gemini.split_target(http.path)
    if action is None:
        if http.method != "GET":
            raise LouterError(f"unknown action in {http.path}", status_hint=404)
        await _check_served(ctx, model)
        await responder.send_json(200, gemini.model_entry(model, ""))
        return
    if http.method != "POST":
        message = f"{action} needs POST, not {http.method}"
        raise LouterError(message, status_hint=405, headers=((b"allow", b"POST"),))
    exchange.model = model
    body = await parse_body(exchange, http, keep_raw=True)
    exchange.model = model
    run = door.count if action == "countTokens" else door.generate
    target = (model, action == "streamGenerateContent")  # the path is read once
    await run(gemini.SPEC, ctx, exchange, http, responder, body, target)


def _is_gemini_client(http: HttpRequest) -> bool:
    headers = http.headers
    return "x-goog-api-key" in headers or "x-goog-api-client" in headers or "key" in http.query


async def _check_served(ctx: ProxyContext, model: str) -> None:
    """404 for a name known not to be served (a default backend whose list is unknown
    might serve anything: the name is then assumed served)."""
    if ctx.served is not None and await ctx.served.knows(model) is False:
        raise not_served(model)


async def _client_models(ctx: ProxyContext) -> list[tuple[str, str]]:
    """Mapped names, the names the default pool's backends list, backend names."""
    if ctx.served is None:
        return ctx.router.client_models()
    return await ctx.served.client_models()


def _listed(exchange: Exchange, models: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (model, backend) pairs a client may see: with client auth, the models its
    key's `models` allow."""
    key = exchange.key
    return models if key is None else [pair for pair in models if key.allows(pair[0])]


async def list_models(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """`GET /v1/models` in the asking client's own shape (the Gemini SDK uses it too)."""
    models = _listed(exchange, await _client_models(ctx))
    if _is_gemini_client(http):
        exchange.format = "gemini"
        await responder.send_json(200, gemini.model_list(models))
    elif "anthropic-version" in http.headers:
        exchange.format = "anthropic"
        await responder.send_json(200, anthropic.model_list(models))
    else:
        await responder.send_json(200, openai.model_list(models))


async def gemini_models(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """`GET /v1beta/models`."""
    models = _listed(exchange, await _client_models(ctx))
    await responder.send_json(200, gemini.model_list(models))


async def model_path(
    ctx: ProxyContext, exchange: Exchange, http: HttpRequest, responder: Responder
) -> None:
    """`/v1/models/{...}`: Gemini actions, or one model in the OpenAI or Gemini shape."""
    if http.method == "GET" and not _is_gemini_client(http):
        anthropic_client = "anthropic-version" in http.headers
        exchange.format = "anthropic" if anthropic_client else "openai"
        model, _ = gemini.split_target(http.path)  # a safe name, percent-decoded
        await _check_served(ctx, model)
        if anthropic_client:
            await responder.send_json(200, anthropic.model_list([(model, "")])["data"][0])
            return
        await responder.send_json(200, openai.model_entry(model, ctx.router.owner(model).name))
        return
    await gemini_model_action(ctx, exchange, http, responder)
