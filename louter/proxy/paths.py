"""The `/v2/...` paths of the seed documents: each an alias of its `/v1` twin in the
route table (the same `Endpoint`, so the same handler, dialect and key rules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")

V2_ALIASES: Mapping[str, str] = {
    "/v2/chat/completions": "/v1/chat/completions",
    "/v2/messages": "/v1/messages",
    "/v2/messages/count_tokens": "/v1/messages/count_tokens",
    "/v2/responses": "/v1/responses",
    "/v2/completions": "/v1/completions",
    "/v2/models": "/v1/models",  # OpenAI's listing (Anthropic's and Gemini's by header)
    "/v2/models/list": "/v1beta/models",  # Gemini's listing
}
V2_PREFIXES: Mapping[str, str] = {"/v2/models/": "/v1/models/"}  # {model}[:action]


def with_aliases(routes: Mapping[str, T]) -> dict[str, T]:
    """`routes` and every `/v2` alias of one of them."""
    return {**routes, **{alias: routes[target] for alias, target in V2_ALIASES.items()}}


def with_prefix_aliases(prefixes: tuple[tuple[str, T], ...]) -> tuple[tuple[str, T], ...]:
    """The prefix routes and their `/v2` aliases."""
    found = dict(prefixes)
    return (*prefixes, *((alias, found[target]) for alias, target in V2_PREFIXES.items()))
